"""Decides every unlock, owns the store, and is the only one the motor obeys."""

from __future__ import annotations

from typing import Any

from proto.board import Actuate, Bolt, Button, Door
from proto.control import OK, Done, refused
from proto.policy import (
    Audit,
    CheckPasscode,
    CreateFirstAdmin,
    Decision,
    LockInfo,
    LockInfoRequest,
    SetDirection,
    VerifyPasscode,
)
from proto.wire import Envelope
from services.base import Service, accepts, hears
from services.policy import passcodes
from services.policy.secrets import device_secret
from services.policy.store import Store

PANEL = ("keypad",)


class PolicyService(Service):
    NAME = "policy"
    LISTENS = ("motor",)

    def setup(self) -> None:
        self.store = Store(self.layout.data / "lock.db")
        self.hasher = passcodes.Hasher(device_secret(self.layout.data / "device.secret"))
        self.rules = self.config["passcode"]
        self._reload_codes()
        self.bolt, self.door = "unknown", "unknown"

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()

    def _reload_codes(self) -> None:
        self.codes, self.lengths = self.store.passcodes(), self.store.code_lengths()

    @property
    def initial(self) -> bool:
        return self.store.count_people("admin") == 0

    def status_detail(self) -> dict[str, Any]:
        return {"initial": self.initial, "direction": self.store.setting("direction"),
                "people": self.store.count_people(), "bolt": self.bolt, "door": self.door}

    # -- what the motor reports -----------------------------------------------------------
    @hears(Bolt)
    def on_bolt(self, env: Envelope) -> None:
        self.bolt = env.body.state
        if self.bolt == "jammed":
            self.store.log("alarm", reason="jammed", source="motor", cause=env.id)

    @hears(Door)
    def on_door(self, env: Envelope) -> None:
        self.door = "open" if env.body.open else "closed"

    @hears(Button)
    def on_button(self, env: Envelope) -> None:
        if env.body.button == "lock":  # the inside lock button (L-25)
            self._actuate("lock", source="inside-button", cause=env.id)

    # -- requests -------------------------------------------------------------------------
    @accepts(LockInfoRequest)
    def on_info(self, env: Envelope, peer: str) -> LockInfo:
        return LockInfo(initial=self.initial, direction=self.store.setting("direction"),
                        people=self.store.count_people(), bolt=self.bolt, door=self.door)

    @accepts(SetDirection, peers=PANEL)
    def on_set_direction(self, env: Envelope, peer: str) -> Done:
        if not self.initial:
            return refused("not-allowed", "the direction is changed from the menu (L-14)")
        direction = env.body.direction
        self.store.set_setting("direction", direction, source=peer, cause=env.trace)
        self.publish(Audit(kind="direction", detail=direction), env.trace)
        return OK

    @accepts(CheckPasscode, peers=PANEL)
    def on_check(self, env: Envelope, peer: str) -> Done:
        return self._rule_answer(env.body.code)

    @accepts(CreateFirstAdmin, peers=PANEL)
    def on_create_admin(self, env: Envelope, peer: str) -> Done:
        if not self.initial:
            return refused("not-allowed", "an administrator exists: use the menu (L-13)")
        if self.store.setting("direction") is None:
            return refused("direction-unset", "choose the opening direction first (L-12)")
        code = env.body.code
        answer = self._rule_answer(code)
        if not answer.ok:
            return answer
        if env.body.repeat != code:
            return refused("mismatch", passcodes.RULES["mismatch"])
        number = self.store.add_person_with_code("admin", self.hasher.digest(code), len(code),
                                                 source=peer, cause=env.trace)
        self._reload_codes()
        self.publish(Audit(kind="person-added", detail="admin", person=number), env.trace)
        return Done(ok=True, detail=number)

    def _rule_answer(self, code: str) -> Done:
        broken = passcodes.rule_broken(code, min_digits=self.rules["min_digits"],
                                       max_digits=self.rules["max_digits"])
        return OK if broken is None else refused(broken, passcodes.RULES[broken])

    @accepts(VerifyPasscode, peers=PANEL)
    def on_verify(self, env: Envelope, peer: str) -> Decision:
        entry = env.body.entry
        if self.initial:
            return self._decide(env, False, "initial-state")
        if not entry.isdigit() or len(entry) > self.config["keypad"]["max_digits"]:
            return self._decide(env, False, "malformed-entry")
        person = passcodes.find(entry, self.codes, self.lengths, self.hasher)
        if person is None:
            return self._decide(env, False, "wrong-passcode")
        return self._decide(env, True, "", person)

    def _decide(self, env: Envelope, granted: bool, reason: str,
                person: str | None = None) -> Decision:
        """Log, publish, then act: an acknowledged decision is on disk before the bolt moves."""
        decision = Decision(granted=granted, method="passcode", reason=reason, person=person)
        self.store.log("unlock" if granted else "refused", person=person, method="passcode",
                       source="keypad", reason=reason, cause=env.trace)
        sent = self.publish(decision, env.trace)
        if granted:
            self._actuate("unlock", source="keypad", cause=sent.id)
        return decision

    def _actuate(self, action: str, *, source: str, cause: str) -> None:
        direction = self.store.setting("direction")
        if direction is None:
            self.store.log("actuation-failed", source=source, reason="direction-unset", cause=cause)
            return
        answer = self.request("motor", Actuate(action=action, direction=direction), cause=cause)
        if answer is None or not answer.body.ok:
            why = "motor did not answer" if answer is None else answer.body.reason
            self.store.log("actuation-failed", source=source, reason=why, cause=cause,
                           detail=action)
