"""Battery gauges: the simulated one reads its level from the simulated board's file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# A 4-cell lithium pack, empty to full: the simulated gauge reports volts from percent.
EMPTY_V, FULL_V = 12.0, 16.8


@dataclass(frozen=True)
class Reading:
    percent: float
    volts: float
    external: bool  # the USB-C emergency supply is connected


class SimGauge:
    """Reads {"battery_percent": …, "usb_c": …} from a JSON file that `lockmesh sim` writes."""

    def __init__(self, path: Path, *, default_percent: float = 80.0) -> None:
        self.path, self.default_percent = path, default_percent

    def read(self) -> Reading:
        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            state = {}
        percent = float(state.get("battery_percent", self.default_percent))
        percent = min(100.0, max(0.0, percent))
        volts = round(EMPTY_V + (FULL_V - EMPTY_V) * percent / 100, 2)
        return Reading(percent=percent, volts=volts, external=bool(state.get("usb_c", False)))
