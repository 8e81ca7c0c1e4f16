"""The panel's state machine: keys and answers in, effects out; no sockets, no clock of its own.

The service turns effects into messages and requests, and feeds each answer back
through answer(). While an answer is awaited, keys are ignored.
"""

from __future__ import annotations

from proto.policy import (
    ArmLeavingHome,
    CheckPasscode,
    CreateFirstAdmin,
    Doorbell,
    FactoryReset,
    LockRequest,
    MuteOnce,
    SetDirection,
    VerifyPasscode,
)
from services.keypad import door_rules
from services.keypad.admin_menu import AdminMenu
from services.keypad.effects import ENTRY_KEYS, Effect, Light, Say, flash_number
from services.keypad.prompts import not_actuated_why

# Where the panel rests, by what the lock knows of itself (L-12).
HOME_PROMPT = {
    "direction-intro": "direction-intro",
    "first-admin-intro": "first-admin-intro",
    "entry": "enter-code",
}
HOME_KEYS = {
    "direction-intro": ["ok", "back"],
    "first-admin-intro": ["back", "ok"],
    "entry": ENTRY_KEYS,
}


class Menu(AdminMenu):
    """The panel's modes outside the administrator's menu; its state is PanelState's."""

    pairing_open = False  # L-17's window, as policy last said: its end is said even if typing

    # -- inputs ---------------------------------------------------------------------------
    def start(self, *, initial: bool, direction: str | None, now: float) -> list[Effect]:
        """Power-on: the initial state asks for the direction at once (L-12)."""
        if initial:
            self.home = "first-admin-intro" if direction else "direction-intro"
        else:
            self.home = "entry"
        if self.home == "direction-intro":
            return self._go_home(now)
        return self._sleep()

    def key(self, key: str, now: float) -> list[Effect]:
        if self.waiting is not None:
            return []
        if self.mode == "asleep":
            return self._wake(now)
        self._last_key = now
        if key == "touch":
            return []
        return getattr(self, "_in_" + self.mode.replace("-", "_"))(key)

    def offer_lock(self, now: float) -> list[Effect]:
        """L-24: the door was shut with the bolt back: ✓ lights, and pressing it locks."""
        if self.home != "entry" or self.waiting is not None:
            return []
        self._last_key, self.mode, self.buffer = now, "offer-lock", ""
        return [Light(["ok"])]

    def offer_reset(self, now: float) -> list[Effect]:
        """L-30: SET was held 5 s as the power came back; ✓ erases everything."""
        if self.waiting is not None:
            return []
        self._last_key = now
        return self._to("factory-reset", "factory-reset-confirm", ["ok", "back"])

    def pairing(self, opened: bool, why: str, now: float) -> list[Effect]:
        """L-17: policy opened or closed the pairing window; 0 flashes while it is open."""
        was_open, self.pairing_open = self.pairing_open, opened
        if self.waiting is not None:
            return []
        if opened:
            self._last_key, self.mode, self.buffer = now, "pairing", ""
            return [Say("pairing"), Light(["0"], flashing=["0"])]
        if not was_open and self.mode != "pairing":
            return []
        said: list[Effect] = [Say("paired" if why == "claimed" else "pairing-ended")]
        return said + self._sleep() if self.mode == "pairing" else said

    def tick(self, now: float) -> list[Effect]:
        if (
            # a capture has its own timeout, the pairing window its own end
            self.mode not in ("asleep", "menu-enrolling", "pairing")
            and self.waiting is None
            and now - self._last_key >= self.sleep_after_s
        ):
            return self._sleep()
        return []

    def answer(self, purpose: str, ok: bool, reason: str = "", detail: str = "") -> list[Effect]:
        """The answer to an Ask; ok is False for a refusal and for no answer in time."""
        if purpose != self.waiting:
            return []
        self.waiting = None
        return getattr(self, "_answer_" + purpose)(ok, reason, detail)

    # -- modes ----------------------------------------------------------------------------
    def _wake(self, now: float) -> list[Effect]:
        """A touch or any key only wakes the panel (L-11); a low battery is said first (L-28)."""
        said = [Say("battery-low")] if self.battery_low else []
        return said + self._go_home(now)

    def _go_home(self, now: float) -> list[Effect]:
        self._last_key = now
        self.mode, self.buffer = self.home, ""
        return [Say(HOME_PROMPT[self.home]), Light(HOME_KEYS[self.home])]

    def _in_direction_intro(self, key: str) -> list[Effect]:
        if key == "ok":
            return self._to("direction-choose", "direction-choose", ["1", "2", "back"])
        return self._sleep() if key == "back" else []

    def _in_direction_choose(self, key: str) -> list[Effect]:
        if key in ("1", "2"):
            return self._ask("direction", SetDirection(direction="right" if key == "1" else "left"))
        if key == "back":
            return self._to("direction-intro", "direction-intro", HOME_KEYS["direction-intro"])
        return []

    def _in_first_admin_intro(self, key: str) -> list[Effect]:
        if key == "ok":
            return self._to("new-code", "enter-new-code", ENTRY_KEYS)
        return self._sleep() if key == "back" else []

    def _in_new_code(self, key: str) -> list[Effect]:
        if key == "back":
            return self._to(
                "first-admin-intro", "first-admin-intro", HOME_KEYS["first-admin-intro"]
            )
        return self._typing(
            key, lambda code: self._ask("check", CheckPasscode(code=code), len(code))
        )

    def _in_repeat_code(self, key: str) -> list[Effect]:
        if key == "back":
            return self._to("new-code", "enter-new-code", ENTRY_KEYS)
        return self._typing(
            key,
            lambda code: self._ask(
                "create", CreateFirstAdmin(code=self.new_code, repeat=code), len(code)
            ),
        )

    def _in_offer_lock(self, key: str) -> list[Effect]:
        if key == "ok":
            return self._ask("lock", LockRequest(source="keypad"))
        self.mode = "entry"  # anything else: someone outside wants to type a code
        return self._in_entry(key)

    def _in_factory_reset(self, key: str) -> list[Effect]:
        if key == "ok":
            return self._ask("factory_reset", FactoryReset())
        return self._sleep() if key == "back" else []

    def _answer_factory_reset(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return [Say("failed", {"why": detail or reason})] + self._sleep()
        self.home, self.token = "direction-intro", ""  # the initial state again (L-12)
        return [Say("factory-reset-done")] + self._go_home(self._last_key)

    def _in_entry(self, key: str) -> list[Effect]:
        if key == "back":
            return self._sleep() if not self.buffer else self._to("entry", "enter-code", ENTRY_KEYS)
        if key == "home" and not self.buffer:  # L-22: armed from outside
            return self._ask("home", ArmLeavingHome())
        if key == "hold-0" and not self.buffer:  # L-21: silent until the next outside unlock
            return self._ask("mute", MuteOnce())
        if key == "bell" and not self.buffer:  # L-23: policy logs it and has the chime rung
            return self._ask("bell", Doorbell())
        return self._typing(
            key, lambda code: self._ask("verify", VerifyPasscode(entry=code), len(code))
        )

    # -- answers --------------------------------------------------------------------------
    def _answer_direction(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return [Say("failed", {"why": detail or reason})] + self._sleep()
        self.home = "first-admin-intro"
        direction = f"{self._asked(SetDirection).direction}-opening"
        return [Say("direction-set", {"direction": direction})] + self._sleep()

    def _answer_check(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return self._to("new-code", "code-refused", ENTRY_KEYS, why=detail or reason)
        self.new_code = self._asked(CheckPasscode).code
        return self._to("repeat-code", "repeat-code", ENTRY_KEYS)

    def _answer_create(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            self.new_code = ""
            return self._to("new-code", "code-refused", ENTRY_KEYS, why=detail or reason)
        self.home = "entry"
        said: list[Effect] = [Say("admin-created", {"number": detail}), *flash_number(detail)]
        return said + self._sleep()

    def _answer_home(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return [Say("failed", {"why": detail or reason})] + self._sleep()
        return [Say("leaving-home-armed")] + self._sleep()

    def _answer_lock(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return [Say("failed", {"why": detail or reason})] + self._sleep()
        return [Say("locking")] + self._sleep()

    def _answer_mute(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return [Say("failed", {"why": detail or reason})] + self._sleep()
        flash = Light(["0"], flashing=["0"])
        return [flash, flash] + self._sleep()  # 0 flashes twice, and not a word

    def _answer_bell(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return [Say("failed", {"why": detail or reason})] + self._sleep()
        return [Say("doorbell")]  # the visitor may still type a code

    def _in_pairing(self, key: str) -> list[Effect]:
        """The window stays open (it ends by itself or with the claim), but the keypad is
        the keypad: a key is taken as at home, a code unlocks (issue 15, fault 1)."""
        self.mode = self.home
        took = getattr(self, "_in_" + self.home.replace("-", "_"))(key)
        return [Light(HOME_KEYS[self.home])] + took  # lit as at home: 0 no longer flashes

    def _answer_verify(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if ok:  # "door unlocked" waits for the motor's word (bolt_reported, issue 11)
            return door_rules.granted(reason) + self._sleep()
        prompt = door_rules.refused(reason)  # issue 15: "system locked", the modes' words
        if prompt is None:  # more factors: the policy's event says what is still needed
            self.mode, self.buffer = "entry", ""
            return []
        return self._to("entry", prompt, ENTRY_KEYS)

    def rules_notice(self, effects: list[Effect], now: float, *, entry: bool) -> list[Effect]:
        """Policy's word on the access rules (issue 15); entry: the panel waits for the next
        credential (a multi-factor attempt's), awake, as if a key had been pressed."""
        if entry and self.waiting is None and self.mode in ("asleep", "entry"):
            self._last_key, self.mode, self.buffer = now, "entry", ""
        return effects

    # -- the bolt: what the motor did, not what policy decided (issue 11) -----------------
    def bolt_reported(self, state: str) -> list[Effect]:
        """The motor reports the end of a drive."""
        return [Say("unlocked")] if state == "unlocked" else []

    def not_actuated(self, action: str, reason: str) -> list[Effect]:
        """Policy says a drive failed, and why."""
        prompt = "not-unlocked" if action == "unlock" else "not-locked"
        return [Say(prompt, {"why": not_actuated_why(reason)})]
