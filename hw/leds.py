"""The status LEDs on the rear panel: what state the lock is in, at a glance.

Green steady: the bolt is drawn back (unlocked). Red fast blink: something needs a
person now (the bolt jammed, the front panel removed). Red slow blink: the battery is
low. Nothing lit: locked and well, which is most of the time and costs no battery.
"""

from __future__ import annotations

from gpiozero import LED

PATTERNS = ("off", "unlocked", "alarm", "battery-low")
FAST, SLOW = (0.1, 0.1), (0.2, 1.8)  # (on, off) seconds


def pattern(*, bolt: str, tamper_removed: bool, battery_low: bool) -> str:
    """The most urgent thing to show."""
    if bolt == "jammed" or tamper_removed:
        return "alarm"
    if battery_low:
        return "battery-low"
    if bolt == "unlocked":
        return "unlocked"
    return "off"


class StatusLeds:
    def __init__(self, green_pin: int, red_pin: int, *, pin_factory: object) -> None:
        self.green = LED(green_pin, pin_factory=pin_factory)
        self.red = LED(red_pin, pin_factory=pin_factory)
        self.showing = "off"

    def show(self, name: str) -> None:
        if name == self.showing:
            return  # restarting a blink would make it stutter
        self.showing = name
        self.green.off()
        self.red.off()
        if name == "unlocked":
            self.green.on()
        elif name == "alarm":
            self.red.blink(*FAST)
        elif name == "battery-low":
            self.red.blink(*SLOW)

    def close(self) -> None:
        self.green.close()
        self.red.close()
