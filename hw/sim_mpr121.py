"""Simulated MPR121 touch controllers: registers answered over a fake I2C bus, as the chip would.

Touched electrodes come from in-memory calls (chip(0x5A).touch(3)) and from a JSON state
file, merged; the file looks like

    {"chips": {"0x5a": {"touched": [0, 3]}, "0x5b": {"fault": "unplugged"}}}

Faults: "unplugged" (no answer, EREMOTEIO; the chip loses power, so it comes back reset),
"noisy" (touch bits flicker for one read at a time, as a wet or badly grounded panel
makes them), "overcurrent" (REXT shorted: OVCF set and the chip drops to stop mode).
"""

from __future__ import annotations

import errno
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hw.mpr121 import (
    AFE1,
    AFE1_AFTER_RESET,
    AFE2,
    AFE2_AFTER_RESET,
    ECR,
    ELECTRODES_MASK,
    MAX_ELECTRODES,
    OVCF,
    RESET_KEY,
    RUN_BITS,
    SOFT_RESET,
    TOUCH_STATUS,
)

REGISTERS = SOFT_RESET + 1
FAULTS = ("unplugged", "noisy", "overcurrent")
GPIO_REGISTERS = range(0x73, 0x7B)  # writable in run mode, like ECR
CONFIG_REGISTERS = range(0x2B, 0x80)  # writable only in stop mode
NOISE = 0.05  # the chance that one electrode's bit is wrong in one noisy read


class SimMPR121:
    """One simulated chip: its registers, the electrodes touched on it, and its fault."""

    def __init__(self, seed: int = 0) -> None:
        self.registers = bytearray(REGISTERS)
        self.fingers: set[int] = set()
        self.fault: str | None = None
        self.overcurrent = False  # OVCF, latched until written with 1 or reset
        self._noise = random.Random(seed)
        self._flickered: frozenset[int] = frozenset()
        self.power_on()

    # -- the simulation's controls -------------------------------------------------------
    def touch(self, electrode: int) -> None:
        self.fingers.add(electrode)

    def release(self, electrode: int) -> None:
        self.fingers.discard(electrode)

    def power_on(self) -> None:
        """Power-on and soft reset alike: every register back to its datasheet value."""
        self.registers[:] = bytes(REGISTERS)
        self.registers[AFE1], self.registers[AFE2] = AFE1_AFTER_RESET, AFE2_AFTER_RESET
        self.overcurrent = False

    @property
    def running(self) -> bool:
        return bool(self.registers[ECR] & RUN_BITS)

    # -- the bus side ----------------------------------------------------------------------
    def write(self, register: int, value: int, fault: str | None) -> None:
        if register == SOFT_RESET:
            if value == RESET_KEY:
                self.power_on()
        elif register == TOUCH_STATUS + 1:
            if value & OVCF:  # writing 1 clears the over-current flag
                self.overcurrent = False
        elif register == ECR:
            self._write_ecr(value, fault)
        elif register in GPIO_REGISTERS or (register in CONFIG_REGISTERS and not self.running):
            self.registers[register] = value
        # anything else (read-only, or configuration while running) the chip ignores

    def read(self, register: int, length: int, touched: set[int], fault: str | None) -> list[int]:
        self._trip(fault)
        snapshot = bytearray(self.registers)
        if register <= TOUCH_STATUS + 1:  # sensed only when asked, so noise flickers per read
            status = self._status(touched, fault)
            snapshot[TOUCH_STATUS] = status & 0xFF
            snapshot[TOUCH_STATUS + 1] = status >> 8 | (OVCF if self.overcurrent else 0)
        return [snapshot[r] if r < REGISTERS else 0 for r in range(register, register + length)]

    def _write_ecr(self, value: int, fault: str | None) -> None:
        if value & RUN_BITS and self.overcurrent:
            return  # run mode is refused until OVCF is cleared
        self.registers[ECR] = value
        self._trip(fault)

    def _trip(self, fault: str | None) -> None:
        """A shorted REXT trips as soon as the chip senses: OVCF, and back to stop mode."""
        if fault == "overcurrent" and self.running:
            self.overcurrent = True
            self.registers[ECR] &= ~RUN_BITS & 0xFF

    def _status(self, touched: set[int], fault: str | None) -> int:
        if not self.running:
            return 0
        enabled = range(min(self.registers[ECR] & ELECTRODES_MASK, MAX_ELECTRODES))
        real = {e for e in touched if e in enabled}
        if fault == "noisy":
            # A glitch lasts one read: an electrode that just flickered reads true next time.
            flicker = frozenset(
                e for e in enabled if e not in self._flickered and self._noise.random() < NOISE
            )
            self._flickered = flicker
            real ^= flicker
        return sum(1 << e for e in real)


class SimTouchBus:
    """An I2C bus with simulated MPR121s on it (smbus2's byte and block calls)."""

    def __init__(
        self, path: Path | None = None, addresses: Iterable[int] = (0x5A, 0x5B), seed: int = 0
    ) -> None:
        self.path = path
        self.chips = {address: SimMPR121(seed + address) for address in addresses}

    def chip(self, address: int) -> SimMPR121:
        return self.chips[address]

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        chip, touched, fault = self._answering(i2c_addr)
        chip.write(register, value & 0xFF, fault)

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        return self.read_i2c_block_data(i2c_addr, register, 1)[0]

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        chip, touched, fault = self._answering(i2c_addr)
        return chip.read(register, length, touched, fault)

    def _answering(self, address: int) -> tuple[SimMPR121, set[int], str | None]:
        chip = self.chips.get(address)
        state = self._file_state(address)
        fault = (chip.fault if chip else None) or state.get("fault")
        if chip is None or fault == "unplugged":
            if chip is not None:
                chip.power_on()  # unplugged is unpowered: it comes back reset
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        touched = chip.fingers | {int(e) for e in state.get("touched", [])}
        return chip, touched, fault

    def _file_state(self, address: int) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            chips = json.loads(self.path.read_text()).get("chips", {})
        except (OSError, ValueError, AttributeError):
            return {}
        state = chips.get(f"0x{address:02x}", {}) if isinstance(chips, dict) else {}
        return state if isinstance(state, dict) else {}
