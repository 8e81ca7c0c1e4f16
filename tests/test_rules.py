"""The access rules against the spec, and against a small reference model (hypothesis)."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from proto import config as configuration
from proto.layout import Layout
from services.policy.rules import Attempt, Lockout, Slot, Validity, Verdict, Visitor, decide
from services.policy.service import PolicyService

UTC = timezone.utc
MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()  # a Monday, 09:00


def lockout(**kw) -> Lockout:
    return Lockout(limit=5, window_s=300, duration_s=180, **kw)


def attempt(person="001", method="pin", **kw) -> Attempt:
    return Attempt(method=method, person=person, **kw)


def run(a: Attempt, lo: Lockout, mono: float, wall: float | None = MONDAY_9, remote=False):
    return decide(a, lo, wall=wall, mono=mono, tz=UTC, remote_enabled=remote)


def test_l20_five_failures_in_five_minutes_lock_even_a_valid_code_for_three_minutes():
    lo = lockout()
    verdicts = [run(attempt(None), lo, mono=t * 10) for t in range(5)]
    assert [v.alarm for v in verdicts] == [None] * 4 + ["wrong-code-entry-limit"]
    assert run(attempt(), lo, mono=50).reason == "lockout"
    assert run(attempt(method="face"), lo, mono=100).reason == "lockout"
    assert run(attempt(), lo, mono=40 + 180).granted


def test_l20_failures_spread_over_more_than_five_minutes_do_not_lock():
    lo = lockout()
    for t in range(5):
        run(attempt(None), lo, mono=t * 80)
    assert run(attempt(), lo, mono=400).granted


def test_l20_a_success_resets_the_count_and_methods_mix():
    lo = lockout()
    for method in ("pin", "face", "fingerprint", "palm-vein"):
        run(attempt(None, method=method), lo, mono=1)
    run(attempt(), lo, mono=2)
    for _ in range(4):
        assert run(attempt(None), lo, mono=3).alarm is None
    assert run(attempt(), lo, mono=4).granted


def test_l20_owner_release_and_switching_protection_off():
    lo = lockout()
    for _ in range(5):
        run(attempt(None), lo, mono=1)
    lo.release()
    assert run(attempt(), lo, mono=2).granted
    off = lockout(enabled=False)
    for _ in range(20):
        run(attempt(None), off, mono=1)
    assert run(attempt(), off, mono=2).granted


def test_l20_remote_unlock_is_not_a_local_credential_and_l18_needs_the_setting():
    lo = lockout()
    for _ in range(5):
        run(attempt(None), lo, mono=1)
    assert run(attempt(method="remote"), lo, mono=2).reason == "remote-disabled"
    assert run(attempt(method="remote"), lo, mono=2, remote=True).granted


def test_l7_validity_window_and_weekly_slots():
    workdays = Slot(days=frozenset(range(5)), start=8 * 60, end=18 * 60)
    window = Validity(start=MONDAY_9 - 3600, end=MONDAY_9 + 7 * 86400, slots=(workdays,))
    lo = lockout()
    assert run(attempt(validity=window), lo, mono=1).granted
    evening = MONDAY_9 + 10 * 3600  # 19:00
    assert run(attempt(validity=window), lo, mono=1, wall=evening).reason == "outside-validity"
    saturday = MONDAY_9 + 5 * 86400
    assert run(attempt(validity=window), lo, mono=1, wall=saturday).reason == "outside-validity"
    later = MONDAY_9 + 8 * 86400
    assert run(attempt(validity=window), lo, mono=1, wall=later).reason == "outside-validity"


def test_time_unknown_refuses_restricted_credentials_only():
    lo = lockout()
    window = Validity(end=MONDAY_9 + 86400)
    assert run(attempt(validity=window), lo, mono=1, wall=None).reason == "time-unknown"
    assert run(attempt(), lo, mono=1, wall=None).granted


def test_l8_duress_unlocks_and_raises_the_forced_user_alarm():
    verdict = run(attempt(duress=True), lockout(), mono=1)
    assert verdict.granted and verdict.alarm == "forced-user"


def test_l9_visitor_code_window_and_uses():
    lo = lockout()
    visitor = Visitor("cleaner", Validity(start=MONDAY_9 - 60, end=MONDAY_9 + 60), uses_left=1)
    assert run(Attempt("pin", visitor=visitor), lo, mono=1).granted
    spent = Visitor("cleaner", visitor.validity, uses_left=0)
    assert run(Attempt("pin", visitor=spent), lo, mono=1).reason == "uses-exhausted"
    late = MONDAY_9 + 120
    assert run(Attempt("pin", visitor=visitor), lo, mono=1, wall=late).reason == "outside-validity"


# -- the reference model, against the policy service itself ---------------------------------
class Reference:
    """L-20 and L-7 read literally: a lockout is 5 failures inside any 300 s, lasting 180 s.
    A restart brings back what policy had on disk at its last verdict: an active lockout
    at its full length from the restart, and the failures counted from the restart (their
    times are lost with the monotonic clock; a power cut must not clear them)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.failures: list[float] = []  # since the last success or lockout
        self.locked_until = -1.0
        self.saved = (False, 0)  # locked, failures: as of the last verdict

    def verdict(self, valid: bool, window_refusal: str | None, mono: float) -> str:
        """ "granted", or the reason of the refusal; window_refusal is why the person's
        validity window refuses them now (None: it does not)."""
        verdict = self._verdict(valid, window_refusal, mono)
        self.saved = (mono < self.locked_until, len(self.failures))
        return verdict

    def _verdict(self, valid: bool, window_refusal: str | None, mono: float) -> str:
        if mono < self.locked_until:
            return "lockout"
        if not valid:
            if self.enabled:
                self.failures = [t for t in self.failures if t > mono - 300] + [mono]
                if len(self.failures) == 5:
                    self.locked_until, self.failures = mono + 180, []
            return "invalid-credential"
        if window_refusal is not None:
            return window_refusal
        self.failures = []
        return "granted"

    def restart(self, mono: float) -> None:
        locked, failures = self.saved
        self.locked_until = mono + 180 if locked else -1.0
        self.failures = [mono] * min(failures, 4)


class Policy:
    """The policy service on its own files, in this process and without its sockets.
    Verdicts go through its decider's verify (the rules, logged with the lockout's state in one
    transaction); a restart is a new service on the same files, which restores the
    lockout there (Decider.restored_lockout). It reads the monotonic and wall clocks set here."""

    def __init__(self, data: Path, enabled: bool) -> None:
        self.layout = Layout.at(data)
        self.layout.data.mkdir(parents=True)
        self.config = configuration.load(None)
        self.config["lockout"]["enabled"] = enabled
        # L-20 alone: issue 15's long-window guard is modelled in test_access_rules_model.py
        self.config["lockout"].update(daily_budget=0, max_s=180.0)
        self.mono, self.wall = 0.0, MONDAY_9
        self.service = self._start()

    def _start(self) -> PolicyService:
        service = PolicyService(self.layout, self.config, clock=lambda: self.mono)
        service.setup()
        service.lock.wall = self  # a WallClock: now() is the wall time this test sets
        return service

    def now(self) -> float | None:
        return self.wall

    def restart(self) -> None:
        self.service.teardown()
        self.service = self._start()

    def verify(self, a: Attempt) -> Verdict:
        return self.service.decider.verify(a, TRACE, source="keypad", success="unlock")

    def close(self) -> None:
        self.service.teardown()


TRACE = SimpleNamespace(trace=None)  # the envelope that caused a verdict: only its trace is read


def test_l20_a_restarted_policy_keeps_the_lockout_at_full_length_and_the_failures(tmp_path):
    """Restarted mid-lockout, even by a power cut that starts the monotonic clock again,
    the policy restores the lockout for its full 180 s from the restart; restarted after 4
    failures, it locks at the next."""
    policy = Policy(tmp_path / "data", enabled=True)
    try:
        for _ in range(5):
            assert policy.verify(attempt(None)).reason == "invalid-credential"
        policy.mono = 100.0
        policy.restart()
        policy.mono = 5.0  # after the power cut
        policy.restart()
        policy.mono = 5.0 + 179.9
        assert policy.verify(attempt()).reason == "lockout"
        policy.mono = 5.0 + 180.0
        assert policy.verify(attempt()).granted
        for _ in range(4):
            policy.verify(attempt(None))
        policy.restart()
        assert policy.verify(attempt(None)).alarm == "wrong-code-entry-limit"
        assert policy.verify(attempt()).reason == "lockout"
    finally:
        policy.close()


steps = st.lists(
    st.tuples(
        st.sampled_from([False, False, True]),  # valid: failures often enough to lock out
        st.booleans(),
        st.one_of(st.floats(0, 30), st.floats(0, 400)),  # attempts close together, or not
        st.sampled_from(["step", "restart", "power-cut", "clock-lost"]),
        st.floats(-7200, 7200),
        st.integers(1, 5),  # tried that many times, a second apart: lockouts come often
    ),
    min_size=1,
    max_size=60,
)


def window_refusal(restricted: bool, wall: float | None) -> str | None:
    """Why the step's window ([MONDAY_9 - 1 h, MONDAY_9 + 1 h) when restricted) refuses at
    wall, if it does."""
    if not restricted:
        return None
    if wall is None:
        return "time-unknown"
    return None if -3600 <= wall - MONDAY_9 < 3600 else "outside-validity"


@settings(max_examples=200)
@given(steps, st.booleans())
def test_rules_match_the_reference_through_clock_jumps_and_restarts(script, enabled):
    """Never a grant outside the rules, never a refusal of a valid user outside a lockout,
    every refusal for the reason the rules give; the policy restarted (mid-lockout or not,
    the monotonic clock kept or started again) keeps to all three."""
    ref = Reference(enabled)
    window = Validity(start=MONDAY_9 - 3600, end=MONDAY_9 + 3600)
    with tempfile.TemporaryDirectory() as tmp:
        policy = Policy(Path(tmp) / "data", enabled)
        try:
            for valid, restricted, dt, event, jump, tries in script:
                policy.mono += dt
                if event in ("restart", "power-cut"):
                    if event == "power-cut":
                        policy.mono = dt  # the monotonic clock starts again at boot
                    policy.restart()
                    ref.restart(policy.mono)
                policy.wall = None if event == "clock-lost" else MONDAY_9 + jump  # it jumps
                a = attempt(
                    None if not valid else "001", validity=window if restricted else Validity()
                )
                for _ in range(tries):
                    got = policy.verify(a)
                    why = window_refusal(restricted, policy.wall)
                    expected = ref.verdict(valid, why, policy.mono)
                    assert ("granted" if got.granted else got.reason) == expected, (expected, got)
                    policy.mono += 1.0
        finally:
            policy.close()
