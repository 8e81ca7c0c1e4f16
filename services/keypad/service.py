"""Runs the panel: keys from the keypad driver, the menu, prompts and lit keys on the bus."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from proto.biometric import EnrolDone, EnrolStep, Unreadable
from proto.board import Bolt, Button, Door, reset_gesture
from proto.control import OK, Done, StatusReply, StatusRequest, refused
from proto.keypad import INPUTS, CodeEntered, Key, Lit, Prompt, SimKeys
from proto.policy import (
    ActuationFailed,
    Audit,
    FactorsNeeded,
    LockInfo,
    LockInfoRequest,
    LockoutNotice,
    MenuVerified,
    Pairing,
    SystemInfo,
)
from proto.power import Battery
from proto.wire import Envelope
from services.base import Service, accepts, hears
from services.keypad import door_rules, prompts
from services.keypad.battery import is_low, with_battery
from services.keypad.effects import DIGITS, Ask, Effect, Light, Say
from services.keypad.menu import Menu
from services.keypad.touch_reader import TouchReader
from services.keypad.voice import Voice

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
    LISTENS = ("policy", "motor", "biometric", "face", "power")
    TICK_S, BUSY_TICK_S = 0.25, 0.05

    def setup(self) -> None:
        settings = self.config["keypad"]
        self.menu = Menu(sleep_after_s=settings["sleep_after_s"], max_digits=settings["max_digits"])
        self._started_menu = False
        self._reset_offered: str | None = None  # the gesture ✓ was asked for (its id)
        self.muted = False
        self.volume = 2  # the owner's setting (L-36), told by policy at start and on change
        self.bolt = "unknown"
        self.voice = Voice(settings["voice"])
        self.touch: TouchReader | None = None
        if self.config["board"]["kind"] != "sim":
            try:
                self._open_touch_panel()
            except (OSError, ImportError, ValueError) as e:  # no bus, no smbus2, bad keys
                self.state = f"degraded: keypad {e}"[:200]

    def _open_touch_panel(self) -> None:
        """The Pi's keypad: its reader thread wakes the loop through a pipe."""
        from smbus2 import SMBus  # the pi extra

        from hw.touch_keys import KeyScanner
        from services.keypad.touch_reader import panel_from_config

        hw = self.config["keypad_hw"]
        panel = panel_from_config(SMBus(hw["i2c_bus"]), hw)
        scanner = KeyScanner(
            debounce_s=hw["debounce_s"],
            hold_s=hw["hold_s"],
            idle_s=self.config["keypad"]["sleep_after_s"],
        )
        touch = self.touch = TouchReader(panel, scanner, hw["poll_s"])
        self.watch(touch.fd, lambda: self._on_touch_inputs(touch))
        touch.start()

    def teardown(self) -> None:
        touch: TouchReader | None = getattr(self, "touch", None)  # None before setup()
        if touch is not None:
            touch.close()
        if hasattr(self, "voice"):
            self.voice.close()

    def _on_touch_inputs(self, touch: TouchReader) -> None:
        for key in touch.take():
            if self._started_menu:
                self.press(key, None)

    def tick_s(self) -> float:
        """Soon while policy has not answered yet, or the voice has a prompt to start next.
        Otherwise a tick only darkens a panel left alone for seconds: keys wake the loop."""
        return self.BUSY_TICK_S if self.voice.busy or not self._started_menu else self.TICK_S

    def tick(self, now: float) -> None:
        self.voice.pump()
        if self.touch is not None:
            self._touch_health(self.touch)
        if not self._started_menu:
            self._start_menu(now)
            return
        self._run(self.menu.tick(now), None)

    def _touch_health(self, touch: TouchReader) -> None:
        fault = touch.fault
        if fault is not None and fault != "not started":
            self.state = f"degraded: keypad {fault}"[:200]
        elif self.state.startswith("degraded: keypad"):
            self.state = "ready"

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
        self.volume = info.volume
        self._run(self.menu.start(initial=info.initial, direction=info.direction, now=now), None)
        self._ask_motor_for_reset_gesture(now)

    def _ask_motor_for_reset_gesture(self, now: float) -> None:
        """L-30: a gesture ended before the panel was up reached it as no event: ask."""
        answer = self.request("motor", StatusRequest(), timeout=0.5)
        if answer is None or not isinstance(answer.body, StatusReply):
            return
        gesture = reset_gesture(answer.body.detail)
        self._offer_reset(gesture.id if gesture is not None else None, now)

    def _offer_reset(self, gesture: str | None, now: float) -> None:
        if gesture is not None and gesture != self._reset_offered:
            self._reset_offered = gesture
            self._run(self.menu.offer_reset(now), gesture)

    def press(self, key: str, cause: str | None) -> None:
        shown = self.publish(
            Key(key="digit" if key in DIGITS else key, audible=self.audible, volume=self.volume),
            cause,
        )
        self._run(self.menu.key(key, self.clock()), shown.id)

    def _run(self, effects: list[Effect], cause: str | None) -> None:
        """Carry out effects in order; an answer may bring more of them."""
        todo = with_battery(effects, self.menu.battery_low)
        while todo:
            effect = todo.pop(0)
            if isinstance(effect, Say):
                said = prompts.text(effect.prompt, effect.params)
                self.publish(
                    Prompt(
                        prompt=effect.prompt,
                        params=effect.params,
                        text=said,
                        audible=self.audible,
                        volume=self.volume,
                    ),
                    cause,
                )
                if self.audible:  # L-21: a muted lock says nothing; nor at volume 0 (L-36)
                    self.voice.say(effect.prompt, said, self.volume)
            elif isinstance(effect, Light):
                self.publish(Lit(keys=effect.keys, flashing=effect.flashing), cause)
                if not effect.keys and self.touch is not None:
                    self.touch.sleep()  # dark: the next contact only wakes it (L-11)
            elif isinstance(effect, Ask):
                todo[:0] = with_battery(self._ask(effect, cause), self.menu.battery_low)

    @property
    def audible(self) -> bool:
        """Beeps and voice: not while muted (L-21), nor at the owner's volume 0 (L-36)."""
        return not self.muted and self.volume > 0

    def _ask(self, ask: Ask, cause: str | None) -> list[Effect]:
        """Ask and read the answer. An entered code's event is stamped before the request
        (which names it as its cause) and published once the request has left: its
        listeners woken first held the code back on its way to policy (issue 12 item 6)."""
        said: Callable[[], object] | None = None
        if ask.purpose in PURPOSE_OF:
            code = CodeEntered(digits=ask.digits, purpose=PURPOSE_OF[ask.purpose])
            entered = self.stamp_event(code, cause)
            cause, said = entered.id, partial(self.publish_stamped, entered)
        answer = self.request(ask.to, ask.request, cause=cause, sent=said)
        if answer is None:
            return self.menu.answer(ask.purpose, False, "no-answer", "the lock did not answer")
        ok, reason, detail = outcome(answer.body)
        if ok and ask.purpose in MUTES:  # known at once, not when policy's event comes by
            self.muted = MUTES[ask.purpose]
        if ok and ask.purpose == "factory_reset":
            self.muted = False
        return self.menu.answer(ask.purpose, ok, reason, detail)

    def status_detail(self) -> dict[str, Any]:
        if not hasattr(self, "menu"):
            return {"mode": "starting"}
        return {
            "mode": self.menu.mode,
            "battery_low": self.menu.battery_low,
            "voice": self.voice.setting,
            "spoken": self.voice.spoken,
        }

    @hears(Battery)
    def on_battery(self, env: Envelope) -> None:
        """Kept for the next wake: the prompt and the lit battery key (L-28)."""
        self.menu.battery_low = is_low(env.body, self.config["power"]["low_percent"])

    @hears(MenuVerified)
    def on_menu_verified(self, env: Envelope) -> None:
        if self._started_menu:
            self._run(self.menu.menu_verified(bool(env.body.person)), env.id)

    @hears(Pairing)
    def on_pairing(self, env: Envelope) -> None:
        if self._started_menu:
            b = env.body
            self._run(self.menu.pairing(b.open, b.why, self.clock()), env.id)

    @hears(LockoutNotice)
    def on_lockout(self, env: Envelope) -> None:
        """L-20 at the door (issue 15): "system locked" as a lockout begins."""
        if self._started_menu:
            said = door_rules.lockout(env.body.active)
            self._run(self.menu.rules_notice(said, self.clock(), entry=False), env.id)

    @hears(FactorsNeeded)
    def on_factors(self, env: Envelope) -> None:
        """A multi-factor attempt (issue 15): what is still needed, or that it timed out."""
        if self._started_menu:
            b = env.body
            said = door_rules.factors(b.still, b.shown, b.timed_out)
            self._run(self.menu.rules_notice(said, self.clock(), entry=not b.timed_out), env.id)

    @hears(Bolt)
    def on_bolt(self, env: Envelope) -> None:
        """A drive's end (it names a cause; the report at the motor's start does not) is
        said as the motor reports it: "door unlocked" only once the bolt is back."""
        self.bolt = env.body.state
        if env.cause is not None and self._started_menu:
            self._run(self.menu.bolt_reported(env.body.state), env.id)

    @hears(ActuationFailed)
    def on_actuation_failed(self, env: Envelope) -> None:
        """The drive policy ordered failed: the panel says why (jammed, battery, busy)."""
        if self._started_menu:
            self._run(self.menu.not_actuated(env.body.action, env.body.reason), env.id)

    @hears(Button)
    def on_button(self, env: Envelope) -> None:
        if env.body.button == "set" and self._started_menu:  # L-13
            self._run(self.menu.set_pressed(self.clock()), env.id)
        elif env.body.button == "factory-reset" and self._started_menu:  # L-30
            self._offer_reset(env.id, self.clock())

    @hears(Door)
    def on_door(self, env: Envelope) -> None:
        if not env.body.open and self.bolt != "locked" and self._started_menu:
            self._run(self.menu.offer_lock(self.clock()), env.id)

    @hears(Audit)
    def on_audit(self, env: Envelope) -> None:
        """Mute changes the panel did not ask for itself (a remote unlock ends it too)."""
        if env.body.kind == "mute":
            self.muted = env.body.detail == "on"
        name, _, value = env.body.detail.partition("=")
        if env.body.kind == "setting" and name == "volume" and value.isdigit():  # L-36
            self.volume = min(int(value), 3)

    @hears(EnrolStep)
    def on_enrol_step(self, env: Envelope) -> None:
        if self._started_menu:
            self._run(self.menu.enrol_step(env.body.step, env.body.params, self.clock()), env.id)

    @hears(Unreadable)
    def on_unreadable(self, env: Envelope) -> None:
        if self._started_menu:
            self._run(self.menu.enrol_step(env.body.step, {}, self.clock()), env.id)

    @hears(EnrolDone)
    def on_enrol_done(self, env: Envelope) -> None:
        b = env.body
        if self._started_menu:
            done = self.menu.enrol_done(b.ok, b.reason, b.person, self.clock(),
                                        modality=b.modality, new_person=b.new_person)  # fmt: skip
            self._run(done, env.id)

    @accepts(SimKeys)
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
