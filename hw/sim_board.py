"""The simulated board: the lock's mechanics acting on gpiozero MockFactory pins.

The physical world outlives the software, so the bolt's position and the door are kept
in a file: a motor service killed and restarted finds the bolt where it left it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from hw.bolt import retract_forward

log = logging.getLogger(__name__)

STEP_S = 0.005  # while the motor is driven
IDLE_STEP_S = 0.05  # otherwise: an idle board stepping at 200 Hz was 2 % of a core


class SimBoard:
    """Bolt travel, end switches, door contact and buttons, modelled on mock pins."""

    def __init__(
        self,
        factory: MockFactory,
        pins: dict[str, int],
        state_file: Path,
        *,
        travel_s: float,
        handing: str,
    ) -> None:
        self.pins = {name: factory.pin(number) for name, number in pins.items()}
        # "follow": the bolt is mounted the way the owner chose (L-12), as an installer
        # would have mounted it; "right" or "left": fixed, so a wrong choice jams (L-27)
        self.follows = handing == "follow"
        self.handing = "right" if self.follows else handing
        self.state_file, self.travel_s = state_file, travel_s
        self.world = self._load()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-board", daemon=True)
        self.steps = 0  # physics steps run: a test waits for some to see what did not move
        self._last, self._driven = time.monotonic(), False  # the last step, and whether it drove
        self._releases: dict[str, threading.Timer] = {}  # buttons held: when they are let go

    def _load(self) -> dict[str, Any]:
        world = {"bolt": 0.0, "door_open": False, "jammed": False, "tamper_removed": False}
        # bolt 0.0 is thrown (locked), 1.0 is drawn back
        try:
            world.update(json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            log.warning("simulated board state unreadable (%s): starting locked", e)
        return world

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.world))
        os.replace(tmp, self.state_file)

    def start(self) -> None:
        """Call once the drivers have claimed their pins (inputs must exist as inputs)."""
        self._apply()
        held = self.world.pop("set_held_s", 0)  # SET held as the power came back (L-30)
        if held:
            self._save()
            self.press("set_button", held)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)

    # -- the world's inputs ---------------------------------------------------------------
    def mount(self, direction: str) -> None:
        """The opening direction a drive is made for; a board that follows takes it."""
        if self.follows and direction in ("right", "left"):
            with self._lock:
                self.handing = direction

    def set_door(self, open_: bool) -> None:
        with self._lock:
            self.world["door_open"] = open_
            self._save()
            self._apply()

    def set_tamper(self, *, removed: bool) -> None:
        with self._lock:
            self.world["tamper_removed"] = removed
            self._save()
            self._apply()

    def set_jammed(self, jammed: bool) -> None:
        with self._lock:
            self.world["jammed"] = jammed
            self._save()

    def press(self, button: str, hold_s: float) -> None:
        """Press a button (active low) and let it go after hold_s, without blocking. A
        button still held from an earlier press is let go first: a finger lifts before it
        presses again, and without the edge the second press would not be seen at all."""
        pin = self.pins[button]
        held = self._releases.pop(button, None)
        if held is not None and held.is_alive():
            held.cancel()
            pin.drive_high()
        pin.drive_low()
        release = self._releases[button] = threading.Timer(hold_s, pin.drive_high)
        release.start()

    # -- physics --------------------------------------------------------------------------
    def catch_up(self, now: float) -> None:
        """Move the world on to now (time.monotonic's). A real bolt travels while the
        motor's process waits for a core; here only this thread moves it, and after a stall
        the motor may read the end switches before the thread has run: it would take a
        finished drive for a jam (L-27). The motor calls this before it reads them."""
        with self._lock:
            self._advance(now)

    def _run(self) -> None:
        while not self._stop.wait(STEP_S if self._driven else IDLE_STEP_S):
            with self._lock:
                self._advance(time.monotonic())

    def _advance(self, now: float) -> None:
        """One step to now; a drive begun since the last step moves from this step on."""
        self._step(now - self._last if self._driven else 0.0)
        self.steps += 1
        self._last, self._driven = now, self.pins["motor_a"].state != self.pins["motor_b"].state

    def _step(self, dt: float) -> None:
        a, b = self.pins["motor_a"].state, self.pins["motor_b"].state
        if a == b or self.world["jammed"]:
            return
        toward_unlocked = (a and not b) == retract_forward(self.handing)
        step = dt / self.travel_s * (1 if toward_unlocked else -1)
        before = self.world["bolt"]
        self.world["bolt"] = min(1.0, max(0.0, before + step))
        if self.world["bolt"] != before:
            self._apply()
            self._save()

    def _apply(self) -> None:
        """Set the input pins from the world: switches close (low) at the ends."""
        position = self.world["bolt"]
        _drive(self.pins["bolt_locked"], closed=position <= 0.0)
        _drive(self.pins["bolt_unlocked"], closed=position >= 1.0)
        _drive(self.pins["door"], closed=not self.world["door_open"])
        _drive(self.pins["tamper"], closed=not self.world["tamper_removed"])


def _drive(pin: Any, *, closed: bool) -> None:
    pin.drive_low() if closed else pin.drive_high()
