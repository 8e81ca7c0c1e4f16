"""The administrator's menu on the panel, through the real processes (L-13, L-14, L-16, L-6)."""

from __future__ import annotations

import json

import pytest

from proto.bus import Bus
from proto.keypad import Lit, Prompt
from proto.policy import MenuAddPerson
from tests.meshkit import ADMIN_CODE, eventually, is_type, lean_but, running

pytestmark = pytest.mark.slow
# the lock fixture's (conftest.py); the face capture's test runs a whole lock
WITHOUT = lean_but("biometric")


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
    prompt(watch, "menu-verify")  # SET reaches the panel through the motor: wait for it
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


def prompts_after(watch, start: int) -> list[str]:
    return [e.body.prompt for e in watch.seen[start:] if isinstance(e.body, Prompt)]


def open_menu(lock, watch) -> None:
    lock.cli("sim", "button", "set")
    prompt(watch, "menu-verify")
    lock.press(*ADMIN_CODE, "ok")
    prompt(watch, "menu")


def test_l14_l15_the_menu_creates_a_user_by_fingerprint_who_then_unlocks(ready_lock):
    from proto.biometric import EnrolDone
    from proto.policy import Decision

    lock, watch = ready_lock, ready_lock.watcher()
    open_menu(lock, watch)
    lock.press("2", "3")  # create user, fingerprint
    assert watch.wait_for(is_type(Lit, keys=["back"]))
    prompt(watch, "place-finger")
    lock.cli("sim", "finger", "carol-index")
    prompt(watch, "lift-finger")
    watch.wait_for(lambda e: is_type(Prompt, prompt="place-finger")(e)
                   and e.body.params == {"count": "2"})  # fmt: skip
    lock.cli("sim", "finger", "carol-index")
    assert watch.wait_for(is_type(EnrolDone)).body.person == "002"
    assert prompt(watch, "person-added").params == {"number": "002"}
    prompt(watch, "menu")  # back in the menu, ready for the next
    assert people(lock) == [("001", "admin"), ("002", "user")]
    assert json.loads(lock.cli("people", "--json").stdout)["items"][1]["fingerprints"] == 1

    lock.press("back")
    prompt(watch, "menu-exit")
    lock.cli("sim", "finger", "")  # the simulated sensor sees it gone before the next
    watch.seen.clear()
    lock.cli("sim", "finger", "carol-index")
    decision = watch.wait_for(is_type(Decision)).body
    assert (decision.granted, decision.person, decision.method) == (True, "002", "fingerprint")


def test_l14_l15_an_administrator_by_palm_and_back_cancels_a_palm_or_face_capture(tmp_path):
    with running(tmp_path / "data", without=lean_but("biometric", "face")) as lock:
        watch = lock.watcher()
        eventually(lambda: lock.status()["services"]["face"]["state"] == "ready", timeout=60)
        open_menu(lock, watch)
        watch.seen.clear()
        lock.press("1", "2")  # create administrator, palm vein
        prompt(watch, "palm-ready")
        lock.press("back")  # changed their mind: nothing is stored, back to the menu
        assert prompt(watch, "failed").params == {"why": "cancelled"}
        prompt(watch, "menu")
        said = prompts_after(watch, 0)
        assert said[:2] == ["menu-credential", "palm-ready"] and said[-2:] == ["failed", "menu"]
        assert set(said[2:-2]) <= {"palm-show"}  # the module's notes while no palm was shown
        watch.seen.clear()
        lock.press("1", "2")
        prompt(watch, "palm-ready")
        lock.cli("sim", "palm", "dave-left", "--distance", "40")
        prompt(watch, "palm-too-far")
        lock.cli("sim", "palm", "dave-left", "--distance", "20")
        assert prompt(watch, "person-added").params == {"number": "002"}
        assert people(lock) == [("001", "admin"), ("002", "admin")]
        watch.seen.clear()
        lock.press("2", "1")  # a user by face: the first pose is asked for (L-15); back stops it
        prompt(watch, "face-straight")
        lock.press("back")
        assert prompt(watch, "failed").params == {"why": "cancelled"}
        assert people(lock) == [("001", "admin"), ("002", "admin")]
