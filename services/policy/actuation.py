"""The bolt's truth (issue 11): a drive is logged as done only when the motor says so.

A granted decision is logged `granted` when it is made. The drive it orders is logged
`unlock` (or `lock`) when the motor's Bolt event reports the bolt there, and
`actuation-failed` with the reason when the motor refuses, does not answer, reports a
jam, never reports, or restarts in the middle; the panel hears why (ActuationFailed).
Every row of one drive carries the same cause as the row of the decision behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from proto.board import Actuate, Bolt, DriveInterrupted
from proto.control import OK, Done
from proto.policy import ActuationFailed
from proto.wire import Envelope
from services.base import accepts, hears
from services.policy.lock import Lock, answered

TARGET = {"lock": "locked", "unlock": "unlocked"}
REPORT_MARGIN_S = 3.0  # past the motor's own jam timeout: time for a restarted motor's word


@dataclass
class PendingDrive:
    """A drive policy ordered, until the motor reports where the bolt ended."""

    action: str
    source: str
    cause: str  # what the log rows name as cause: the decision's own cause
    deadline: float
    person: str | None = None
    method: str | None = None
    detail: str | None = None  # as on the decision's row: which visitor code

    def row(self, **fields: Any) -> dict[str, Any]:
        return {
            "person": self.person,
            "method": self.method,
            "source": self.source,
            "cause": self.cause,
            "detail": self.detail,
            **fields,
        }


class Actuation:
    """The drives policy orders, and where the motor last said the bolt is."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        self.bolt = "unknown"  # as the motor last reported it
        self._drives: dict[str, PendingDrive] = {}  # by the cause the Actuate named (echoed)
        self._interruptions: set[str] = set()  # drives whose interruption was alarmed

    def lock_bolt(self, *, source: str, cause: str) -> str | None:
        """Logged `lock` when the motor reports the bolt thrown; the reason when the motor
        did not take the drive."""
        return self.actuate("lock", source=source, cause=cause)

    def actuate(
        self,
        action: str,
        *,
        source: str,
        cause: str,
        log_cause: str | None = None,
        person: str | None = None,
        method: str | None = None,
        detail: str | None = None,
        ordered: Callable[[], object] = lambda: None,
    ) -> str | None:
        """Order a drive; cause goes to the motor, log_cause (default cause) to the log.
        ordered() is called once the motor has been asked (or could not be), before
        anything about the drive is published. None once the motor took the drive, else
        why it was not taken (logged `actuation-failed`)."""
        deadline = self.lock.clock() + self._report_within()
        drive = PendingDrive(action, source, log_cause or cause, deadline, person, method, detail)
        direction = self.lock.settings.get("direction")
        if direction is None:
            ordered()
            self._not_actuated(drive, "direction-unset")
            return "direction-unset"
        self._drives[cause] = drive  # before asking: the motor's events follow its answer
        answer = self.lock.request(
            "motor", Actuate(action=action, direction=direction), cause=cause, sent=ordered
        )
        done = answered(answer)
        if done is None or not done.ok:
            self._drives.pop(cause, None)
            reason = "no-answer" if done is None else done.reason
            self._not_actuated(drive, reason)
            return reason
        return None

    @hears(Bolt)
    def on_bolt(self, env: Envelope[Bolt]) -> None:
        b = env.body
        self.bolt = b.state
        if self.bolt == "jammed":
            self.lock.alarm("lock-jammed", b.reason, cause=env.id)
        self._bolt_reported(env, b)  # a drive's end is logged only now (issue 11)

    def _bolt_reported(self, env: Envelope[Any], b: Bolt) -> None:
        """A Bolt event: the end of one of our drives, when it names its cause."""
        drive = self._drives.get(env.cause) if env.cause is not None else None
        if env.cause is None or drive is None or b.state == "moving" or b.interrupted:
            return  # an interrupted drive is settled by the motor's report (below)
        del self._drives[env.cause]
        why = "jammed" if b.state == "jammed" else f"bolt {b.state}"
        self._drive_ended(drive, b.state, why=why)

    def _drive_ended(self, drive: PendingDrive, state: str, *, why: str) -> None:
        if state == TARGET[drive.action]:
            self.lock.store.log(drive.action, **drive.row())
        else:
            self._not_actuated(drive, why)

    def _not_actuated(self, drive: PendingDrive, reason: str) -> None:
        detail = ", ".join(filter(None, (drive.action, drive.detail)))
        self.lock.store.log("actuation-failed", **drive.row(reason=reason, detail=detail))
        self.lock.publish(ActuationFailed(drive.action, reason, drive.source), drive.cause)

    def tick(self, now: float) -> None:
        """A drive the motor accepted but never finished reporting is a failure too."""
        for cause, drive in list(self._drives.items()):
            if now >= drive.deadline:
                del self._drives[cause]
                self._not_actuated(drive, "no-report")

    @accepts(DriveInterrupted)
    def on_drive_interrupted(self, env: Envelope[DriveInterrupted], peer: str) -> Done:
        """The motor restarted in the middle of a drive: an alarm, and the drive's end."""
        b = env.body
        drive = self._drives.get(env.trace)
        cause = drive.cause if drive is not None else env.trace
        if b.found != TARGET[b.action] and env.trace not in self._interruptions:
            self._interruptions.add(env.trace)  # a finished lock is reported twice
            detail = f"{b.action} cut short by a motor restart: bolt {b.found}, now {b.state}"
            self.lock.alarm("drive-interrupted", detail, cause=cause)
        if drive is not None and b.state == "moving":  # a lock it finishes: its Bolt event
            drive.deadline = self.lock.clock() + self._report_within()
        elif drive is not None:
            del self._drives[env.trace]
            self._drive_ended(drive, b.state, why="drive-interrupted")
        self.bolt = b.state
        return OK

    def _report_within(self) -> float:
        return float(self.lock.config["motor"]["travel_timeout_s"]) + REPORT_MARGIN_S
