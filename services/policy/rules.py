"""The lock's access rules, pure: an attempt, the facts and the clocks in; a verdict out.

Nothing here reads a clock or a file: the policy service passes both clocks in, so the
rules can be checked against a reference model with jumps of time and restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

# Credentials presented at the door, counted by the lockout (L-20). Names from Matter.
LOCAL_METHODS = frozenset({"pin", "face", "fingerprint", "palm-vein"})


@dataclass(frozen=True)
class Slot:
    """A weekly time slot (L-7): days 0=Monday … 6=Sunday, minutes from midnight [start, end)."""

    days: frozenset[int]
    start: int
    end: int

    def contains(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minute < self.end


@dataclass(frozen=True)
class Validity:
    """When a person's or a visitor code's credentials work: a window and weekly slots."""

    start: float | None = None
    end: float | None = None
    slots: tuple[Slot, ...] = ()

    @property
    def restricted(self) -> bool:
        return self.start is not None or self.end is not None or bool(self.slots)

    def refusal(self, now: float | None, tz: tzinfo) -> str | None:
        """Why a credential is refused now, or None; an unknown time refuses any restriction."""
        if not self.restricted:
            return None
        if now is None:
            return "time-unknown"
        if self.start is not None and now < self.start:
            return "outside-validity"
        if self.end is not None and now >= self.end:
            return "outside-validity"
        if self.slots and not any(s.contains(datetime.fromtimestamp(now, tz)) for s in self.slots):
            return "outside-validity"
        return None


@dataclass
class Lockout:
    """Five failures within five minutes lock local credentials for three (L-20).

    Kept on the monotonic clock, which a wrong wall clock cannot move; across a restart
    the service restores an active lockout at its full length (fail-secure).
    """

    limit: int
    window_s: float
    duration_s: float
    enabled: bool = True
    failures: list[float] = field(default_factory=list)
    until: float | None = None
    # Escalation (the app PIN's, issue 13): each lockout since the last success lasts
    # twice the one before, up to max_s; None keeps every lockout at duration_s (L-20).
    max_s: float | None = None
    strikes: int = 0  # lockouts since the last success

    def active(self, mono: float) -> bool:
        if self.until is not None and mono >= self.until:
            self.release()
        return self.until is not None

    def length(self) -> float:
        """How long the newest lockout lasts (or the next, before any)."""
        if self.max_s is None:
            return self.duration_s
        return min(self.duration_s * 2 ** max(0, self.strikes - 1), self.max_s)

    def fail(self, mono: float) -> bool:
        """Count a failure; True when it starts a lockout."""
        if not self.enabled:
            return False
        self.failures = [t for t in self.failures if mono - t < self.window_s] + [mono]
        if len(self.failures) < self.limit:
            return False
        self.strikes += 1
        self.until, self.failures = mono + self.length(), []
        return True

    def succeed(self) -> None:
        self.failures, self.strikes = [], 0

    def release(self) -> None:
        self.until, self.failures = None, []


@dataclass(frozen=True)
class Visitor:
    """A temporary passcode (L-9): a label, a window, and uses left (None: unlimited)."""

    label: str
    validity: Validity
    uses_left: int | None


@dataclass(frozen=True)
class Attempt:
    """One credential presented: how, and whom it matched (None: nobody)."""

    method: str
    person: str | None = None
    validity: Validity = Validity()
    duress: bool = False
    visitor: Visitor | None = None


@dataclass(frozen=True)
class Verdict:
    granted: bool
    reason: str = ""
    alarm: str | None = None  # a Matter alarm name: "forced-user", "wrong-code-entry-limit"


def decide(
    attempt: Attempt,
    lockout: Lockout,
    *,
    wall: float | None,
    mono: float,
    tz: tzinfo,
    remote_enabled: bool,
) -> Verdict:
    """The verdict on one attempt; updates the lockout's count."""
    local = attempt.method in LOCAL_METHODS
    if attempt.method == "remote" and not remote_enabled:
        return Verdict(False, "remote-disabled")
    if local and lockout.active(mono):
        return Verdict(False, "lockout")  # even a valid credential (L-20)
    if attempt.person is None and attempt.visitor is None:
        started = local and lockout.fail(mono)
        return Verdict(False, "invalid-credential", "wrong-code-entry-limit" if started else None)
    window = attempt.visitor.validity if attempt.visitor else attempt.validity
    why = window.refusal(wall, tz)
    if why is not None:
        return Verdict(False, why)
    if attempt.visitor is not None and attempt.visitor.uses_left == 0:
        return Verdict(False, "uses-exhausted")
    lockout.succeed()
    return Verdict(True, alarm="forced-user" if attempt.duress else None)
