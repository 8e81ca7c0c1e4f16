"""The doorbell (L-23): logged, the chime rung by the motor, and an honest word on the snapshot.

A snapshot needs video, which the battery allows only at video_min_percent or more
(L-28); the camera itself belongs to the face service and takes no snapshots yet.
"""

from __future__ import annotations

from proto.board import Chime
from proto.control import Done
from proto.policy import Audit, Doorbell
from proto.power import Battery
from proto.wire import Envelope
from services.base import accepts

NO_CAMERA = "snapshot: not taken (no camera yet)"
NO_VIDEO = "snapshot: battery too low for video"


def snapshot_note(battery: Battery | None, video_min_percent: float) -> str:
    """What became of the snapshot; an unknown battery does not forbid video."""
    if battery is not None and (not battery.video_allowed or battery.percent < video_min_percent):
        return NO_VIDEO
    return NO_CAMERA


class DoorbellCommands:
    """Mixed into PolicyService: its store, the battery it heard last, and the motor."""

    battery: Battery | None = None

    @accepts(Doorbell)
    def on_doorbell(self, env: Envelope, peer: str) -> Done:
        note = snapshot_note(self.battery, self.config["power"]["video_min_percent"])
        answer = self.request("motor", Chime(), cause=env.trace)
        silent = (
            "chime: motor did not answer"
            if answer is None
            else None
            if answer.body.ok
            else f"chime: {answer.body.reason}"
        )
        self.store.log("doorbell", source="keypad", reason=silent, detail=note, cause=env.trace)
        self.publish(Audit(kind="doorbell", detail=note), env.trace)
        return Done(ok=True, detail=note)
