"""Runs the panel: keys from the keypad driver, the menu, prompts and lit keys on the bus."""

from __future__ import annotations

from typing import Any

from proto.biometric import EnrolDone, EnrolStep, Unreadable
from proto.board import Bolt, Button, Door
from proto.control import OK, Done, refused
from proto.keypad import INPUTS, CodeEntered, Key, Lit, Prompt, SimKeys
from proto.policy import Audit, LockInfo, LockInfoRequest, SystemInfo
from proto.wire import Envelope
from services.base import Service, accepts, hears
from services.keypad import prompts
from services.keypad.menu import DIGITS, Ask, Effect, Light, Menu, Say

MUTES = {"mute": True, "verify": False}  # an unlock from outside ends the mute (L-21)
PURPOSE_OF = {  # the steps that send a code, and how the tap names them
    "check": "new",
    "create": "repeat",
    "verify": "unlock",
    "menu_open": "menu",
    "menu_check": "new",
    "menu_add": "repeat",
}


def outcome(body: Any) -> tuple[bool, str, str]:
    """An answer as the menu takes it: ok, reason, detail."""
    if isinstance(body, SystemInfo):
        return True, "", f"{body.serial}|{body.firmware}|{body.verification_code}"
    ok = getattr(body, "ok", getattr(body, "granted", False))
    return bool(ok), getattr(body, "reason", ""), getattr(body, "detail", "")


class KeypadService(Service):
    NAME = "keypad"
    LISTENS = ("policy", "motor", "biometric", "face")

    def setup(self) -> None:
        settings = self.config["keypad"]
        self.menu = Menu(sleep_after_s=settings["sleep_after_s"], max_digits=settings["max_digits"])
        self._started_menu = False
        self.muted = False
        self.bolt = "unknown"
        if self.config["board"]["kind"] != "sim":
            self.state = "degraded: no keypad driver for this board yet"

    def tick(self, now: float) -> None:
        if not self._started_menu:
            self._start_menu(now)
            return
        self._run(self.menu.tick(now), None)

    def _start_menu(self, now: float) -> None:
        """Ask policy what the lock is; until it answers, the panel stays dark."""
        answer = self.request("policy", LockInfoRequest(), timeout=0.5)
        if answer is None or not isinstance(answer.body, LockInfo):
            self.state = "waiting for policy"
            return
        self._started_menu = True
        if self.state == "waiting for policy":
            self.state = "ready"
        info = answer.body
        self.muted = info.muted
        self._run(self.menu.start(initial=info.initial, direction=info.direction, now=now), None)

    def press(self, key: str, cause: str | None) -> None:
        shown = self.publish(
            Key(key="digit" if key in DIGITS else key, audible=not self.muted), cause
        )
        self._run(self.menu.key(key, self.clock()), shown.id)

    def _run(self, effects: list[Effect], cause: str | None) -> None:
        """Carry out effects in order; an answer may bring more of them."""
        todo = list(effects)
        while todo:
            effect = todo.pop(0)
            if isinstance(effect, Say):
                self.publish(
                    Prompt(
                        prompt=effect.prompt,
                        params=effect.params,
                        text=prompts.text(effect.prompt, effect.params),
                        audible=not self.muted,
                    ),
                    cause,
                )
            elif isinstance(effect, Light):
                self.publish(Lit(keys=effect.keys, flashing=effect.flashing), cause)
            elif isinstance(effect, Ask):
                todo[:0] = self._ask(effect, cause)

    def _ask(self, ask: Ask, cause: str | None) -> list[Effect]:
        if ask.purpose in PURPOSE_OF:
            cause = self.publish(
                CodeEntered(digits=ask.digits, purpose=PURPOSE_OF[ask.purpose]), cause
            ).id
        answer = self.request(ask.to, ask.request, cause=cause)
        if answer is None:
            return self.menu.answer(ask.purpose, False, "no-answer", "the lock did not answer")
        ok, reason, detail = outcome(answer.body)
        if ok and ask.purpose in MUTES:  # known at once, not when policy's event comes by
            self.muted = MUTES[ask.purpose]
        if ok and ask.purpose == "factory_reset":
            self.muted = False
        return self.menu.answer(ask.purpose, ok, reason, detail)

    def status_detail(self) -> dict[str, Any]:
        return {"mode": self.menu.mode if hasattr(self, "menu") else "starting"}

    @hears(Bolt, peers=("motor",))
    def on_bolt(self, env: Envelope) -> None:
        self.bolt = env.body.state

    @hears(Button, peers=("motor",))
    def on_button(self, env: Envelope) -> None:
        if env.body.button == "set" and self._started_menu:  # L-13
            self._run(self.menu.set_pressed(self.clock()), env.id)
        elif env.body.button == "factory-reset" and self._started_menu:  # L-30
            self._run(self.menu.offer_reset(self.clock()), env.id)

    @hears(Door, peers=("motor",))
    def on_door(self, env: Envelope) -> None:
        if not env.body.open and self.bolt != "locked" and self._started_menu:
            self._run(self.menu.offer_lock(self.clock()), env.id)

    @hears(Audit, peers=("policy",))
    def on_audit(self, env: Envelope) -> None:
        """Mute changes the panel did not ask for itself (a remote unlock ends it too)."""
        if env.body.kind == "mute":
            self.muted = env.body.detail == "on"

    @hears(EnrolStep, peers=("biometric", "face"))
    def on_enrol_step(self, env: Envelope) -> None:
        if self._started_menu:
            self._run(self.menu.enrol_step(env.body.step, env.body.params, self.clock()), env.id)

    @hears(Unreadable, peers=("biometric", "face"))
    def on_unreadable(self, env: Envelope) -> None:
        if self._started_menu:
            self._run(self.menu.enrol_step(env.body.step, {}, self.clock()), env.id)

    @hears(EnrolDone, peers=("biometric", "face"))
    def on_enrol_done(self, env: Envelope) -> None:
        b = env.body
        if self._started_menu:
            self._run(self.menu.enrol_done(b.ok, b.reason, b.person, self.clock()), env.id)

    @accepts(SimKeys, peers=("cli", "bench"))
    def on_sim_keys(self, env: Envelope, peer: str) -> Done:
        if self.config["board"]["kind"] != "sim":
            return refused("not-simulated", "this keypad is real: use your fingers")
        bad = [k for k in env.body.keys if k not in INPUTS]
        if bad:
            return refused("bad-value", f"no such key: {', '.join(bad)[:80]}")
        if not self._started_menu:
            return refused("not-ready", "the panel is waiting for policy")
        for key in env.body.keys:
            self.press(key, env.trace)
        return OK
