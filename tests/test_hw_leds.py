"""The rear panel's status LEDs on gpiozero's MockFactory (issue 5)."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from hw.leds import StatusLeds, pattern
from tests.meshkit import eventually


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
    eventually(lambda: len(red.states) - changes >= 4, timeout=10, every=0.01)  # it blinks
    blink = red.states[changes:]
    gaps = [b.timestamp - a.timestamp for a, b in zip(blink, blink[1:])]
    assert max(gaps) < 1.5, gaps  # fast (0.1 s each way), not the low battery's 1.8 s dark
    leds.show("off")  # stops the blink's thread before it returns
    assert not green.state and not red.state
    leds.close()
