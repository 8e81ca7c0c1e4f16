"""How long a code takes to guess at the door (issue 15): the real L-20 lockout, with
its long-window guard or without, against attackers of several paces.

A wrong entry of L digits tests every run of the shortest stored code's length in it
(L-19's anti-peeping): up to 15 six-digit codes in a 20-digit entry. The attacker types
an entry, waits `pace_s`, and types again, waiting out any lockout first; the best pace
is the one that tests the most codes. The expected number of codes to test to hit one
of K stored six-digit codes among N = 10^6 is (N + 1) / (K + 1).
"""

from __future__ import annotations

from services.policy import rules

CODE_SPACE, STORED = 10**6, 50  # six-digit codes; a full lock holds 50 (L-3)
PACES_S = (1.0, 10.0, 61.0, 76.0, 300.0, 1800.0, 3600.0, 1728.0, 3456.0, 5000.0, 86400.0)
WINDOWS = (1, 15)  # an entry of the code's length, or one of 20 digits


def to_hit() -> float:
    """Codes to test, on average, until one of the stored ones is among them."""
    return (CODE_SPACE + 1) / (STORED + 1)


def door_lockout(daily_budget: int | None) -> rules.Lockout:
    """L-20's defaults, and the guard's (proto/config.py) when daily_budget is set."""
    guarded = daily_budget is not None
    return rules.Lockout(
        limit=5,
        window_s=300.0,
        duration_s=180.0,
        max_s=86400.0 if guarded else None,
        daily_budget=daily_budget,
        keep_strikes=guarded,
    )


def tested(daily_budget: int | None, pace_s: float, windows: int, *, until_s: float,
           target: float = float("inf")) -> tuple[float, float]:  # fmt: skip
    """(codes tested, seconds taken) by one attacker, until until_s or the target."""
    lockout, now, codes = door_lockout(daily_budget), 0.0, 0.0
    while now < until_s and codes < target:
        if lockout.active(now):
            now = lockout.until or now
            continue
        lockout.fail(now, windows)
        codes += windows
        now += pace_s
    return codes, now


def best_per_day(daily_budget: int | None, days: int) -> float:
    """The most codes a day any attacker here tests, over `days` days."""
    until = days * rules.DAY_S
    return max(
        tested(daily_budget, pace, windows, until_s=until)[0] / days
        for pace in PACES_S
        for windows in WINDOWS
    )


def expected_days(daily_budget: int | None) -> float:
    """Days until the fastest attacker here has tested to_hit() codes."""
    ten_years = 3650 * rules.DAY_S
    return (
        min(
            tested(daily_budget, pace, windows, until_s=ten_years, target=to_hit())[1]
            for pace in PACES_S
            for windows in WINDOWS
        )
        / rules.DAY_S
    )
