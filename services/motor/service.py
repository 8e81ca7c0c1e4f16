"""Drives the bolt on policy's word, and reports bolt, door and buttons."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from gpiozero import Button as GpioButton
from gpiozero import Buzzer, DigitalInputDevice

from hw.bolt import JAMMED, LOCKED, MOVING, UNLOCKED, BoltDrive
from hw.gpio import pin_factory
from hw.leds import StatusLeds
from hw.leds import pattern as led_pattern
from hw.sim_board import SimBoard
from proto.board import Actuate, Bolt, Button, Chime, Door, DriveInterrupted, Siren, Tamper
from proto.board import SimBoard as SimBoardRequest
from proto.control import OK, Done, refused
from proto.power import Battery
from proto.wire import Envelope
from services.base import Service, accepts, hears
from services.mailbox import Mailbox
from services.motor.journal import Drive, Journal

log = logging.getLogger(__name__)

SIM_PRESS_S = 0.1
REPORT_EVERY_S = 1.0  # an unanswered report of an interrupted drive is sent again
TARGET = {"lock": LOCKED, "unlock": UNLOCKED}


class MotorService(Service):
    NAME = "motor"
    LISTENS = ("power",)
    DRIVING_TICK_S = 0.01  # the end switches are polled this often while the bolt moves
    # At rest the tick only ends a siren and retries a report: the inputs wake the loop
    # themselves (a mailbox), so an idle lock does not poll 20 times a second.
    TICK_S = 0.25

    def setup(self) -> None:
        board, pins = self.config["board"], self.config["pins"]
        factory = pin_factory(board["kind"])
        self.bolt = BoltDrive(
            motor_a=pins["motor_a"],
            motor_b=pins["motor_b"],
            locked_pin=pins["bolt_locked"],
            unlocked_pin=pins["bolt_unlocked"],
            travel_timeout_s=self.config["motor"]["travel_timeout_s"],
            pin_factory=factory,
        )
        self.leds = StatusLeds(pins["led_green"], pins["led_red"], pin_factory=factory)
        self._inputs = Mailbox(wait_s=0.0)  # gpiozero's threads only publish through it
        self.watch(self._inputs.fd, self._deliver_inputs)
        self._set_since_boot: float | None = None
        self._reset_gesture: tuple[str, float] | None = None  # its Button's id, and when
        self._wire_inputs(factory, pins)
        self.sim: SimBoard | None = None
        if board["kind"] == "sim":
            self.sim = SimBoard(
                factory,
                pins,
                self.layout.data / "sim-board.json",
                travel_s=board["sim_travel_s"],
                handing=board["sim_handing"],
            )
            self.sim.start()
        # SET already down as the power came back: maybe the factory-reset gesture (L-30)
        self._set_since_boot = time.monotonic() if self.set_button.is_pressed else None
        self._siren_until = 0.0
        self._siren_on = False  # the siren's own state: a chime blinks the same buzzer
        self.chimes = 0
        self.chime_volume = 0  # the last chime's level (L-36); a plain buzzer has one loudness
        self.battery: Battery | None = None
        self.journal = Journal(self.layout.drive_journal)
        self._drive: Drive | None = None  # the drive under way, as journalled
        self._report: tuple[DriveInterrupted, str | None] | None = None  # for policy
        self._next_report = 0.0
        self._resume_or_report_at_start()
        self.publish(Door(open=not self.door.is_active))
        if not self.tamper.is_active:
            self.publish(Tamper(removed=True))

    def _wire_inputs(self, factory: Any, pins: dict[str, int]) -> None:
        """gpiozero calls back from its own threads: only post there, publish in the loop."""
        put = self._inputs.publish
        # Plain inputs where nothing is held: each gpiozero Button runs a thread that wakes
        # 10 times a second to look for a hold, all the lock's life. Only SET has a long press.
        self.door = DigitalInputDevice(pins["door"], pull_up=True, pin_factory=factory)
        self.door.when_activated = lambda: put(Door(open=False))
        self.door.when_deactivated = lambda: put(Door(open=True))
        self.lock_button = DigitalInputDevice(
            pins["lock_button"], pull_up=True, pin_factory=factory
        )
        self.lock_button.when_activated = lambda: put(Button(button="lock"))
        self.key_cylinder = DigitalInputDevice(
            pins["key_cylinder"], pull_up=True, pin_factory=factory
        )
        self.key_cylinder.when_activated = lambda: put(Button(button="key"))
        self.tamper = DigitalInputDevice(pins["tamper"], pull_up=True, pin_factory=factory)
        self.tamper.when_activated = lambda: put(Tamper(removed=False))
        self.tamper.when_deactivated = lambda: put(Tamper(removed=True))
        self.siren = Buzzer(pins["siren"], pin_factory=factory)
        self.set_button = GpioButton(
            pins["set_button"],
            pull_up=True,
            pin_factory=factory,
            hold_time=self.config["motor"]["long_press_s"],
        )
        held = {"now": False}
        reset_hold_s = self.config["motor"]["reset_hold_s"]

        def on_held() -> None:
            held["now"] = True
            if self._set_since_boot is None:  # at power-up it is the reset gesture's
                put(Button(button="set-long"))

        def on_released() -> None:
            boot, self._set_since_boot = self._set_since_boot, None
            if boot is not None:  # L-30: held from power-up, for reset_hold_s at least
                if time.monotonic() - boot >= reset_hold_s:
                    put(Button(button="factory-reset"))
            elif not held["now"]:
                put(Button(button="set"))
            held["now"] = False

        self.set_button.when_held = on_held
        self.set_button.when_released = on_released

    def teardown(self) -> None:
        sim: SimBoard | None = getattr(self, "sim", None)  # None before setup()
        if sim is not None:
            sim.close()
        for part in (
            "bolt",
            "door",
            "lock_button",
            "set_button",
            "key_cylinder",
            "tamper",
            "siren",
            "leds",
        ):
            if hasattr(self, part):
                getattr(self, part).close()
        if hasattr(self, "_inputs"):  # after the buttons: none of their threads posts now
            self._inputs.close()

    def tick_s(self) -> float:
        moving = hasattr(self, "bolt") and self.bolt.state == MOVING
        return self.DRIVING_TICK_S if moving else self.TICK_S

    # -- drives, journalled so that a restart knows one was cut short (issue 11) ----------
    def _resume_or_report_at_start(self) -> None:
        """A lock cut short is finished (fail-secure); an unlock is left where it stopped.

        Either way policy is told by a request, at once and again until answered: the
        events published now may reach no one, as subscribers reconnect after a restart."""
        drive, found = self.journal.last(), self.bolt.state
        if drive is None or not drive.unfinished:
            self.publish(Bolt(state=found, reason="at start"))
            return
        log.warning("restarted with the %s drive of %s unfinished", drive.action, drive.cause)
        if drive.action == "lock" and found != LOCKED:
            self._start_drive("lock", drive.direction, drive.cause)
            why = "finishing a lock cut short by a restart"
            self.publish(Bolt(state=MOVING, reason=why, interrupted="lock"), drive.cause)
        else:
            self._journal_end(drive, found)
            if found == TARGET[drive.action]:
                why = f"{drive.action} reached before a restart"
            else:
                why = f"{drive.action} cut short by a restart: the bolt is left where it stopped"
            self.publish(Bolt(state=found, reason=why, interrupted=drive.action), drive.cause)
        now = MOVING if self._drive is not None else found
        report = DriveInterrupted(action=drive.action, found=found, state=now)
        self._report = (report, drive.cause)
        self._send_report(self.clock())

    def _start_drive(self, action: str, direction: str, cause: str | None) -> bool:
        """Journal first, then turn the motor; False when the bolt is already there."""
        if self.bolt.state == TARGET[action]:
            return False
        try:
            drive: Drive | None = self.journal.started(action, direction, cause)
        except OSError as e:  # the drive matters more than its journal: go on, say so
            log.error("drive journal %s not written: %s", self.journal.path, e)
            drive = Drive(action=action, direction=direction, cause=cause, started=time.time())
        if self.sim is not None:  # the simulated bolt is mounted as the owner chose (issue 15)
            self.sim.mount(direction)
        self.bolt.start(TARGET[action], direction, self.clock())
        self._drive = drive
        self.state = "driving"
        return True

    def _journal_end(self, drive: Drive | None, outcome: str) -> None:
        if drive is None:
            return
        try:
            self.journal.finished(drive, outcome)
        except OSError as e:
            log.error("drive journal %s not written: %s", self.journal.path, e)

    def _drive_ended(self, ended: str) -> None:
        drive, self._drive = self._drive, None
        self._journal_end(drive, ended)
        reason = "no end position in time" if ended == JAMMED else ""
        self.publish(Bolt(state=ended, reason=reason), drive.cause if drive else None)
        self.state = "jammed" if ended == JAMMED else "ready"
        if self._report is not None and drive is not None and self._report[1] == drive.cause:
            report, cause = self._report  # the interrupted lock, finished: how it ended
            self._report = (dataclasses.replace(report, state=ended), cause)

    def _send_report(self, now: float) -> None:
        """The interrupted drive's report, until policy answers it; a lock being finished
        is reported again with its end, which policy must not miss either."""
        if self._report is None or now < self._next_report:
            return
        report, cause = self._report
        answer = self.request("policy", report, cause=cause, timeout=0.3)
        if answer is None or not getattr(answer.body, "ok", False):
            self._next_report = now + REPORT_EVERY_S
        elif report.state != MOVING:
            self._report = None

    def tick(self, now: float) -> None:
        if self.sim is not None:
            self.sim.catch_up(now)  # the simulated bolt is where a real one would be by now
        ended = self.bolt.poll(now)
        if ended is not None:
            self._drive_ended(ended)
        if self._drive is None:  # a request waits: not while the end switches need polling
            self._send_report(now)
        if self._siren_on and now >= self._siren_until:
            self._siren_on = False
            self.siren.off()
        self._show_leds()

    def _deliver_inputs(self) -> None:
        self._inputs.deliver(
            self._publish_input, lambda to, body, cause: self.request(to, body, cause=cause)
        )

    def _publish_input(self, body: Any, cause: str | None) -> None:
        env = self.publish(body, cause)
        if isinstance(body, Button) and body.button == "factory-reset":
            self._reset_gesture = (env.id, self.clock())
        self._show_leds()  # the tamper switch shows at once

    def _show_leds(self) -> None:
        battery_low = self.battery is not None and self.battery.low and not self.battery.external
        self.leds.show(
            led_pattern(
                bolt=self.bolt.state,
                tamper_removed=not self.tamper.is_active,
                battery_low=battery_low,
            )
        )

    def status_detail(self) -> dict[str, Any]:
        return {
            "leds": self.leds.showing,
            "tamper": "removed" if not self.tamper.is_active else "in place",
            "siren": self._siren_on,
            "chimes": self.chimes,
            "chime_volume": self.chime_volume,
            "bolt": self.bolt.state,
            "door": "open" if not self.door.is_active else "closed",
            "set_button": "pressed" if self.set_button.is_pressed else "released",
            "reset_gesture": self._recent_reset_gesture(),
            "board": self.config["board"]["kind"],
        }

    def _recent_reset_gesture(self) -> dict[str, Any] | None:
        """L-30's gesture while ✓ may still follow it: a panel or policy that started after
        its one Button event asks for it here (a slow start misses the event)."""
        if self._reset_gesture is None:
            return None
        ident, at = self._reset_gesture
        age = self.clock() - at
        if age > self.config["motor"]["reset_confirm_s"]:
            return None
        return {"id": ident, "age_s": round(age, 3)}

    @hears(Battery)
    def on_battery(self, env: Envelope) -> None:
        self.battery = env.body

    def _too_weak(self) -> bool:
        """A battery too low to finish a drive: better not to start one (L-28)."""
        b = self.battery
        return (
            b is not None
            and not b.external
            and b.percent < self.config["motor"]["min_drive_percent"]
        )

    @accepts(Siren)
    def on_siren(self, env: Envelope, peer: str) -> Done:
        self._siren_until = self.clock() + env.body.seconds
        self._siren_on = env.body.seconds > 0
        self.siren.on() if self._siren_on else self.siren.off()  # on() also ends a chime
        return OK

    @accepts(Chime)
    def on_chime(self, env: Envelope, peer: str) -> Done:
        """The doorbell (L-23): a few beeps in gpiozero's background thread; the siren wins."""
        if self._siren_on:
            return refused("busy", "the siren is sounding")
        if env.body.volume == 0:  # the owner's volume 0 (L-36): the chime stays silent
            return refused("silent", "the volume is 0")
        self.chime_volume = env.body.volume
        m = self.config["motor"]
        self.siren.beep(m["chime_on_s"], m["chime_off_s"], n=m["chime_beeps"], background=True)
        self.chimes += 1
        return OK

    @accepts(Actuate)
    def on_actuate(self, env: Envelope, peer: str) -> Done:
        if self._too_weak():
            return refused("insufficient-battery", "the battery cannot drive the bolt: use USB-C")
        if self.bolt.state == MOVING:
            self.publish(Bolt(state=MOVING, reason="refused a drive: already moving"), env.trace)
            return refused("busy", "the bolt is already moving")
        action, target = env.body.action, TARGET[env.body.action]
        if not self._start_drive(action, env.body.direction, env.trace):
            self.publish(Bolt(state=target, reason="already there"), env.trace)
            return OK
        self.publish(Bolt(state=MOVING, reason=f"driving to {target}"), env.trace)
        return OK

    @accepts(SimBoardRequest)
    def on_sim(self, env: Envelope, peer: str) -> Done:
        if self.sim is None:
            return refused("not-simulated", "this board is real: use your hands")
        action, arg = env.body.action, env.body.arg
        if action == "button" and arg in ("set", "lock"):
            self.sim.press(f"{arg}_button", SIM_PRESS_S)
        elif action == "button" and arg == "set-long":
            # held well past the hold time: gpiozero's hold thread may run late on a busy
            # machine, and a release before it fires would read as a short press
            self.sim.press("set_button", self.config["motor"]["long_press_s"] + 1.0)
        elif action == "door" and arg in ("open", "close"):
            self.sim.set_door(arg == "open")
        elif action == "state" and arg in ("jam", "free"):
            self.sim.set_jammed(arg == "jam")
        elif action == "tamper" and arg in ("remove", "replace"):
            self.sim.set_tamper(removed=arg == "remove")
        elif action == "key":
            self.sim.press("key_cylinder", SIM_PRESS_S)
        else:
            return refused("bad-value", f"sim {action} {arg!r} is not something the board does")
        return OK
