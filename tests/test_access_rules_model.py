"""Issue 15's rules together, against a model written from the issue and L-20, L-7:
operating modes x multi-factor x the lockout (with its daily budget and growing trips) x
validity windows, through policy's real Decider on a real store (tests/policykit.py).

Hypothesis draws the steps: the owner changes the mode, a person's CredentialRule,
UserStatus or validity, or releases the lockout; time passes; the wall clock moves or is
lost; someone presents a credential (a right one, or a wrong one testing 1 or 15 codes).
After every step the decider's verdict, its lockout and its half-done attempt are the
model's."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from services.policy.actuation import Actuation
from services.policy.decider import Decider
from services.policy.rules import Attempt
from tests.policykit import Clock, Outlet, make_lock

MONDAY_9 = 1796029200.0  # 2026-11-30 09:00 UTC
WALLS = {"inside": MONDAY_9, "outside": MONDAY_9 + 7200, "lost": None}
LIMIT, WINDOW, DURATION, MAX, BUDGET, FACTOR_S, DAY = 5, 300.0, 180.0, 86400.0, 20, 30.0, 86400.0
FACTORS = {"single": 1, "dual": 2, "tri": 3}
LOCAL = ("pin", "face", "fingerprint", "palm-vein")
TRACE = SimpleNamespace(trace=None)


@dataclass
class Model:
    """The rules as the issue states them, kept apart from services/policy/rules.py."""

    now: float = 1000.0
    mode: str = "normal"
    rule: str = "single"  # 002's CredentialRule; 001 is an administrator, single
    disabled: bool = False  # 002's UserStatus
    restricted: bool = False  # 002 only within [MONDAY_9 - 1 h, MONDAY_9 + 1 h)
    wall: str = "inside"
    failures: list[float] = field(default_factory=list)  # in L-20's window
    day: list[float] = field(default_factory=list)  # one per code tested, in any 24 h
    locked_until: float | None = None
    strikes: int = 0
    last_end: float | None = None  # the newest lockout's end
    pending: tuple[str, set[str], float] | None = None  # a half-done multi-factor attempt

    # -- L-20 and the long-window guard ---------------------------------------------------
    def settle(self) -> None:
        """A lockout that has run out is over, and its failures with it."""
        if self.locked_until is not None and self.now >= self.locked_until:
            self.locked_until, self.failures = None, []

    def fail(self, tries: int = 1) -> None:
        if self.last_end is not None and self.now - self.last_end >= DAY:
            self.strikes, self.last_end = 0, None  # a day without a trip forgives
        self.failures = [t for t in self.failures if self.now - t < WINDOW] + [self.now]
        self.day = [t for t in self.day if self.now - t < DAY] + [self.now] * tries
        if len(self.failures) >= LIMIT or len(self.day) >= BUDGET:
            self.strikes += 1
            length = min(DURATION * 2 ** min(self.strikes - 1, 40), MAX)
            self.locked_until = self.last_end = self.now + length
            self.failures = []

    def expire(self) -> None:
        if self.pending is not None and self.now - self.pending[2] >= FACTOR_S:
            self.pending = None
            self.fail()
            self.settle()

    # -- a credential ----------------------------------------------------------------------
    def verdict(self, person: str | None, method: str, tries: int) -> str:
        """ "granted", "granted:passage-mode", or the refusal's reason."""
        self.expire()
        reason = self._verdict(person, method, tries)
        self.settle()
        return reason

    def _verdict(self, person: str | None, method: str, tries: int) -> str:
        if self.mode == "privacy":
            return "privacy-mode"
        if method == "remote":
            return "no-remote-mode" if self.mode == "no-remote" else self._granted()
        self.settle()
        if self.locked_until is not None:
            return "lockout"
        if person is None:
            self.fail(tries)
            return "invalid-credential"
        if person == "002" and self.disabled:
            return "user-disabled"
        if person == "002" and self.restricted:
            wall = WALLS[self.wall]
            if wall is None:
                return "time-unknown"
            if not MONDAY_9 - 3600 <= wall < MONDAY_9 + 3600:
                return "outside-validity"
        if self.mode == "vacation" and person != "001":
            return "vacation-mode"
        needed = FACTORS[self.rule] if person == "002" else 1
        if needed > 1:
            if self.pending is None or self.pending[0] != person:
                abandoned = self.pending is not None
                self.pending = (person, set(), self.now)
                if abandoned:
                    self.fail()
            self.pending[1].add(method)
            if len(self.pending[1]) < needed:
                return "more-factors"
            self.pending = None
        self.failures = []
        return self._granted()

    def _granted(self) -> str:
        return "granted:passage-mode" if self.mode == "passage" else "granted"


class AccessRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock, self.model = Clock(), Model()
        self.lock = make_lock(Path(self.tmp.name) / "data", self.clock, Outlet())
        self.lock.wall = SimpleNamespace(now=lambda: WALLS[self.model.wall])  # type: ignore[assignment]
        people = self.lock.people
        people.add("admin", "Ann", b"a" * 32, 6, source="test")
        people.add("user", "Bob", b"b" * 32, 6, source="test")
        self.lock.settings.set("remote_unlock", True, source="test")
        self.decider = Decider(self.lock, Actuation(self.lock))

    def teardown(self) -> None:
        self.lock.store.close()
        self.tmp.cleanup()

    @initialize()
    def start(self) -> None:
        self.clock.now = self.model.now

    # -- the owner ------------------------------------------------------------------------
    @rule(mode=st.sampled_from(["normal", "vacation", "privacy", "no-remote", "passage"]))
    def set_mode(self, mode: str) -> None:
        value = json.dumps({"mode": mode, "slots": []})
        self.lock.store.set_setting("operating_mode", value, source="test")
        self.model.mode = mode

    @rule(credential_rule=st.sampled_from(list(FACTORS)))
    def set_rule(self, credential_rule: str) -> None:
        self.lock.people.set_credential_rule("002", credential_rule, source="test")
        self.model.rule = credential_rule

    @rule(disabled=st.booleans())
    def set_disabled(self, disabled: bool) -> None:
        self.lock.people.set_status("002", not disabled, source="test")
        self.model.disabled = disabled

    @rule(restricted=st.booleans())
    def set_validity(self, restricted: bool) -> None:
        start, end = (MONDAY_9 - 3600, MONDAY_9 + 3600) if restricted else (None, None)
        self.lock.people.set_validity("002", start, end, [], source="test")
        self.model.restricted = restricted

    @rule()
    def release(self) -> None:
        self.decider.release_lockout(source="test", cause="test")
        m = self.model
        m.locked_until, m.failures, m.strikes, m.day = None, [], 0, []

    # -- the world ---------------------------------------------------------------------------
    @rule(seconds=st.sampled_from([1.0, 29.0, 30.0, 180.0, 300.0, 3600.0, DAY]))
    def time_passes(self, seconds: float) -> None:
        self.model.now = self.clock.now = self.clock.now + seconds
        self.decider.tick(self.clock.now)
        self.model.expire()
        self.model.settle()

    @rule(wall=st.sampled_from(list(WALLS)))
    def wall_clock(self, wall: str) -> None:
        self.model.wall = wall

    # -- someone at the door, or the owner's remote unlock ------------------------------------
    @rule(
        person=st.sampled_from(["001", "002", None, None, None]),  # wrong ones: lockouts
        method=st.sampled_from([*LOCAL, *LOCAL, "remote"]),
        tries=st.sampled_from([1, 1, 1, 4, 15]),
        times=st.integers(1, 6),  # the same credential again and again: lockouts come often
    )
    def present(self, person: str | None, method: str, tries: int, times: int) -> None:
        if method == "remote":
            attempt = Attempt("remote", person="owner")
        elif person is None:
            attempt = Attempt(method, tries=tries)
        else:
            attempt = Attempt(method, person=person, validity=self.lock.people.validity(person))
        for _ in range(times):
            verdict = self.decider.verify(attempt, TRACE, source="keypad", success="granted")
            got = ("granted:" + verdict.reason).rstrip(":") if verdict.granted else verdict.reason
            assert got == self.model.verdict(person, method, tries)

    # -- after every step ----------------------------------------------------------------------
    @invariant()
    def the_lockout_is_the_models(self) -> None:
        lockout, m = self.decider.lockout, self.model
        assert (lockout.until, lockout.strikes) == (m.locked_until, m.strikes)
        assert len(lockout.failures) == len(m.failures)
        assert len(lockout.day_failures) == len([t for t in m.day if m.now - t < DAY]) or (
            len(lockout.day_failures) == len(m.day)
        )

    @invariant()
    def the_half_done_attempt_is_the_models(self) -> None:
        factors, pending = self.decider.factors, self.model.pending
        assert factors.person == (pending[0] if pending else None)
        if pending is not None:
            assert set(factors.methods) == pending[1]


AccessRules.TestCase.settings = settings(
    AccessRules.TestCase.settings, max_examples=60, stateful_step_count=40, deadline=None
)
test_issue_15_modes_factors_lockout_and_validity_match_the_model = AccessRules.TestCase
