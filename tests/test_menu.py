"""The panel's state machine: keys and answers in, effects out (L-11, L-12, L-18, L-19)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.config import DEFAULTS
from proto.keypad import INPUTS
from proto.policy import (
    ArmLeavingHome,
    CheckPasscode,
    CreateFirstAdmin,
    Doorbell,
    LockRequest,
    MuteOnce,
    SetDirection,
    VerifyPasscode,
)
from services.keypad.effects import ENTRY_KEYS, Ask, Light, Say
from services.keypad.menu import Menu
from services.keypad.prompts import PROMPTS, text

SLEEP_S = DEFAULTS["keypad"]["sleep_after_s"]  # 20 s (L-11)
MAX_DIGITS = DEFAULTS["keypad"]["max_digits"]  # 20 (L-19)
CODE = "135790"


class Panel:
    """A menu with a clock that moves one second per key."""

    def __init__(self) -> None:
        self.menu = Menu(sleep_after_s=SLEEP_S, max_digits=MAX_DIGITS)
        self.now = 1000.0

    def start(self, *, initial: bool, direction: str | None) -> list:
        return self.menu.start(initial=initial, direction=direction, now=self.now)

    def press(self, *keys: str) -> list:
        effects: list = []
        for key in keys:
            self.now += 1
            effects += self.menu.key(key, self.now)
        return effects

    def type(self, digits: str) -> list:
        return self.press(*digits)

    def answer(self, purpose: str, ok: bool, reason: str = "", detail: str = "") -> list:
        return self.menu.answer(purpose, ok, reason, detail)

    @property
    def mode(self) -> str:
        return self.menu.mode


def says(effects: list) -> list[str]:
    return [e.prompt for e in effects if isinstance(e, Say)]


def lit(effects: list) -> list[str] | None:
    lights = [e for e in effects if isinstance(e, Light)]
    return lights[-1].keys if lights else None


def asks(effects: list) -> list[Ask]:
    return [e for e in effects if isinstance(e, Ask)]


def only_ask(effects: list) -> Ask:
    (ask,) = asks(effects)
    return ask


@pytest.fixture
def panel() -> Panel:
    return Panel()


@pytest.fixture
def ready(panel: Panel) -> Panel:
    """A lock with an administrator: the panel sleeps until touched."""
    assert panel.start(initial=False, direction="right") == [Light([])]
    return panel


def first_admin_intro(panel: Panel) -> Panel:
    """The initial state with the direction already set, woken by a touch."""
    panel.start(initial=True, direction="right")
    panel.press("touch")
    assert panel.mode == "first-admin-intro"
    return panel


# -- L-12 first start ---------------------------------------------------------------------
def test_l12_first_start_flow(panel: Panel) -> None:
    effects = panel.start(initial=True, direction=None)
    assert says(effects) == ["direction-intro"] and lit(effects) == ["ok", "back"]

    effects = panel.press("ok")
    assert says(effects) == ["direction-choose"] and lit(effects) == ["1", "2", "back"]

    ask = only_ask(panel.press("1"))
    assert ask.purpose == "direction" and ask.request == SetDirection(direction="right")

    effects = panel.answer("direction", True)
    assert Say("direction-set", {"direction": "right-opening"}) in effects
    assert panel.mode == "asleep" and lit(effects) == []

    effects = panel.press("touch")  # touch wakes ↶ and ✓
    assert says(effects) == ["first-admin-intro"] and sorted(lit(effects)) == ["back", "ok"]

    effects = panel.press("ok")
    assert says(effects) == ["enter-new-code"] and lit(effects) == ENTRY_KEYS

    assert panel.type(CODE) == []
    ask = only_ask(panel.press("ok"))
    assert (ask.purpose, ask.request, ask.digits) == ("check", CheckPasscode(code=CODE), 6)

    effects = panel.answer("check", True)
    assert says(effects) == ["repeat-code"] and panel.mode == "repeat-code"

    panel.type(CODE)
    ask = only_ask(panel.press("ok"))
    assert ask.purpose == "create"
    assert ask.request == CreateFirstAdmin(code=CODE, repeat=CODE) and ask.digits == 6

    effects = panel.answer("create", True, detail="001")
    assert Say("admin-created", {"number": "001"}) in effects
    assert panel.mode == "asleep"

    effects = panel.press("touch")  # from now on the panel asks for a code to unlock
    assert says(effects) == ["enter-code"] and panel.mode == "entry"


def test_l12_left_opening_door(panel: Panel) -> None:
    panel.start(initial=True, direction=None)
    panel.press("ok")
    ask = only_ask(panel.press("2"))
    assert ask.request == SetDirection(direction="left")
    assert Say("direction-set", {"direction": "left-opening"}) in panel.answer("direction", True)


def test_l12_initial_state_with_direction_set_sleeps_until_touched(panel: Panel) -> None:
    assert panel.start(initial=True, direction="left") == [Light([])]
    assert says(panel.press("touch")) == ["first-admin-intro"]


def test_l12_only_1_and_2_choose_a_direction(panel: Panel) -> None:
    panel.start(initial=True, direction=None)
    panel.press("ok")
    assert panel.press("3", "0", "ok", "home", "bell") == []
    assert panel.mode == "direction-choose"


def test_l12_back_exits_the_first_admin_intro(panel: Panel) -> None:
    first_admin_intro(panel)
    assert panel.press("back") == [Light([])]
    assert panel.mode == "asleep"


def test_l12_direction_refused_says_why_and_asks_again_later(panel: Panel) -> None:
    panel.start(initial=True, direction=None)
    panel.press("ok", "1")
    effects = panel.answer("direction", False, "not-allowed", "the direction is set from the menu")
    assert Say("failed", {"why": "the direction is set from the menu"}) in effects
    assert panel.mode == "asleep"
    assert says(panel.press("touch")) == ["direction-intro"]  # still not set


def test_l4_refused_code_says_why_and_asks_for_a_new_one(panel: Panel) -> None:
    first_admin_intro(panel)
    panel.press("ok")
    panel.type("123456")
    panel.press("ok")
    effects = panel.answer("check", False, "sequence", "consecutive digits are too easy to guess")
    assert Say("code-refused", {"why": "consecutive digits are too easy to guess"}) in effects
    assert panel.mode == "new-code"
    panel.type(CODE)
    assert only_ask(panel.press("ok")).request == CheckPasscode(code=CODE)


def test_l4_refusal_without_detail_shows_the_reason(panel: Panel) -> None:
    first_admin_intro(panel)
    panel.press("ok")
    panel.type("111111")
    panel.press("ok")
    assert Say("code-refused", {"why": "all-same"}) in panel.answer("check", False, "all-same")


def test_l4_mismatched_repeat_starts_over(panel: Panel) -> None:
    first_admin_intro(panel)
    panel.press("ok")
    panel.type(CODE)
    panel.press("ok")
    panel.answer("check", True)
    panel.type("135791")
    ask = only_ask(panel.press("ok"))
    assert ask.request == CreateFirstAdmin(code=CODE, repeat="135791")
    effects = panel.answer("create", False, "mismatch", "the two entries do not match")
    assert Say("code-refused", {"why": "the two entries do not match"}) in effects
    assert panel.mode == "new-code" and panel.menu.new_code == ""


def test_ok_without_digits_asks_nothing(panel: Panel) -> None:
    first_admin_intro(panel)
    panel.press("ok")
    assert panel.press("ok") == []
    assert panel.mode == "new-code"


# -- ↶ goes back one level ----------------------------------------------------------------
def test_l14_back_from_direction_choice_returns_to_the_intro(panel: Panel) -> None:
    panel.start(initial=True, direction=None)
    panel.press("ok")
    effects = panel.press("back")
    assert says(effects) == ["direction-intro"] and panel.mode == "direction-intro"
    assert panel.press("back") == [Light([])] and panel.mode == "asleep"


def test_l14_back_from_new_code_returns_to_the_intro(panel: Panel) -> None:
    first_admin_intro(panel)
    panel.press("ok")
    panel.type("123")
    assert says(panel.press("back")) == ["first-admin-intro"]
    assert panel.mode == "first-admin-intro"


def test_l14_back_from_repeat_returns_to_new_code(panel: Panel) -> None:
    first_admin_intro(panel)
    panel.press("ok")
    panel.type(CODE)
    panel.press("ok")
    panel.answer("check", True)
    panel.type("13")
    assert says(panel.press("back")) == ["enter-new-code"]
    assert panel.mode == "new-code" and panel.menu.buffer == ""


def test_l14_back_in_entry_clears_digits_then_sleeps(ready: Panel) -> None:
    ready.press("touch")
    ready.type("999")
    assert says(ready.press("back")) == ["enter-code"]
    assert ready.mode == "entry" and ready.menu.buffer == ""
    assert ready.press("back") == [Light([])] and ready.mode == "asleep"


# -- L-18 unlock entry --------------------------------------------------------------------
def test_l18_passcode_unlock(ready: Panel) -> None:
    effects = ready.press("touch")
    assert says(effects) == ["enter-code"] and lit(effects) == ENTRY_KEYS
    ready.type(CODE)
    ask = only_ask(ready.press("ok"))
    assert (ask.purpose, ask.request, ask.digits) == ("verify", VerifyPasscode(entry=CODE), 6)
    effects = ready.answer("verify", True)
    # granted is not unlocked: the panel says so only on the motor's word (issue 11)
    assert says(effects) == [] and ready.mode == "asleep"
    assert says(ready.menu.bolt_reported("unlocked")) == ["unlocked"]


def test_issue11_the_panel_says_why_a_drive_failed_and_nothing_for_other_bolt_states(
    ready: Panel,
) -> None:
    for state in ("moving", "jammed", "unknown", "locked"):
        assert ready.menu.bolt_reported(state) == []
    (jammed,) = ready.menu.not_actuated("unlock", "jammed")
    assert (jammed.prompt, jammed.params) == ("not-unlocked", {"why": "the bolt is jammed"})
    (weak,) = ready.menu.not_actuated("unlock", "insufficient-battery")
    assert "battery" in text(weak.prompt, weak.params)
    (busy,) = ready.menu.not_actuated("lock", "busy")
    assert text(busy.prompt, busy.params) == "The door did not lock: the motor is busy"


def test_l18_refused_entry_says_so_and_waits_for_another(ready: Panel) -> None:
    ready.press("touch")
    ready.type("000000")
    ready.press("ok")
    effects = ready.answer("verify", False, "invalid-credential")
    assert says(effects) == ["verify-failed"] and ready.mode == "entry"
    ready.type(CODE)
    assert only_ask(ready.press("ok")).request == VerifyPasscode(entry=CODE)


def test_l11_a_key_while_asleep_only_wakes(ready: Panel) -> None:
    effects = ready.press("5")
    assert says(effects) == ["enter-code"]
    assert ready.menu.buffer == ""  # the waking key is not a digit of the code


def test_l19_code_inside_extra_digits_is_sent_whole(ready: Panel) -> None:
    ready.press("touch")
    entry = "77" + CODE + "1234"
    ready.type(entry)
    assert only_ask(ready.press("ok")).request == VerifyPasscode(entry=entry)


def test_l19_at_most_max_digits(ready: Panel) -> None:
    ready.press("touch")
    assert ready.type("1" * MAX_DIGITS) == []
    effects = ready.press("2")
    assert Say("too-many-digits", {"max": str(MAX_DIGITS)}) in effects
    ask = only_ask(ready.press("ok"))
    assert ask.request == VerifyPasscode(entry="1" * MAX_DIGITS) and ask.digits == MAX_DIGITS


def test_l19_limit_comes_from_configuration() -> None:
    menu = Menu(sleep_after_s=SLEEP_S, max_digits=8)
    menu.start(initial=False, direction="right", now=0)
    menu.key("touch", 1)
    for i, digit in enumerate("1234567890"):
        menu.key(digit, 2 + i)
    (ask,) = menu.key("ok", 20)
    assert ask.request == VerifyPasscode(entry="12345678")


# -- waiting for an answer ----------------------------------------------------------------
def test_keys_are_ignored_while_waiting_for_an_answer(ready: Panel) -> None:
    ready.press("touch")
    ready.type(CODE)
    ready.press("ok")
    assert ready.press("1", "2", "ok", "back", "touch") == []
    assert ready.menu.buffer == "" and ready.mode == "entry"
    assert ready.answer("verify", True) == [Light([])]


def test_an_answer_to_another_step_is_ignored(ready: Panel) -> None:
    ready.press("touch")
    ready.type(CODE)
    ready.press("ok")
    assert ready.answer("check", True) == []
    assert ready.answer("bogus", True) == []
    assert ready.menu.waiting == "verify"
    assert says(ready.answer("verify", False)) == ["verify-failed"]
    assert ready.answer("verify", True) == []  # answered once only


def test_an_answer_when_nothing_was_asked_is_ignored(ready: Panel) -> None:
    assert ready.answer("verify", True) == []
    assert ready.mode == "asleep"


def test_no_sleep_while_waiting_for_an_answer(ready: Panel) -> None:
    ready.press("touch")
    ready.type(CODE)
    ready.press("ok")
    assert ready.menu.tick(ready.now + SLEEP_S * 3) == []
    assert ready.mode == "entry"


# -- L-11 sleep ---------------------------------------------------------------------------
def test_l11_sleeps_after_sleep_after_s_without_keys(ready: Panel) -> None:
    ready.press("touch")
    ready.type("12")
    assert ready.menu.tick(ready.now + SLEEP_S - 0.1) == []
    assert ready.mode == "entry"
    assert ready.menu.tick(ready.now + SLEEP_S) == [Light([])]
    assert ready.mode == "asleep" and ready.menu.buffer == ""
    assert ready.menu.tick(ready.now + SLEEP_S * 2) == []  # asleep already


def test_l11_each_key_restarts_the_sleep_countdown(ready: Panel) -> None:
    ready.press("touch")
    for _ in range(5):
        ready.now += SLEEP_S - 1
        ready.menu.key("1", ready.now)
        assert ready.menu.tick(ready.now + SLEEP_S - 1) == []
    assert ready.mode == "entry"


def test_l11_sleep_forgets_a_half_made_code(panel: Panel) -> None:
    first_admin_intro(panel)
    panel.press("ok")
    panel.type(CODE)
    panel.press("ok")
    panel.answer("check", True)
    panel.menu.tick(panel.now + SLEEP_S)
    assert panel.mode == "asleep" and panel.menu.new_code == ""
    assert says(panel.press("touch")) == ["first-admin-intro"]


def test_every_prompt_has_a_text(panel: Panel) -> None:
    assert set(PROMPTS) >= {"direction-intro", "direction-choose", "enter-code", "unlocked"}
    assert text("too-many-digits", {"max": "20"}) == "At most 20 digits"


# -- any sequence -------------------------------------------------------------------------
ALLOWED = {  # the mode a key is pressed in → what that key may ask
    "direction-choose": {("direction", SetDirection)},
    "new-code": {("check", CheckPasscode)},
    "repeat-code": {("create", CreateFirstAdmin)},
    "entry": {
        ("verify", VerifyPasscode),
        ("home", ArmLeavingHome),
        ("mute", MuteOnce),
        ("bell", Doorbell),
    },
}
ALLOWED["pairing"] = ALLOWED["entry"]  # the keypad works while pairing is open (issue 15)
PURPOSES = ("direction", "check", "create", "verify", "home", "mute", "bell", "other")
STEPS = st.one_of(
    st.tuples(st.just("key"), st.sampled_from(INPUTS)),
    st.tuples(st.just("key"), st.sampled_from("0123456789ok")),  # more typing
    st.tuples(
        st.just("answer"),
        st.tuples(
            st.sampled_from(PURPOSES),
            st.booleans(),
            st.sampled_from(["", "why"]),
            st.sampled_from(["", "001"]),
        ),
    ),
    st.tuples(st.just("tick"), st.floats(0, 2 * SLEEP_S)),
    st.tuples(st.just("pairing"), st.tuples(st.booleans(), st.sampled_from(["ended", "claimed"]))),
    st.tuples(st.just("battery"), st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(
    initial=st.booleans(),
    direction=st.sampled_from([None, "right", "left"]),
    max_digits=st.integers(1, MAX_DIGITS),
    steps=st.lists(STEPS, max_size=80),
)
def test_any_sequence_keeps_the_machine_sound(
    initial: bool, direction: str | None, max_digits: int, steps: list
) -> None:
    menu = Menu(sleep_after_s=SLEEP_S, max_digits=max_digits)
    now = 0.0
    menu.start(initial=initial, direction=direction, now=now)
    for kind, arg in steps:
        before, waiting = menu.mode, menu.waiting
        if kind == "key":
            now += 0.5
            effects = menu.key(arg, now)
            if waiting is not None:
                assert effects == []
        elif kind == "answer":
            effects = menu.answer(*arg)
            if arg[0] != waiting:
                assert effects == []
        elif kind == "pairing":
            effects = menu.pairing(*arg, now)
            if waiting is not None:
                assert effects == []
        elif kind == "battery":
            menu.battery_low, effects = arg, []
        else:
            now += arg
            effects = menu.tick(now)
        for ask in asks(effects):
            assert kind == "key" and waiting is None
            assert (ask.purpose, type(ask.request)) in ALLOWED.get(before, set())
            assert menu.waiting == ask.purpose
            if isinstance(ask.request, VerifyPasscode):
                assert 0 < len(ask.request.entry) <= max_digits
                assert ask.request.entry.isdigit() and ask.digits == len(ask.request.entry)
            if isinstance(ask.request, (CheckPasscode, CreateFirstAdmin)):
                assert 0 < len(ask.request.code) <= max_digits
        assert len(asks(effects)) <= 1
        assert len(menu.buffer) <= max_digits
        for effect in effects:
            if isinstance(effect, Say):
                text(effect.prompt, effect.params)  # every prompt said can be shown


def test_l21_holding_0_mutes_with_two_flashes_and_no_word(panel: Panel) -> None:
    panel.start(initial=False, direction="right")
    panel.press("touch")
    [ask] = panel.press("hold-0")
    assert isinstance(ask, Ask) and isinstance(ask.request, MuteOnce)
    effects = panel.answer("mute", True)
    flash = Light(["0"], flashing=["0"])
    assert effects == [flash, flash, Light([])] and says(effects) == []


def test_l22_home_arms_leaving_home_mode(panel: Panel) -> None:
    panel.start(initial=False, direction="right")
    panel.press("touch")
    [ask] = panel.press("home")
    assert isinstance(ask.request, ArmLeavingHome)
    assert says(panel.answer("home", True)) == ["leaving-home-armed"]


def test_l24_after_the_door_shuts_ok_lights_and_locks(panel: Panel) -> None:
    panel.start(initial=False, direction="right")
    assert panel.menu.offer_lock(now=0.0) == [Light(["ok"])]
    [ask] = panel.press("ok")
    assert isinstance(ask.request, LockRequest)
    assert says(panel.answer("lock", True)) == ["locking"]


def test_l24_typing_instead_of_ok_is_a_code_entry(panel: Panel) -> None:
    panel.start(initial=False, direction="right")
    panel.menu.offer_lock(now=0.0)
    panel.press("2", "4")
    assert panel.mode == "entry" and panel.menu.buffer == "24"
