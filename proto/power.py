"""The power monitor's report."""

from __future__ import annotations

from proto.schema import Message, between


class Battery(Message, family="power", event="battery"):
    percent: float = between(0, 100)
    volts: float = between(0, 30)
    low: bool = False
    video_allowed: bool = True  # live video only above 20 % (L-28)
    external: bool = False  # the USB-C emergency supply is connected


def video_off(battery: Battery | None, video_min_percent: float) -> str:
    """Why the battery forbids video (the live view, the doorbell's snapshot), or "" when it
    does not (L-28). An unknown battery does not forbid it; the USB-C supply lifts it."""
    if battery is None or battery.external:
        return ""
    if battery.video_allowed and battery.percent >= video_min_percent:
        return ""
    return f"battery too low for video ({battery.percent:g} %, below {video_min_percent:g} %)"
