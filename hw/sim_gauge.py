"""The simulated MAX17048: answers I2C register reads from the simulated board's power file.

`lockmesh sim battery PERCENT [--usb-c]` writes {"battery_percent", "usb_c"} to the file;
{"gauge": "unplugged"} makes the gauge stop answering, as a loose wire would.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from hw.max17048 import ADDRESS, PERCENT_PER_LSB, SOC, VCELL, VERSION, VOLTS_PER_LSB

EMPTY_V, FULL_V = 3.0, 4.2  # one lithium cell, empty to full
DEFAULT_PERCENT = 80.0


class SimGaugeBus:
    """An I2C bus with one simulated MAX17048 on it (smbus2's read_i2c_block_data)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        state = self.state()
        if i2c_addr != ADDRESS or state.get("gauge") == "unplugged":
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        word = self._register(register, state)
        return [word >> 8, word & 0xFF][:length]

    def _register(self, register: int, state: dict[str, Any]) -> int:
        percent = min(100.0, max(0.0, float(state.get("battery_percent", DEFAULT_PERCENT))))
        if register == SOC:
            return round(percent / PERCENT_PER_LSB)
        if register == VCELL:
            return round((EMPTY_V + (FULL_V - EMPTY_V) * percent / 100) / VOLTS_PER_LSB)
        if register == VERSION:
            return 0x0012
        return 0

    def usb_c(self) -> bool:
        return bool(self.state().get("usb_c", False))
