"""The rear panel's status LEDs on gpiozero's MockFactory (issue 5)."""

from __future__ import annotations

import time

import pytest
from gpiozero.pins.mock import MockFactory

from hw.leds import StatusLeds, pattern


@pytest.mark.parametrize(
    ("bolt", "tamper", "low", "shown"),
    [
        ("locked", False, False, "off"),
        ("unlocked", False, False, "unlocked"),
        ("unlocked", False, True, "battery-low"),
        ("jammed", False, True, "alarm"),
        ("locked", True, False, "alarm"),
        ("moving", False, False, "off"),
    ],
)
def test_the_most_urgent_state_is_shown(bolt, tamper, low, shown):
    assert pattern(bolt=bolt, tamper_removed=tamper, battery_low=low) == shown


def test_green_is_steady_red_blinks_and_nothing_is_lit_when_locked():
    factory = MockFactory()
    leds = StatusLeds(16, 20, pin_factory=factory)
    green, red = factory.pin(16), factory.pin(20)
    leds.show("unlocked")
    assert green.state and not red.state
    leds.show("alarm")
    assert not green.state
    changes = len(red.states)
    time.sleep(0.5)
    assert len(red.states) - changes >= 3  # a fast blink: several changes in half a second
    leds.show("off")
    time.sleep(0.15)
    assert not green.state and not red.state
    leds.close()
