"""The bolt's truth (issue 11, item 8): the log and the panel say "unlocked" only once the
motor reports the bolt drawn back; a refused or failed drive is said and logged with why.
"""

from __future__ import annotations

import json

import pytest

from proto.board import Bolt
from proto.keypad import CodeEntered, Prompt
from proto.policy import ActuationFailed, Decision
from proto.power import Battery
from tests.meshkit import ADMIN_CODE, LEAN, is_type, running

pytestmark = pytest.mark.slow
WITHOUT = LEAN  # the lock fixture's (conftest.py): no test here needs those parts


def events(lock) -> list[dict]:
    """The event log, oldest first."""
    return json.loads(lock.cli("events", "--json", "--limit=200").stdout)["items"][::-1]


def kinds_after(lock, seq: int) -> list[str]:
    return [e["kind"] for e in events(lock) if e["seq"] > seq]


def newest_seq(lock) -> int:
    return events(lock)[-1]["seq"]


def said(watch) -> list[str]:
    return [e.body.prompt for e in watch.seen if isinstance(e.body, Prompt)]


def unlock_attempt(lock, watch) -> tuple[str, Decision]:
    """ADMIN_CODE at the panel: the code event's id (the rows' cause) and the decision."""
    earlier = {e.id for e in watch.seen}
    lock.press("touch", *ADMIN_CODE, "ok")
    code = watch.wait_for(
        lambda e: is_type(CodeEntered, purpose="unlock")(e) and e.id not in earlier
    )
    decision = watch.wait_for(lambda e: isinstance(e.body, Decision) and e.cause == code.id)
    assert decision.body.granted
    return code.id, decision


def failure_said(watch, decision, reason: str) -> Prompt:
    """The panel's word on a failed drive, caused by policy's ActuationFailed for it."""
    failed = watch.wait_for(is_type(ActuationFailed, action="unlock", reason=reason))
    assert failed.cause == decision.cause  # the same cause as the decision's row
    return watch.wait_for(
        lambda e: is_type(Prompt, prompt="not-unlocked")(e) and e.cause == failed.id
    ).body


@pytest.fixture
def quick_jam_lock(tmp_path):
    """A set-up lock whose drive counts as jammed after 1 s."""
    with running(tmp_path / "data", "[motor]\ntravel_timeout_s = 1.0\n", without=LEAN) as lock:
        yield lock


def test_issue11_granted_is_logged_at_once_and_unlock_when_the_motor_reports_it(ready_lock):
    lock, watch = ready_lock, ready_lock.watcher()
    cause, decision = unlock_attempt(lock, watch)
    done = watch.wait_for(lambda e: is_type(Bolt, state="unlocked")(e) and e.cause == decision.id)
    spoken = watch.wait_for(is_type(Prompt, prompt="unlocked"))
    assert spoken.cause == done.id  # the panel repeats the motor, not the decision
    granted, unlock = [e for e in events(lock) if e["cause"] == cause]
    assert granted["kind"] == "granted" and unlock["kind"] == "unlock"
    for row in (granted, unlock):
        assert (row["person"], row["method"], row["source"]) == ("001", "pin", "keypad")
    assert unlock["wall"] >= done.wall  # written after the motor's report, not before


def test_issue11_a_jammed_bolt_is_neither_logged_nor_said_unlocked(quick_jam_lock):
    lock, watch = quick_jam_lock, quick_jam_lock.watcher()
    lock.cli("sim", "jam")
    before = newest_seq(lock)
    cause, decision = unlock_attempt(lock, watch)
    assert failure_said(watch, decision, "jammed").params == {"why": "the bolt is jammed"}
    assert "unlocked" not in said(watch)
    rows = [e for e in events(lock) if e["seq"] > before and e["cause"] == cause]
    assert [(e["kind"], e["reason"]) for e in rows] == [
        ("granted", ""),
        ("actuation-failed", "jammed"),
    ]
    assert "unlock" not in kinds_after(lock, before)
    assert lock.status()["lock"]["bolt"] == "jammed"


def test_issue11_l28_a_flat_battery_is_said_and_logged_not_unlocked(ready_lock):
    lock, watch = ready_lock, ready_lock.watcher()
    lock.cli("sim", "battery", "2")
    watch.wait_for(is_type(Battery, percent=2.0))
    before = newest_seq(lock)
    cause, decision = unlock_attempt(lock, watch)
    why = failure_said(watch, decision, "insufficient-battery").params["why"]
    assert "battery" in why
    failed = [e for e in events(lock) if e["seq"] > before and e["kind"] == "actuation-failed"]
    assert [(e["reason"], e["cause"], e["person"]) for e in failed] == [
        ("insufficient-battery", cause, "001")
    ]
    assert "unlock" not in kinds_after(lock, before)
    assert "unlocked" not in said(watch)
    assert lock.status()["lock"]["bolt"] == "locked"


def test_issue11_a_busy_motor_is_said_and_only_the_drive_it_made_is_logged(tmp_path):
    config = "[board]\nsim_travel_s = 4.0\n[motor]\ntravel_timeout_s = 8.0\n"
    with running(tmp_path / "data", config, without=LEAN) as lock:
        watch = lock.watcher()
        first_cause, first = unlock_attempt(lock, watch)
        watch.wait_for(lambda e: is_type(Bolt, state="moving")(e) and e.cause == first.id)
        second_cause, second = unlock_attempt(lock, watch)  # while the bolt travels
        assert failure_said(watch, second, "busy").params == {"why": "the motor is busy"}
        watch.wait_for(lambda e: is_type(Bolt, state="unlocked")(e) and e.cause == first.id)
        watch.wait_for(is_type(Prompt, prompt="unlocked"))
        rows = {(e["kind"], e["cause"], e["reason"]) for e in events(lock)}
        assert ("unlock", first_cause, None) in rows
        assert ("actuation-failed", second_cause, "busy") in rows
        assert not any(k == "unlock" and c == second_cause for k, c, _ in rows)


def test_issue11_a_lock_that_jams_is_said_and_not_logged_as_a_lock(quick_jam_lock):
    lock, watch = quick_jam_lock, quick_jam_lock.watcher()
    unlock_attempt(lock, watch)
    watch.wait_for(is_type(Bolt, state="unlocked"))
    lock.cli("sim", "jam")
    before = newest_seq(lock)
    lock.cli("sim", "button", "lock")  # L-25: the inside button
    failed = watch.wait_for(is_type(ActuationFailed, action="lock", reason="jammed"))
    spoken = watch.wait_for(is_type(Prompt, prompt="not-locked"))
    assert spoken.cause == failed.id and spoken.body.params == {"why": "the bolt is jammed"}
    rows = [e for e in events(lock) if e["seq"] > before and e["kind"] != "alarm"]
    assert [(e["kind"], e["source"], e["reason"]) for e in rows] == [
        ("actuation-failed", "button", "jammed")
    ]
