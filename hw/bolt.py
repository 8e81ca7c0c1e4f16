"""The bolt: an H-bridge motor and two end switches, driven without blocking."""

from __future__ import annotations

from gpiozero import DigitalInputDevice, Factory, Motor

LOCKED, UNLOCKED, MOVING, JAMMED, UNKNOWN = "locked", "unlocked", "moving", "jammed", "unknown"


def retract_forward(handing: str) -> bool:
    """Which way the motor turns to pull the bolt back, by the door's opening direction (L-12)."""
    return handing == "right"


class BoltDrive:
    """start() a drive, then poll() until it reports the end: reached, or jammed (L-27).

    The driver never moves the bolt on its own: constructing it or closing it leaves
    the bolt where it is, which is what fail-secure asks of a restart.
    """

    def __init__(
        self,
        *,
        motor_a: int,
        motor_b: int,
        locked_pin: int,
        unlocked_pin: int,
        travel_timeout_s: float,
        pin_factory: Factory,
    ) -> None:
        self.motor = Motor(motor_a, motor_b, pwm=False, pin_factory=pin_factory)
        # plain inputs, not Buttons: a Button's hold thread makes close() wait a second
        self.at_locked = DigitalInputDevice(locked_pin, pull_up=True, pin_factory=pin_factory)
        self.at_unlocked = DigitalInputDevice(unlocked_pin, pull_up=True, pin_factory=pin_factory)
        self.travel_timeout_s = travel_timeout_s
        self._target: str | None = None
        self._deadline = 0.0
        self._jammed = False

    @property
    def state(self) -> str:
        if self._target is not None:
            return MOVING
        if self._jammed:  # until a drive succeeds, wherever the switches say it stuck (L-27)
            return JAMMED
        if self.at_locked.is_active and not self.at_unlocked.is_active:
            return LOCKED
        if self.at_unlocked.is_active and not self.at_locked.is_active:
            return UNLOCKED
        return UNKNOWN

    def start(self, target: str, handing: str, now: float) -> bool:
        """Start driving towards target; False when the bolt is already there."""
        if target not in (LOCKED, UNLOCKED):
            raise ValueError(f"bolt target {target!r}")
        if self.state == target:
            return False
        forward = retract_forward(handing) == (target == UNLOCKED)
        self.motor.forward() if forward else self.motor.backward()
        self._target, self._deadline, self._jammed = target, now + self.travel_timeout_s, False
        return True

    def poll(self, now: float) -> str | None:
        """The state a drive ended in, once; None while it goes on or when idle."""
        if self._target is None:
            return None
        switch = self.at_locked if self._target == LOCKED else self.at_unlocked
        if switch.is_active:
            self.motor.stop()
            self._target = None
            return self.state
        if now >= self._deadline:
            self.motor.stop()
            self._target, self._jammed = None, True
            return JAMMED
        return None

    def close(self) -> None:
        self.motor.stop()
        for device in (self.motor, self.at_locked, self.at_unlocked):
            device.close()
