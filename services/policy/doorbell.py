"""The doorbell (L-23): logged, the chime rung by the motor, and a snapshot of the visitor
asked of the face service, which owns the camera.

A snapshot needs video, which the battery allows only at video_min_percent or more
(L-28). The chime never waits for the picture: it is asked for while the face service
takes it, and the face service gets a short time to answer (doorbell.snapshot_timeout_s).
The row's detail says `snapshot=NAME` (the gateway serves it by that name) or why there
is none.
"""

from __future__ import annotations

from typing import Callable

from proto.biometric import Snapshot
from proto.board import Chime
from proto.control import Done
from proto.policy import Audit, Doorbell
from proto.power import Battery, video_off
from proto.wire import Envelope
from services.base import accepts
from services.policy.lock import Lock, answered

NO_VIDEO = "snapshot: battery too low for video"
NO_CAMERA = "snapshot: no camera"  # a lock made without one (mesh.without)
NO_ANSWER = "snapshot: face did not answer"


def video_allowed(battery: Battery | None, video_min_percent: float) -> bool:
    """Whether the battery allows video, as the face service judges it (one rule, in
    proto/power.py: an unknown battery does not forbid it, the USB-C supply lifts it)."""
    return not video_off(battery, video_min_percent)


def snapshot_note(answer: Done | None, name: str) -> str:
    """The row's detail: the snapshot's name, or why it was not taken."""
    if answer is None:
        return NO_ANSWER
    if answer.ok:
        return f"snapshot={name}"
    return f"snapshot: {answer.reason}" + (f" ({answer.detail})" if answer.detail else "")


def chime_note(answer: Done | None) -> str | None:
    """The row's reason when the chime did not ring."""
    if answer is None:
        return "chime: motor did not answer"
    return None if answer.ok else f"chime: {answer.reason}"


class Bell:
    """The doorbell's answer; battery() is what the power service said last (board.py)."""

    def __init__(self, lock: Lock, battery: Callable[[], Battery | None]) -> None:
        self.lock, self.battery = lock, battery

    @accepts(Doorbell)
    def on_doorbell(self, env: Envelope[Doorbell], peer: str) -> Done:
        lock = self.lock
        chimed: list[Done | None] = []

        def chime() -> None:
            ring = Chime(volume=lock.settings.get("volume"))  # 0: silent (L-36, issue 15)
            chimed.append(answered(lock.request("motor", ring, cause=env.trace)))

        if "face" in lock.config["mesh"]["without"]:
            chime()
            note = NO_CAMERA
        elif video_allowed(self.battery(), lock.config["power"]["video_min_percent"]):
            name = self.snapshot_name()
            timeout = lock.config["doorbell"]["snapshot_timeout_s"]
            shot = lock.request(
                "face", Snapshot(name=name), cause=env.trace, timeout=timeout, sent=chime
            )
            note = snapshot_note(answered(shot), name)
        else:
            chime()
            note = NO_VIDEO
        silent = chime_note(chimed[0] if chimed else None)
        lock.store.log("doorbell", source="keypad", reason=silent, detail=note, cause=env.trace)
        lock.publish(Audit(kind="doorbell", detail=note), env.trace)
        return Done(ok=True, detail=note)

    def snapshot_name(self) -> str:
        """bell-EPOCH-SEQ: the seq the doorbell's row is about to take, in this log's epoch
        (one more at each factory reset), so the name is never reused and leads to its row."""
        epoch, seq = self.lock.store.next_seq()
        return f"bell-{epoch}-{seq}"
