"""A lockout kept in the store beside the row that counted it, so that restarting policy,
or pulling the power, never lifts or shortens it (L-20; the app's, issue 13)."""

from __future__ import annotations

import json
from typing import Any

from services.policy import rules


def made(
    config: dict[str, Any], *, enabled: bool = True, max_s: float | None = None
) -> rules.Lockout:
    """A lockout from a config section with failures, window_s and duration_s; max_s
    makes each lockout since the last success twice as long as the one before."""
    return rules.Lockout(
        limit=config["failures"],
        window_s=config["window_s"],
        duration_s=config["duration_s"],
        enabled=enabled,
        max_s=max_s,
    )


def door_lockout(
    config: dict[str, Any], *, enabled: bool, limit: int, duration_s: float
) -> rules.Lockout:
    """L-20's, with the owner's WrongCodeEntryLimit and UserCodeTemporaryDisableTime, and
    the long-window guard (issue 15): a daily failure budget, and lockouts that double
    with each trip, to max_s, until a day passes without one."""
    return rules.Lockout(
        limit=limit,
        window_s=config["window_s"],
        duration_s=duration_s,
        enabled=enabled,
        max_s=config["max_s"],
        daily_budget=config["daily_budget"] or None,  # 0: no budget
        keep_strikes=True,
    )


def restored(lockout: rules.Lockout, saved: str | None, now: float) -> rules.Lockout:
    """The lockout as saved: an active one at its full length from now (the monotonic
    clock starts again at a boot), failures counted as if made now, strikes kept."""
    state = json.loads(saved or "{}")
    lockout.strikes = max(0, int(state.get("strikes", 0)))
    if state.get("active"):
        lockout.until = now + lockout.length()
    lockout.failures = [now] * min(int(state.get("failures", 0)), lockout.limit - 1)
    day = int(state.get("day", 0))  # the day's failures, as if made now: a longer day
    lockout.day_failures = [now] * min(day, lockout.daily_budget or 0)  # codes tested
    if lockout.strikes:  # a day without a trip counts from now
        lockout.last_trip = lockout.until or now
    return lockout


def saved(lockout: rules.Lockout, now: float) -> str:
    """What restored() reads back; written in the transaction of the row that counted."""
    return json.dumps(
        {
            "active": lockout.active(now),
            "failures": len(lockout.failures),
            "strikes": lockout.strikes,
            "day": len(lockout.day_failures),
        }
    )
