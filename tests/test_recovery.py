"""Kills (issue 11): a drive cut short by a motor restart (item 8), and every service back
within 5 s of the last of repeated kills less than a second apart (item 9).
"""

from __future__ import annotations

import json
import os
import signal
import time
from types import SimpleNamespace

import pytest

from proto.board import Bolt, Button
from proto.keypad import Prompt
from proto.layout import SERVICES
from proto.policy import ActuationFailed, Alarm, Decision
from services.motor.journal import Journal
from tests.meshkit import ADMIN_CODE, LEAN, Lock, eventually, is_type, running

RECOVERY_PROMISE_S = 5.0
# A running process is killed, then each of its next five as supervisord shows it, or
# 0.2 ... 0.8 s later: while Python starts, while the service sets up, once it runs.
# (supervisord with startsecs=1 backs off 1+2+3+4+5 s for five starts cut short.)
KILL_OFFSETS_S = (0.0, 0.2, 0.4, 0.6, 0.8)
SLOW_BOLT = "[board]\nsim_travel_s = 3.0\n[motor]\ntravel_timeout_s = 6.0\n"


def events(lock) -> list[dict]:
    """The event log, oldest first."""
    return json.loads(lock.cli("events", "--json", "--limit=200").stdout)["items"][::-1]


def bolt_position(lock: Lock) -> float:
    """The simulated bolt: 0.0 thrown (locked), 1.0 drawn back; -1.0 before the motor has
    written the board's file at all."""
    path = lock.layout.data / "sim-board.json"
    return json.loads(path.read_text())["bolt"] if path.exists() else -1.0


def kill_half_way(lock: Lock) -> float:
    """SIGKILL the motor while the bolt is between a third and two thirds of its travel."""
    eventually(lambda: 0.33 < bolt_position(lock) < 0.67, timeout=10, every=0.02)
    os.kill(lock.pid("motor"), signal.SIGKILL)
    return bolt_position(lock)


# -- the motor's journal ---------------------------------------------------------------------
def test_issue11_the_journal_holds_an_unfinished_drive_until_it_ends(tmp_path):
    journal = Journal(tmp_path / "work" / "lockmesh-motor" / "motor-state.json")
    assert journal.last() is None
    drive = journal.started("lock", "left", "keypad-1")
    assert journal.last() == drive and drive.unfinished
    assert oct(journal.path.stat().st_mode & 0o777) == "0o600"
    assert oct(journal.path.parent.stat().st_mode & 0o777) == "0o700"
    done = journal.finished(drive, "locked")
    assert journal.last() == done and not done.unfinished and done.outcome == "locked"


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"action": "lock"}',
        '{"action": "open", "direction": "right", "cause": null, "started": 1}',
    ],
)
def test_issue11_an_unreadable_journal_is_no_drive_to_resume(tmp_path, text):
    path = tmp_path / "motor-state.json"
    path.write_text(text)
    assert Journal(path).last() is None


# -- a service that cannot start backs off by itself -------------------------------------------
def test_issue11_a_service_failing_at_start_backs_off_and_a_crash_after_running_does_not(
    tmp_path,
):
    from services.base import _pause_after_failure

    failing = SimpleNamespace(layout=SimpleNamespace(run=tmp_path), NAME="power", state="starting")
    pauses = [_pause_after_failure(failing) for _ in range(7)]
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    failing.state = "ready"  # it ran, then crashed: supervisord's restart comes in 1 s
    assert _pause_after_failure(failing) == 1.0
    failing.state = "starting"
    assert _pause_after_failure(failing) == 1.0  # a new streak


@pytest.fixture
def slow_bolt_lock(tmp_path):
    """A set-up lock whose bolt takes 3 s end to end: time to kill the motor mid-drive."""
    with running(tmp_path / "data", SLOW_BOLT, without=LEAN) as lock:
        yield lock


@pytest.mark.slow
def test_issue11_a_lock_cut_short_by_a_motor_kill_is_finished_and_alarmed(slow_bolt_lock):
    lock, watch = slow_bolt_lock, slow_bolt_lock.watcher()
    lock.press("touch", *ADMIN_CODE, "ok")
    watch.wait_for(is_type(Bolt, state="unlocked"), timeout=15)
    watch.seen.clear()
    lock.cli("sim", "button", "lock")  # L-25: the inside button
    pressed = watch.wait_for(is_type(Button, button="lock"))
    moving = watch.wait_for(is_type(Bolt, state="moving"))
    assert moving.cause == pressed.id
    at_kill = kill_half_way(lock)
    alarm = watch.wait_for(is_type(Alarm, code="drive-interrupted"), timeout=15)
    assert alarm.cause == moving.cause
    assert alarm.body.detail.startswith("lock cut short by a motor restart: bolt unknown")
    thrown = watch.wait_for(
        lambda e: is_type(Bolt, state="locked")(e) and e.cause == moving.cause, timeout=15
    )
    assert 0 < at_kill < 1 and bolt_position(lock) == 0.0
    assert lock.status()["lock"]["bolt"] == "locked"
    rows = [e for e in events(lock) if e["cause"] == moving.cause]
    assert sorted((e["kind"], e["reason"]) for e in rows) == [
        ("alarm", "drive-interrupted"),
        ("lock", None),
    ]
    (thrown_row,) = [e for e in rows if e["kind"] == "lock"]
    assert thrown_row["source"] == "button" and thrown_row["wall"] >= thrown.wall
    assert "actuation-failed" not in [e["kind"] for e in events(lock)]


@pytest.mark.slow
def test_issue11_an_unlock_cut_short_is_left_where_it_stopped_alarmed_and_said(slow_bolt_lock):
    lock, watch = slow_bolt_lock, slow_bolt_lock.watcher()
    lock.press("touch", *ADMIN_CODE, "ok")
    decision = watch.wait_for(is_type(Decision))
    watch.wait_for(lambda e: is_type(Bolt, state="moving")(e) and e.cause == decision.id)
    at_kill = kill_half_way(lock)
    alarm = watch.wait_for(is_type(Alarm, code="drive-interrupted"), timeout=15)
    assert alarm.cause == decision.cause  # the decision's row and the alarm's: one cause
    assert alarm.body.detail == "unlock cut short by a motor restart: bolt unknown, now unknown"
    failed = watch.wait_for(is_type(ActuationFailed, reason="drive-interrupted"))
    spoken = watch.wait_for(is_type(Prompt, prompt="not-unlocked"))
    assert spoken.cause == failed.id
    assert "unlocked" not in [e.body.prompt for e in watch.seen if isinstance(e.body, Prompt)]
    assert bolt_position(lock) == at_kill  # fail-secure: a restart never draws the bolt
    assert lock.status()["lock"]["bolt"] == "unknown"
    rows = [e for e in events(lock) if e["cause"] == decision.cause]
    assert [(e["kind"], e["reason"]) for e in rows] == [
        ("granted", ""),
        ("alarm", "drive-interrupted"),
        ("actuation-failed", "drive-interrupted"),
    ]
    assert "unlock" not in [e["kind"] for e in events(lock)]


def next_pid(lock: Lock, service: str, old: int) -> int:
    """The pid of the process supervisord started in place of old."""
    new = eventually(
        lambda: (p := lock.pid(service)) not in (old, 0) and p,
        timeout=RECOVERY_PROMISE_S,
        every=0.01,
    )
    return new


def kill_storm(lock: Lock, service: str) -> float:
    """Kill the running process, then each new one KILL_OFFSETS_S after supervisord shows
    it (less than a second into its life); seconds from the last kill to an answer."""
    pid = lock.pid(service)
    os.kill(pid, signal.SIGKILL)
    for offset in KILL_OFFSETS_S:
        pid = next_pid(lock, service, pid)
        # the moment of the kill is the test's input, not a wait for an event
        time.sleep(offset)
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    lock.wait_restarted(service, pid, timeout=2 * RECOVERY_PROMISE_S)
    return time.monotonic() - killed


@pytest.mark.slow  # the lock fixture's whole lock: every service is killed
def test_issue11_each_service_answers_within_5s_of_the_last_of_repeated_kills(ready_lock):
    lock, measured = ready_lock, {}
    for service in SERVICES:
        measured[service] = round(kill_storm(lock, service), 2)
        assert measured[service] < RECOVERY_PROMISE_S, measured
    print(f"answered this long after the last of {1 + len(KILL_OFFSETS_S)} kills: {measured}")
    lock.wait_healthy(timeout=10)
    assert lock.status()["lock"]["bolt"] == "locked"
