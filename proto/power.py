"""The power monitor's report."""

from __future__ import annotations

from dataclasses import dataclass

from proto.schema import Message, between


@dataclass(frozen=True)
class Battery(Message, family="power", event="battery"):
    percent: float = between(0, 100)
    volts: float = between(0, 30)
    low: bool = False
    video_allowed: bool = True  # live video only above 20 % (L-28)
    external: bool = False  # the USB-C emergency supply is connected
