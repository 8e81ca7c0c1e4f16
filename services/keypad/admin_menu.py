"""The administrator's menu (L-13, L-14, L-16), mixed into the panel's state machine.

SET, then an administrator's passcode, opens it; 1 create administrator, 2 create user
(then 1 face, 2 palm vein, 3 fingerprint, 4 passcode), 3 delete, 4 opening direction,
5 system information; back goes back one level everywhere.
"""

from __future__ import annotations

from proto.biometric import EnrolCancel, EnrolOpen
from proto.policy import (
    CheckPasscode,
    MenuAddPerson,
    MenuArm,
    MenuDelete,
    MenuDirection,
    MenuInfo,
    MenuOpen,
    MenuOpenBiometric,
)
from services.keypad.effects import ENTRY_KEYS, Effect, Light, Say, flash_number
from services.keypad.panel_state import PanelState

MENU_KEYS = ["1", "2", "3", "4", "5", "back"]
CREDENTIAL_KEYS = ["1", "2", "3", "4", "back"]
ENROLMENTS = {"1": ("face", "face"), "2": ("biometric", "palm"), "3": ("biometric", "finger")}
CREDENTIAL_WORDS = {"face": "face", "palm": "palm vein", "finger": "fingerprint"}


class AdminMenu(PanelState):
    """The menu's modes; keeps the administrator's token."""

    token = ""
    role = "user"
    enrolling = "biometric"  # the service of the enrolment under way

    def set_pressed(self, now: float) -> list[Effect]:
        """SET on the rear panel: verify an administrator first (L-13)."""
        if self.home != "entry" or self.waiting is not None:
            return []
        self._last_key = now
        # an administrator's code, or their face, finger or palm: policy is told to expect it
        return self._to("menu-verify", "menu-verify", ENTRY_KEYS) + self._ask("menu_arm", MenuArm())

    def _answer_menu_arm(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        return []

    def menu_verified(self, admin: bool) -> list[Effect]:
        """A face, finger or palm was checked while the panel waited for a credential."""
        if self.mode != "menu-verify" or self.waiting is not None:
            return []
        if not admin:
            return [Say("verify-failed")] + self._sleep()
        return self._ask("menu_open_bio", MenuOpenBiometric())

    def _answer_menu_open_bio(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        return self._answer_menu_open(ok, reason, detail)

    def _menu(self, *say: Effect) -> list[Effect]:
        self.mode, self.buffer = "menu", ""
        return [*say, Say("menu"), Light(MENU_KEYS)]

    def _in_menu_verify(self, key: str) -> list[Effect]:
        if key == "back":
            return self._sleep()
        return self._typing(
            key, lambda code: self._ask("menu_open", MenuOpen(entry=code), len(code))
        )

    def _answer_menu_open(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return [Say("verify-failed")] + self._sleep()
        self.token = detail
        return self._menu()

    def _in_menu(self, key: str) -> list[Effect]:
        if key in ("1", "2"):
            self.role = "admin" if key == "1" else "user"
            return self._to("menu-credential", "menu-credential", CREDENTIAL_KEYS)
        if key == "3":
            return self._to("menu-delete", "menu-delete", ENTRY_KEYS)
        if key == "4":
            return self._to("menu-direction", "direction-choose", ["1", "2", "back"])
        if key == "5":
            return self._ask("menu_info", MenuInfo(token=self.token))
        if key == "back":
            self.token = ""
            return [Say("menu-exit")] + self._sleep()
        return []

    def _in_menu_credential(self, key: str) -> list[Effect]:
        if key == "4":
            return self._to("menu-new-code", "enter-new-code", ENTRY_KEYS)
        if key in ENROLMENTS:
            # policy opens it for the session and starts the capture; the new person is
            # created with this credential by policy when it is stored (L-14, issue 11)
            self.enrolling, modality = ENROLMENTS[key]
            request = EnrolOpen(modality=modality, role=self.role, token=self.token)
            return self._ask("menu_enrol", request)
        return self._menu() if key == "back" else []

    def _answer_menu_enrol(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        """Started: the service's steps and its end arrive as events (L-15)."""
        if not ok:
            return self._menu(Say("failed", {"why": detail or reason}))
        self.mode = "menu-enrolling"
        return [Light(["back"])]

    def _in_menu_enrolling(self, key: str) -> list[Effect]:
        if key == "back":  # the service stops and says so with its end event
            return self._ask("menu_cancel", EnrolCancel(), to=self.enrolling)
        return []

    def _answer_menu_cancel(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        return [] if ok else self._menu(Say("failed", {"why": detail or reason}))

    def enrol_step(self, step: str, params: dict[str, str], now: float) -> list[Effect]:
        """A step of an enrolment, from the menu or the owner's app: the panel says it."""
        self._last_key = now
        return [Say(step, params)]

    def enrol_done(
        self,
        ok: bool,
        reason: str,
        person: str,
        now: float,
        *,
        modality: str = "",
        new_person: bool = False,
    ) -> list[Effect]:
        """The end of an enrolment: a new person (the menu's create, or the app's) is
        announced with their number; a credential added to someone is said as that (L-14)."""
        self._last_key = now
        said: list[Effect]
        if ok and new_person:
            said = [Say("person-added", {"number": person}), *flash_number(person)]
        elif ok:
            what = CREDENTIAL_WORDS.get(modality, modality or "credential")
            said = [Say("credential-added", {"credential": what, "number": person})]
        elif reason == "already-added":  # L-5
            said = [Say("already-added")]
        else:
            said = [Say("failed", {"why": reason})]
        if self.mode != "menu-enrolling":
            return said
        return self._menu(*said)

    def _in_menu_new_code(self, key: str) -> list[Effect]:
        if key == "back":
            return self._to("menu-credential", "menu-credential", CREDENTIAL_KEYS)
        return self._typing(key, lambda c: self._ask("menu_check", CheckPasscode(code=c), len(c)))

    def _answer_menu_check(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return self._to("menu-new-code", "code-refused", ENTRY_KEYS, why=detail or reason)
        self.new_code = self._asked(CheckPasscode).code
        return self._to("menu-repeat-code", "repeat-code", ENTRY_KEYS)

    def _in_menu_repeat_code(self, key: str) -> list[Effect]:
        if key == "back":
            return self._to("menu-new-code", "enter-new-code", ENTRY_KEYS)
        return self._typing(
            key,
            lambda c: self._ask(
                "menu_add",
                MenuAddPerson(token=self.token, role=self.role, code=self.new_code, repeat=c),
                len(c),
            ),
        )

    def _answer_menu_add(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        self.new_code = ""
        if not ok:
            return self._to("menu-new-code", "code-refused", ENTRY_KEYS, why=detail or reason)
        return self._menu(Say("person-added", {"number": detail}), *flash_number(detail))

    def _in_menu_delete(self, key: str) -> list[Effect]:
        if key == "back":
            return self._menu()
        return self._typing(
            key, lambda n: self._ask("menu_delete", MenuDelete(token=self.token, number=n.zfill(3)))
        )

    def _answer_menu_delete(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        number = self._asked(MenuDelete).number
        if ok:
            return self._menu(Say("person-deleted", {"number": number}))
        # L-6: the failure beep and the flashing digits; retry, or back
        self.mode, self.buffer = "menu-delete", ""
        return [
            Say("delete-failed", {"number": number, "why": detail or reason}),
            Light(ENTRY_KEYS, flashing=list(dict.fromkeys(number))),
        ]

    def _in_menu_direction(self, key: str) -> list[Effect]:
        if key in ("1", "2"):
            direction = "right" if key == "1" else "left"
            return self._ask("menu_direction", MenuDirection(token=self.token, direction=direction))
        return self._menu() if key == "back" else []

    def _answer_menu_direction(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        if not ok:
            return self._menu(Say("failed", {"why": detail or reason}))
        direction = self._asked(MenuDirection).direction
        return self._menu(Say("direction-set", {"direction": f"{direction}-opening"}))

    def _answer_menu_info(self, ok: bool, reason: str, detail: str) -> list[Effect]:
        """L-16: announced, then back to the menu by itself."""
        if not ok:
            return self._menu(Say("failed", {"why": detail or reason}))
        serial, firmware, code = detail.split("|")
        return self._menu(
            Say("system-info", {"serial": serial, "firmware": firmware, "code": code})
        )
