"""Faults a new user found at the panel (issue 15, faults 1, 7, 8), as pure parts: the
panel's state machine, keys and answers in, effects out. The mesh's side of the same
faults is in tests/test_door_faults_mesh.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proto.policy import VerifyPasscode
from services.keypad.effects import ENTRY_KEYS, Ask, Light, Say
from services.keypad.menu import Menu
from services.keypad.prompts import text
from services.keypad.voice import Voice
from tests.test_voice import drain, fake_program

CODE = "246813"


def asleep_menu() -> Menu:
    menu = Menu(sleep_after_s=20.0, max_digits=20)
    menu.start(initial=False, direction="right", now=0.0)
    return menu


def test_issue15_l17_l18_a_code_typed_while_pairing_is_open_unlocks_and_the_end_is_said():
    menu = asleep_menu()
    assert menu.pairing(True, "opened", 1.0) == [Say("pairing"), Light(["0"], flashing=["0"])]
    assert menu.key("touch", 2.0) == []  # the panel is awake already: nothing to wake
    effects = []
    for key in (*CODE, "ok"):
        effects += menu.key(key, 3.0)
    assert Light(ENTRY_KEYS) in effects  # lit as at home once a key is pressed
    asks = [e for e in effects if isinstance(e, Ask)]
    assert [(a.purpose, a.request) for a in asks] == [("verify", VerifyPasscode(entry=CODE))]
    assert menu.answer("verify", True) == [Light([])]  # "door unlocked" waits for the motor
    # the window, still open in policy, ends by itself: the panel says so though it moved on
    assert menu.pairing(False, "ended", 181.0) == [Say("pairing-ended")]
    assert menu.pairing(False, "ended", 182.0) == []  # said once


def test_issue15_l17_the_doorbell_and_mute_work_while_pairing_too():
    menu = asleep_menu()
    menu.pairing(True, "opened", 1.0)
    asks = [e for e in menu.key("bell", 2.0) if isinstance(e, Ask)]
    assert [a.purpose for a in asks] == ["bell"]


def test_issue15_l2_a_person_made_in_the_menu_is_announced_and_their_digits_flash_in_turn():
    menu = asleep_menu()
    menu.mode, menu.token = "menu-repeat-code", "session"
    menu.new_code = CODE
    effects = []
    for key in (*CODE, "ok"):
        effects += menu.key(key, 1.0)
    effects = menu.answer("menu_add", True, "", "002")
    said = effects.index(Say("person-added", {"number": "002"}))
    assert effects[said + 1 : said + 4] == [
        Light(["0"], flashing=["0"]),
        Light(["0"], flashing=["0"]),
        Light(["2"], flashing=["2"]),
    ]


def test_issue15_l2_l12_the_first_administrators_number_flashes_too():
    menu = Menu(sleep_after_s=20.0, max_digits=20)
    menu.start(initial=True, direction="right", now=0.0)
    menu.mode, menu.new_code = "repeat-code", CODE
    for key in (*CODE, "ok"):
        menu.key(key, 1.0)
    effects = menu.answer("create", True, "", "001")
    assert effects[:4] == [
        Say("admin-created", {"number": "001"}),
        Light(["0"], flashing=["0"]),
        Light(["0"], flashing=["0"]),
        Light(["1"], flashing=["1"]),
    ]


def test_issue15_l14_a_credential_added_to_someone_is_not_said_as_a_new_person():
    menu = asleep_menu()
    effects = menu.enrol_done(True, "", "002", 5.0, modality="palm", new_person=False)
    assert effects == [Say("credential-added", {"credential": "palm vein", "number": "002"})]
    assert text("credential-added", effects[0].params) == (
        "Operation successful: palm vein added for person 002"
    )
    made = menu.enrol_done(True, "", "003", 6.0, modality="finger", new_person=True)
    assert made[0] == Say("person-added", {"number": "003"})
    assert Light(["3"], flashing=["3"]) in made


@pytest.fixture
def speaker(tmp_path, monkeypatch) -> Path:
    """A stand-in espeak-ng first on PATH (test_voice's); the file it writes what it says to."""
    said = tmp_path / "said.txt"
    fake_program(tmp_path / "bin", "espeak-ng", said, delay_s=0.05)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return said


def test_issue15_l36_the_volume_sets_the_voices_level_and_0_is_silent(speaker):
    voice = Voice("espeak-ng")
    voice.say("doorbell", text("doorbell", {}), 0)  # silent: nothing is started
    voice.say("doorbell", text("doorbell", {}), 3)
    voice.say("enter-code", text("enter-code", {}), 1)
    voice.say("enter-code", text("enter-code", {}), 2)  # espeak-ng's own default level
    assert drain(voice, speaker, 3) == [
        f"-a 170 {text('doorbell', {})}",
        f"-a 50 {text('enter-code', {})}",
        text("enter-code", {}),
    ]
    assert voice.spoken == 3
    voice.close()
