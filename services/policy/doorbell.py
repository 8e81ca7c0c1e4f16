"""The doorbell (L-23): logged, the chime rung by the motor, and an honest word on the snapshot.

A snapshot needs video, which the battery allows only at video_min_percent or more
(L-28); the camera itself belongs to the face service and takes no snapshots yet.
"""

from __future__ import annotations

from typing import Callable

from proto.board import Chime
from proto.control import Done
from proto.policy import Audit, Doorbell
from proto.power import Battery
from proto.wire import Envelope
from services.base import accepts
from services.policy.lock import Lock, answered

NO_CAMERA = "snapshot: not taken (no camera yet)"
NO_VIDEO = "snapshot: battery too low for video"


def snapshot_note(battery: Battery | None, video_min_percent: float) -> str:
    """What became of the snapshot; an unknown battery does not forbid video."""
    if battery is not None and (not battery.video_allowed or battery.percent < video_min_percent):
        return NO_VIDEO
    return NO_CAMERA


class Bell:
    """The doorbell's answer; battery() is what the power service said last (board.py)."""

    def __init__(self, lock: Lock, battery: Callable[[], Battery | None]) -> None:
        self.lock, self.battery = lock, battery

    @accepts(Doorbell)
    def on_doorbell(self, env: Envelope[Doorbell], peer: str) -> Done:
        lock = self.lock
        note = snapshot_note(self.battery(), lock.config["power"]["video_min_percent"])
        answer = answered(lock.request("motor", Chime(), cause=env.trace))
        silent = (
            "chime: motor did not answer"
            if answer is None
            else None
            if answer.ok
            else f"chime: {answer.reason}"
        )
        lock.store.log("doorbell", source="keypad", reason=silent, detail=note, cause=env.trace)
        lock.publish(Audit(kind="doorbell", detail=note), env.trace)
        return Done(ok=True, detail=note)
