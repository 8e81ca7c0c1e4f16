"""The administrator's menu on the panel, through the real processes (L-13, L-14, L-16, L-6)."""

from __future__ import annotations

import json

import pytest

from proto.bus import Bus
from proto.keypad import Lit, Prompt
from proto.policy import MenuAddPerson
from tests.meshkit import ADMIN_CODE, is_type

pytestmark = pytest.mark.slow


def prompt(watch, name: str) -> Prompt:
    return watch.wait_for(is_type(Prompt, prompt=name)).body


def people(lock) -> list[tuple[str, str]]:
    items = json.loads(lock.cli("people", "--json").stdout)["items"]
    return [(p["number"], p["role"]) for p in items]


def test_l13_l14_l16_the_menu_adds_deletes_turns_and_tells(ready_lock):
    lock = ready_lock
    watch = lock.watcher()
    lock.cli("sim", "button", "set")
    prompt(watch, "menu-verify")
    lock.press("1", "3", "5", "7", "9", "0", "ok")  # not an administrator's code
    prompt(watch, "verify-failed")
    watch.seen.clear()
    lock.cli("sim", "button", "set")
    lock.press(*ADMIN_CODE, "ok")
    prompt(watch, "menu")
    lock.press("2", "4", "1", "3", "5", "7", "9", "2", "ok")  # a user with a passcode
    prompt(watch, "repeat-code")
    lock.press("1", "3", "5", "7", "9", "2", "ok")
    assert prompt(watch, "person-added").params == {"number": "002"}
    assert people(lock) == [("001", "admin"), ("002", "user")]
    watch.seen.clear()
    lock.press("3", "9", "ok")  # L-6: an unknown number fails, digits flash, retry
    prompt(watch, "delete-failed")
    assert watch.wait_for(is_type(Lit, flashing=["0", "9"]))
    lock.press("2", "ok")
    prompt(watch, "person-deleted")
    assert people(lock) == [("001", "admin")]
    lock.press("4", "2")
    assert prompt(watch, "direction-set").params == {"direction": "left-opening"}
    lock.press("5")
    info = prompt(watch, "system-info").params
    assert info["serial"].startswith("LM") and len(info["code"]) == 6
    lock.press("back")
    prompt(watch, "menu-exit")
    assert lock.status()["lock"]["direction"] == "left"


def test_l13_the_panel_cannot_change_people_without_a_session(ready_lock):
    with Bus(ready_lock.layout, "keypad") as keypad:  # a keypad that skips the menu
        answer = keypad.client("policy").request(
            MenuAddPerson(token="forged", role="admin", code="135792", repeat="135792"), timeout=5
        )
    assert not answer.body.ok and answer.body.reason == "no-session"
    assert people(ready_lock) == [("001", "admin")]
