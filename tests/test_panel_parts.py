"""The panel's battery indicator, doorbell and pairing display, as pure parts (L-17, L-23, L-28)."""

from __future__ import annotations

import pytest

from proto.config import DEFAULTS
from proto.control import Done
from proto.keypad import INDICATORS, INPUTS
from proto.policy import Doorbell
from proto.power import Battery
from services.keypad.battery import BATTERY_KEY, is_low, with_battery
from services.keypad.effects import ENTRY_KEYS, Ask, Light, Say
from services.keypad.menu import Menu
from services.policy.doorbell import NO_ANSWER, NO_VIDEO, snapshot_note, video_allowed

LOW = DEFAULTS["power"]["low_percent"]  # 25 %
VIDEO = DEFAULTS["power"]["video_min_percent"]  # 20 %


def battery(percent: float, **flags: bool) -> Battery:
    return Battery(percent=percent, volts=3.7, **flags)


def asleep_menu() -> Menu:
    menu = Menu(sleep_after_s=20.0, max_digits=20)
    menu.start(initial=False, direction="right", now=0.0)
    return menu


def test_l28_the_battery_key_is_lit_only_never_pressed():
    assert BATTERY_KEY in INDICATORS and BATTERY_KEY not in INPUTS


@pytest.mark.parametrize(
    "report, low",
    [
        (None, False),  # nothing heard yet: no warning
        (battery(80), False),
        (battery(LOW), False),  # the threshold itself is not below it
        (battery(LOW - 0.1), True),
        (battery(80, low=True), True),  # power's own flag counts too
    ],
)
def test_l28_low_is_below_the_threshold_or_power_says_so(report, low):
    assert is_low(report, LOW) is low


def test_l28_a_low_battery_is_said_at_each_wake_and_the_battery_key_lights():
    menu = asleep_menu()
    menu.battery_low = True
    effects = menu.key("touch", 1.0)
    assert effects[0] == Say("battery-low") and Say("enter-code") in effects
    assert with_battery(effects, True)[-1] == Light([*ENTRY_KEYS, BATTERY_KEY])
    assert menu.key("5", 2.0) == []  # awake: said once per wake, not per key
    menu.key("back", 3.0)  # clears the 5
    menu.key("back", 3.5)  # asleep again
    assert menu.mode == "asleep"
    assert menu.key("touch", 4.0)[0] == Say("battery-low")


def test_l28_a_good_battery_says_nothing_and_a_dark_panel_stays_dark():
    menu = asleep_menu()
    assert Say("battery-low") not in menu.key("touch", 1.0)
    assert with_battery([Light([])], True) == [Light([])]
    flashing = Light(["0"], flashing=["0"])
    assert with_battery([flashing], True) == [Light(["0", BATTERY_KEY], flashing=["0"])]
    assert with_battery([flashing], False) == [flashing]


def test_l23_bell_with_nothing_typed_asks_policy_then_says_doorbell():
    menu = asleep_menu()
    menu.key("touch", 1.0)
    [ask] = menu.key("bell", 2.0)
    assert isinstance(ask, Ask) and ask.request == Doorbell() and ask.to == "policy"
    assert menu.answer("bell", True, detail=NO_VIDEO) == [Say("doorbell")]
    assert menu.mode == "entry"  # the visitor may still type a code


def test_l23_bell_in_the_middle_of_a_code_is_not_a_ring():
    menu = asleep_menu()
    menu.key("touch", 1.0)
    menu.key("1", 2.0)
    assert menu.key("bell", 3.0) == [] and menu.buffer == "1"


@pytest.mark.parametrize(
    "report, allowed",
    [
        (None, True),  # the power service has not spoken yet: video is not forbidden
        (battery(80), True),
        (battery(VIDEO), True),  # at the threshold video is allowed (L-28)
        (battery(VIDEO - 1), False),
        (battery(90, video_allowed=False), False),
    ],
)
def test_l23_the_snapshot_is_asked_for_only_when_the_battery_allows_video(report, allowed):
    assert video_allowed(report, VIDEO) is allowed


@pytest.mark.parametrize(
    "answer, note",
    [
        (Done(ok=True, detail="bell-1-7.jpg"), "snapshot=bell-1-7"),
        (Done(ok=False, reason="no-camera"), "snapshot: no-camera"),
        (
            Done(ok=False, reason="no-frame", detail="no frame yet"),
            "snapshot: no-frame (no frame yet)",
        ),
        (None, NO_ANSWER),  # the face service did not answer within snapshot_timeout_s
    ],
)
def test_l23_issue_13_the_doorbell_row_names_the_snapshot_or_why_there_is_none(answer, note):
    assert snapshot_note(answer, "bell-1-7") == note


def test_l17_pairing_flashes_0_stays_awake_and_ends_by_the_windows_word():
    menu = asleep_menu()
    effects = menu.pairing(True, "opened", 1.0)
    assert effects == [Say("pairing"), Light(["0"], flashing=["0"])]
    assert menu.tick(1000.0) == []  # no 20 s sleep while the window is open
    assert menu.pairing(False, "ended", 1002.0) == [Say("pairing-ended"), Light([])]
    assert menu.mode == "asleep"
    assert menu.pairing(False, "ended", 1003.0) == []  # not pairing: nothing to end


def test_l17_a_claim_ends_pairing_with_its_own_word():
    menu = asleep_menu()
    menu.pairing(True, "opened", 1.0)
    assert menu.pairing(False, "claimed", 2.0)[0] == Say("paired")
