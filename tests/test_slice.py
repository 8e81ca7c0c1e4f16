"""The first passcode unlock, end to end across real processes under supervisord."""

from __future__ import annotations

import sqlite3

import pytest

from proto.board import Bolt
from proto.keypad import CodeEntered, Prompt
from proto.policy import Decision
from tests.meshkit import ADMIN_CODE, LEAN, is_type

pytestmark = pytest.mark.slow
WITHOUT = LEAN  # the lock fixture's (conftest.py): no test here needs those parts


def test_up_reports_every_service_healthy_and_initial_state(lock):
    report = lock.status()
    assert report["healthy"], report
    assert all(s["verdict"] == "healthy" and s["pid"] for s in report["services"].values())
    assert report["lock"] == {
        "bolt": "locked",
        "door": "closed",
        "initial": True,
        "direction": None,
    }


def test_l12_l4_l18_first_admin_then_passcode_unlocks_as_one_causal_chain(lock):
    watch = lock.watcher()
    lock.press("ok", "1")
    watch.wait_for(is_type(Prompt, prompt="direction-set"))
    lock.press("touch")
    lock.press("ok", "1", "2", "3", "4", "5", "6", "ok")  # L-4: a run of consecutive digits
    refusal = watch.wait_for(is_type(Prompt, prompt="code-refused"))
    assert "consecutive" in refusal.body.text
    lock.press(*ADMIN_CODE, "ok")
    watch.wait_for(is_type(Prompt, prompt="repeat-code"))
    lock.press(*ADMIN_CODE, "ok")
    watch.wait_for(is_type(Prompt, prompt="admin-created"))

    lock.press("touch", *ADMIN_CODE, "ok")
    code = watch.wait_for(is_type(CodeEntered, purpose="unlock"))
    decision = watch.wait_for(lambda e: isinstance(e.body, Decision) and e.cause == code.id)
    assert decision.body.granted and decision.body.person == "001"
    moving = watch.wait_for(lambda e: isinstance(e.body, Bolt) and e.cause == decision.id)
    assert moving.body.state == "moving"
    done = watch.wait_for(lambda e: is_type(Bolt, state="unlocked")(e) and e.cause == decision.id)
    assert done.sender == "motor"
    assert lock.status()["lock"]["bolt"] == "unlocked"
    watch.close()


def test_l19_extra_digits_unlock_and_wrong_code_is_refused(ready_lock):
    watch = ready_lock.watcher()
    ready_lock.press("touch", "9", "9", *ADMIN_CODE, "0", "ok")
    assert watch.wait_for(is_type(Decision)).body.granted
    watch.wait_for(is_type(Bolt, state="unlocked"))
    ready_lock.cli("sim", "button", "lock")  # L-25: the inside button throws the bolt again
    watch.wait_for(is_type(Bolt, state="locked"))
    watch.seen.clear()
    ready_lock.press("touch", "1", "3", "5", "7", "9", "0", "ok")
    refusal = watch.wait_for(is_type(Decision))
    assert not refusal.body.granted and refusal.body.reason == "invalid-credential"
    watch.wait_for(is_type(Prompt, prompt="verify-failed"))
    assert ready_lock.status()["lock"]["bolt"] == "locked"
    watch.close()


def test_l10_admin_and_keyed_hash_survive_down_and_up(ready_lock):
    ready_lock.down()
    db = ready_lock.layout.data / "lock.db"
    assert ADMIN_CODE.encode() not in db.read_bytes()  # never stored in clear
    with sqlite3.connect(db) as conn:
        (digest,) = conn.execute("SELECT digest FROM passcodes").fetchone()
    assert len(digest) == 32
    ready_lock.up()
    assert ready_lock.status()["lock"]["initial"] is False
    watch = ready_lock.watcher()
    ready_lock.press("touch", *ADMIN_CODE, "ok")
    assert watch.wait_for(is_type(Decision)).body.granted
    watch.wait_for(is_type(Bolt, state="unlocked"))
    watch.close()
