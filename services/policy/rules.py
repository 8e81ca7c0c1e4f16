"""The lock's access rules, pure: an attempt, the facts and the clocks in; a verdict out.

Nothing here reads a clock or a file: the policy service passes both clocks in, so the
rules can be checked against a reference model with jumps of time and restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

# Credentials presented at the door, counted by the lockout (L-20). Names from Matter.
LOCAL_METHODS = frozenset({"pin", "face", "fingerprint", "palm-vein"})
# Unlocks asked from away from the door (L-18, L-32): Matter's remote operation.
REMOTE_METHODS = frozenset({"remote"})
# What a CredentialRule counts as a credential (issue 15): the door's, and a phone key
FACTOR_METHODS = LOCAL_METHODS | {"ble"}
# Matter's OperatingMode (issue 15), as the wire and the log name them
MODES = ("normal", "vacation", "privacy", "no-remote", "passage")
# Matter's CredentialRule (issue 15): how many different credentials a person shows
CREDENTIAL_RULES = {"single": 1, "dual": 2, "tri": 3}
DAY_S = 86400.0


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
    # The long-window guard (issue 15): at most daily_budget failures in any day; reaching
    # it trips a lockout, and so does each failure after it. With keep_strikes a success
    # does not forgive the strikes: only a day without a trip does, so lockouts that keep
    # tripping keep growing (to max_s) however the household unlocks in between.
    daily_budget: int | None = None
    keep_strikes: bool = False
    day_failures: list[float] = field(default_factory=list)
    last_trip: float | None = None  # when the newest lockout ends (mono)

    def active(self, mono: float) -> bool:
        if self.until is not None and mono >= self.until:
            self.until, self.failures = None, []
        return self.until is not None

    def over_budget(self, mono: float) -> bool:
        """Whether this day's failures have reached the daily budget."""
        self.day_failures = [t for t in self.day_failures if mono - t < DAY_S]
        return self.daily_budget is not None and len(self.day_failures) >= self.daily_budget

    def length(self) -> float:
        """How long the newest lockout lasts (or the next, before any)."""
        if self.max_s is None:
            return self.duration_s
        doublings = min(max(0, self.strikes - 1), 40)  # past max_s long before: no overflow
        return min(self.duration_s * 2**doublings, self.max_s)

    def fail(self, mono: float, tries: int = 1) -> str | None:
        """Count a failure that tested `tries` codes (an anti-peeping entry tests one per
        run of a code's length in it, L-19: the budget counts those, L-20 the entry); the
        alarm's name when it starts a lockout, else None: wrong-code-entry-limit (L-20),
        or daily-failure-limit (the budget, issue 15)."""
        if not self.enabled:
            return None
        self._forgive_old_strikes(mono)
        self.failures = [t for t in self.failures if mono - t < self.window_s] + [mono]
        was_over = self.over_budget(mono)
        if self.daily_budget is not None:  # kept only while there is a budget to keep
            self.day_failures += [mono] * max(1, tries)
        over = self.over_budget(mono)
        if len(self.failures) < self.limit and not over:
            return None
        self.strikes += 1
        self.until, self.failures = mono + self.length(), []
        self.last_trip = self.until  # a day without a trip counts from the lockout's end
        return "daily-failure-limit" if over and not was_over else "wrong-code-entry-limit"

    def _forgive_old_strikes(self, mono: float) -> None:
        if self.last_trip is not None and mono - self.last_trip >= DAY_S:
            self.strikes, self.last_trip = 0, None

    def succeed(self) -> None:
        self.failures = []
        if not self.keep_strikes:
            self.strikes = 0

    def release(self) -> None:
        """The owner lifts it (L-20): the strikes and the day's budget with it."""
        self.until, self.failures, self.strikes, self.day_failures = None, [], 0, []


@dataclass(frozen=True)
class Visitor:
    """A temporary passcode (L-9): a label, a window, and uses left (None: unlimited)."""

    label: str
    validity: Validity
    uses_left: int | None


@dataclass(frozen=True)
class Attempt:
    """One credential presented: how, and whom it matched (None: nobody), with what the
    store says of that person: disabled (Matter's UserStatus occupied-disabled), admin
    (vacation mode lets only administrators in), factors (their CredentialRule's count)."""

    method: str
    person: str | None = None
    validity: Validity = Validity()
    duress: bool = False
    visitor: Visitor | None = None
    disabled: bool = False
    admin: bool = False
    factors: int = 1
    tries: int = 1  # codes a wrong entry tested (L-19's runs): what the daily budget counts


@dataclass(frozen=True)
class Verdict:
    granted: bool
    reason: str = ""
    alarm: str | None = None  # a Matter alarm name: "forced-user", "wrong-code-entry-limit"
    still: int = 0  # more-factors: how many more different credentials are needed
    abandoned: bool = False  # another person's half-done attempt was dropped (one failure)


@dataclass
class Factors:
    """A multi-factor attempt under way (Matter's CredentialRule dual/tri, issue 15): one
    person's credentials shown so far, each of a different method, within window_s of
    the first. The door has one person in front of it: another person's credential
    starts afresh, and the abandoned attempt counts as one failure, as a timed-out one."""

    window_s: float
    person: str | None = None
    methods: frozenset[str] = frozenset()
    started: float = 0.0

    def expired(self, mono: float) -> str | None:
        """The person whose half-done attempt just ran out of time (then forgotten)."""
        if self.person is None or mono - self.started < self.window_s:
            return None
        person, self.person, self.methods = self.person, None, frozenset()
        return person

    def left(self, mono: float) -> float:
        return max(0.0, self.started + self.window_s - mono) if self.person else 0.0

    def add(self, person: str, method: str, needed: int, mono: float) -> tuple[int, bool]:
        """(how many more are needed, whether another person's attempt was abandoned)."""
        abandoned = self.person is not None and self.person != person
        if self.person != person:
            self.person, self.methods, self.started = person, frozenset(), mono
        self.methods |= {method}
        still = max(0, needed - len(self.methods))
        if still == 0:
            self.person, self.methods = None, frozenset()
        return still, abandoned

    def clear(self) -> None:
        self.person, self.methods = None, frozenset()


def mode_refusal(mode: str, method: str) -> str | None:
    """What an operating mode refuses before any credential is looked at (issue 15):
    privacy every unlock from outside, no-remote the remote ones and phone keys. The
    inside button and the mechanical key never reach the rules: they still work."""
    if mode == "privacy":
        return "privacy-mode"
    if mode == "no-remote" and (method in REMOTE_METHODS or method == "ble"):
        return "no-remote-mode"
    return None


def decide(
    attempt: Attempt,
    lockout: Lockout,
    *,
    wall: float | None,
    mono: float,
    tz: tzinfo,
    remote_enabled: bool,
    mode: str = "normal",
    factors: Factors | None = None,
) -> Verdict:
    """The verdict on one attempt; updates the lockout's count and the factors shown.
    A mode's refusal comes before the lockout and counts nothing: it says the same
    whatever is typed, so nothing can be guessed through it."""
    local = attempt.method in LOCAL_METHODS
    if attempt.method in REMOTE_METHODS and not remote_enabled:
        return Verdict(False, "remote-disabled")
    refusal = mode_refusal(mode, attempt.method)
    if refusal is not None:
        return Verdict(False, refusal)
    if local and lockout.active(mono):
        return Verdict(False, "lockout")  # even a valid credential (L-20)
    if attempt.person is None and attempt.visitor is None:
        started = lockout.fail(mono, attempt.tries) if local else None
        return Verdict(False, "invalid-credential", started)
    if attempt.disabled:
        return Verdict(False, "user-disabled")
    window = attempt.visitor.validity if attempt.visitor else attempt.validity
    why = window.refusal(wall, tz)
    if why is not None:
        return Verdict(False, why)
    if attempt.visitor is not None and attempt.visitor.uses_left == 0:
        return Verdict(False, "uses-exhausted")
    if mode == "vacation" and not attempt.admin:
        return Verdict(False, "vacation-mode")
    if attempt.factors > 1 and attempt.method in FACTOR_METHODS and attempt.person is not None:
        if factors is None:  # no place to keep the first factor: one is never enough
            return Verdict(False, "more-factors", still=attempt.factors - 1)
        still, abandoned = factors.add(attempt.person, attempt.method, attempt.factors, mono)
        trip = lockout.fail(mono) if abandoned else None  # a half-done attempt: one failure
        if still:
            return Verdict(False, "more-factors", trip, still=still, abandoned=abandoned)
    if attempt.method not in REMOTE_METHODS:  # the owner's unlock from away says nothing
        lockout.succeed()  # of who is typing at the door (issue 15): the count stays
    reason = "passage-mode" if mode == "passage" else ""
    return Verdict(True, reason, alarm="forced-user" if attempt.duress else None)
