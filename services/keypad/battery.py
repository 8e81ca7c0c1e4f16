"""The panel's low-battery indicator (L-28): a prompt at each wake, the 🔋 key lit meanwhile."""

from __future__ import annotations

from proto.power import Battery
from services.keypad.effects import Effect, Light

BATTERY_KEY = "battery"  # lit only, never pressed (proto.keypad.INDICATORS)


def is_low(battery: Battery | None, low_percent: float) -> bool:
    """Low by power's own flag or by the panel's threshold; unknown is not low."""
    if battery is None:
        return False
    return battery.low or battery.percent < low_percent


def with_battery(effects: list[Effect], low: bool) -> list[Effect]:
    """While low, every lit panel shows the battery key too; a dark panel stays dark."""
    if not low:
        return effects
    return [
        Light([*e.keys, BATTERY_KEY], e.flashing)
        if isinstance(e, Light) and e.keys and BATTERY_KEY not in e.keys
        else e
        for e in effects
    ]
