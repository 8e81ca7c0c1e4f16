"""MAX17048 fuel gauge on I2C: state of charge and cell voltage, read register by register.

The bus is anything with smbus2's read_i2c_block_data(address, register, length): the
real SMBus on a Pi, or the simulated gauge in hw/sim_gauge.py, which answers the same
registers with the same encoding.
"""

from __future__ import annotations

from typing import Protocol

ADDRESS = 0x36
VCELL, SOC, MODE, VERSION, CONFIG, STATUS = 0x02, 0x04, 0x06, 0x08, 0x0C, 0x1A
VOLTS_PER_LSB = 78.125e-6  # VCELL
PERCENT_PER_LSB = 1 / 256  # SOC
VERSION_FAMILY = 0x0010  # the MAX17048/9's version register reads 0x001X


class I2CBus(Protocol):
    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...


class GaugeError(OSError):
    """The gauge did not answer, or answered something a gauge cannot mean."""


class Max17048:
    def __init__(self, bus: I2CBus, address: int = ADDRESS) -> None:
        self.bus, self.address = bus, address

    def register(self, register: int) -> int:
        """One 16-bit register; the chip sends the most significant byte first."""
        try:
            msb, lsb = self.bus.read_i2c_block_data(self.address, register, 2)
        except OSError as e:
            raise GaugeError(f"no answer from the gauge at 0x{self.address:02x}: {e}") from e
        except ValueError as e:  # fewer or more than two bytes
            raise GaugeError(f"a short read from the gauge: {e}") from e
        return msb << 8 | lsb

    def check(self) -> int:
        version = self.register(VERSION)
        if version & 0xFFF0 != VERSION_FAMILY:
            raise GaugeError(f"not a MAX17048/9: version 0x{version:04x}")
        return version

    def percent(self) -> float:
        soc = self.register(SOC) * PERCENT_PER_LSB
        if soc > 102:  # the chip may overshoot 100 % a little while charging, not more
            raise GaugeError(f"implausible state of charge {soc:.1f} %")
        return min(100.0, soc)

    def volts(self) -> float:
        return self.register(VCELL) * VOLTS_PER_LSB
