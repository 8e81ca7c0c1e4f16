"""The access rules against the spec, and against a small reference model (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from services.policy.rules import Attempt, Lockout, Slot, Validity, Visitor, decide

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


# -- the reference model --------------------------------------------------------------------
class Reference:
    """L-20 and L-7 read literally: a lockout is 5 failures inside any 300 s, lasting 180 s."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.failures: list[float] = []  # since the last success or lockout
        self.locked_until = -1.0

    def verdict(self, valid: bool, restricted_ok: bool | None, mono: float) -> str:
        if mono < self.locked_until:
            return "lockout"
        if not valid:
            if self.enabled:
                self.failures = [t for t in self.failures if t > mono - 300] + [mono]
                if len(self.failures) == 5:
                    self.locked_until, self.failures = mono + 180, []
            return "refused"
        if restricted_ok is False:
            return "refused"
        self.failures = []
        return "granted"


steps = st.lists(
    st.tuples(
        st.booleans(),
        st.booleans(),
        st.floats(0, 400),
        st.sampled_from(["step", "restart", "clock-lost"]),
        st.floats(-7200, 7200),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps, st.booleans())
def test_rules_match_the_reference_through_clock_jumps_and_restarts(script, enabled):
    """Never a grant outside the rules, never a refusal of a valid user outside a lockout."""
    lo, ref = lockout(enabled=enabled), Reference(enabled)
    window = Validity(start=MONDAY_9 - 3600, end=MONDAY_9 + 3600)
    mono = 0.0
    for valid, restricted, dt, event, jump in script:
        mono += dt
        if event == "restart" and lo.until is not None:  # the service restores it in full
            lo.until, ref.locked_until = mono + lo.duration_s, mono + lo.duration_s
        clock = None if event == "clock-lost" else MONDAY_9 + jump  # the wall clock jumps
        a = attempt(None if not valid else "001", validity=window if restricted else Validity())
        got = run(a, lo, mono=mono, wall=clock)
        in_window = None if not restricted else (clock is not None and abs(clock - MONDAY_9) < 3600)
        expected = ref.verdict(valid, in_window, mono)
        assert (expected == "granted") == got.granted, (expected, got)
        if expected == "lockout":
            assert got.reason == "lockout"
