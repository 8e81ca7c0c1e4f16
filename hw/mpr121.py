"""NXP MPR121 capacitive touch controllers on I2C: the front panel's electrodes, read as keys.

The bus is anything with smbus2's write_byte_data, read_byte_data and read_i2c_block_data:
the real SMBus on a Pi, or the simulated chips in hw/sim_mpr121.py, which answer the same
registers with the same encoding.

One MPR121 senses at most 12 electrodes and the panel has 14 keys, so the panel is two
chips on one bus: 0x5A (ADDR pin to ground) and 0x5B (ADDR to VDD). A chip is started
with only as many electrodes as it has keys (ECR enables ELE0 up to ELE(n-1)), so a
status bit beyond them can only be a misread, and is refused as one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

ADDRESSES = (0x5A, 0x5B, 0x5C, 0x5D)  # what the ADDR pin can select
MAX_ELECTRODES = 12

TOUCH_STATUS = 0x00  # two bytes: ELE0..7, then ELE8..11, ELEPROX and OVCF
BASELINE_FILTER = 0x2B  # 0x2B..0x35: rising, falling and touched filters of ELE0..11
TOUCH_THRESHOLD = 0x41  # ELEn's touch threshold at 0x41 + 2n, its release threshold next
DEBOUNCE = 0x5B
AFE1, AFE2 = 0x5C, 0x5D  # filter and global charge current / charge time, sample interval
ECR = 0x5E  # electrode configuration: stop mode when no electrode is enabled
SOFT_RESET, RESET_KEY = 0x80, 0x63

AFE1_AFTER_RESET, AFE2_AFTER_RESET = 0x10, 0x24  # the datasheet's power-on values
OVCF = 0x80  # in the second status byte: over-current on REXT, the chip fell to stop mode
ELEPROX = 0x10  # second status byte: the proximity channel, which we never enable
RESERVED = 0x60  # second status byte: always read 0
ELECTRODES_MASK = 0x0F  # ECR D3..D0: how many electrodes run
RUN_BITS = 0x3F  # ECR D5..D0: electrodes and proximity; all 0 is stop mode
BASELINE_FROM_FIRST_READING = 0b10 << 6  # ECR CL: track the baseline, start from the data

# AN3944's starting point for the baseline filter, 0x2B..0x35 in order: rising MHD NHD NCL
# FDL, falling MHD NHD NCL FDL, touched NHD NCL FDL.
BASELINE_FILTER_VALUES = (0x01, 0x01, 0x0E, 0x00, 0x01, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00)
SAMPLE_INTERVALS_MS = (1, 2, 4, 8, 16, 32, 64, 128)  # AFE2 ESI 0..7
CHARGE_TIMES_US = (0.5, 1, 2, 4, 8, 16, 32)  # AFE2 CDT 1..7


class I2CBus(Protocol):
    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...


class MPR121Error(OSError):
    """A touch controller did not answer, or answered something the chip cannot mean."""


@dataclass(frozen=True)
class TouchSettings:
    """What every electrode is configured with; thresholds are in counts below the baseline."""

    touch_threshold: int = 12
    release_threshold: int = 6  # lower than touch: hysteresis, so a resting finger holds
    charge_current_ua: int = 16  # AFE1 CDC, 1..63 µA
    charge_time_us: float = 0.5  # AFE2 CDT
    sample_interval_ms: int = 8  # AFE2 ESI: each halving costs current, doubling costs latency

    def __post_init__(self) -> None:
        if not 0 < self.release_threshold < self.touch_threshold <= 0xFF:
            raise ValueError("thresholds must be 0 < release < touch <= 255")
        if not 1 <= self.charge_current_ua <= 63:
            raise ValueError("charge_current_ua must be 1..63")
        if self.charge_time_us not in CHARGE_TIMES_US:
            raise ValueError(f"charge_time_us must be one of {CHARGE_TIMES_US}")
        if self.sample_interval_ms not in SAMPLE_INTERVALS_MS:
            raise ValueError(f"sample_interval_ms must be one of {SAMPLE_INTERVALS_MS}")

    def afe1(self) -> int:
        return self.charge_current_ua  # FFI 00: 6 samples in the first filter

    def afe2(self) -> int:
        cdt = CHARGE_TIMES_US.index(self.charge_time_us) + 1
        esi = SAMPLE_INTERVALS_MS.index(self.sample_interval_ms)
        return cdt << 5 | esi  # SFI 00: 4 samples in the second filter


class MPR121:
    """One chip: start() resets and configures it, touched() reads which electrodes are touched."""

    def __init__(
        self,
        bus: I2CBus,
        address: int = ADDRESSES[0],
        electrodes: int = MAX_ELECTRODES,
        settings: TouchSettings | None = None,
    ) -> None:
        if not 1 <= electrodes <= MAX_ELECTRODES:
            raise ValueError(f"an MPR121 has 1..{MAX_ELECTRODES} electrodes, not {electrodes}")
        self.bus, self.address, self.electrodes = bus, address, electrodes
        self.settings = settings or TouchSettings()

    @property
    def run_mode(self) -> int:
        return BASELINE_FROM_FIRST_READING | self.electrodes

    def start(self) -> None:
        self.reset()
        self.configure()

    def reset(self) -> None:
        """Soft reset, then check the two registers whose power-on values identify the chip."""
        self._write(SOFT_RESET, RESET_KEY)
        afe1, afe2 = self._read(AFE1, 2)
        if (afe1, afe2) != (AFE1_AFTER_RESET, AFE2_AFTER_RESET):
            raise MPR121Error(
                f"not an MPR121 at 0x{self.address:02x}, or its reset failed:"
                f" AFE1/AFE2 read 0x{afe1:02x}/0x{afe2:02x}"
            )

    def configure(self) -> None:
        # The chip takes configuration only in stop mode, so stop it first.
        self._write(ECR, 0x00)
        for offset, value in enumerate(BASELINE_FILTER_VALUES):
            self._write(BASELINE_FILTER + offset, value)
        thresholds = [self.settings.touch_threshold, self.settings.release_threshold]
        for electrode in range(self.electrodes):
            self._write(TOUCH_THRESHOLD + 2 * electrode, thresholds[0])
            self._write(TOUCH_THRESHOLD + 2 * electrode + 1, thresholds[1])
        self._write(DEBOUNCE, 0x00)  # debounced in software (hw/touch_keys.py), with a clock
        self._write(AFE1, self.settings.afe1())
        self._write(AFE2, self.settings.afe2())
        if self._read(TOUCH_THRESHOLD, 2 * self.electrodes) != thresholds * self.electrodes:
            raise MPR121Error(f"the touch controller at 0x{self.address:02x} ignored its setup")
        self._write(ECR, self.run_mode)
        self.status()  # an over-current trip shows here, and reads clearer than a wrong ECR
        self._ensure_running()

    def status(self) -> int:
        """The touched electrodes as a bit mask, refused if the chip could not have meant it."""
        low, high = self._read(TOUCH_STATUS, 2)
        if high & OVCF:
            raise MPR121Error(
                f"over-current on the touch controller at 0x{self.address:02x}"
                " (REXT shorted?); it stopped sensing"
            )
        if high & (ELEPROX | RESERVED):
            raise MPR121Error(f"implausible touch status 0x{high:02x}{low:02x}")
        mask = (high & 0x0F) << 8 | low
        if mask >> self.electrodes:
            raise MPR121Error(
                f"implausible touch status 0x{mask:03x}: only {self.electrodes} electrodes run"
            )
        return mask

    def touched(self) -> frozenset[int]:
        mask = self.status()
        # A chip reset by a glitch reads "nothing touched" forever: check it still runs.
        self._ensure_running()
        return frozenset(e for e in range(self.electrodes) if mask >> e & 1)

    def _ensure_running(self) -> None:
        ecr = self._read_byte(ECR)
        if ecr != self.run_mode:
            raise MPR121Error(
                f"the touch controller at 0x{self.address:02x} is not sensing"
                f" (ECR 0x{ecr:02x}, expected 0x{self.run_mode:02x}): reset or power loss?"
            )

    # -- the bus ----------------------------------------------------------------------------
    def _write(self, register: int, value: int) -> None:
        try:
            self.bus.write_byte_data(self.address, register, value)
        except OSError as e:
            raise self._no_answer(e) from e

    def _read_byte(self, register: int) -> int:
        try:
            value = self.bus.read_byte_data(self.address, register)
        except OSError as e:
            raise self._no_answer(e) from e
        return self._checked([value], 1)[0]

    def _read(self, register: int, length: int) -> list[int]:
        try:
            values = self.bus.read_i2c_block_data(self.address, register, length)
        except OSError as e:
            raise self._no_answer(e) from e
        return self._checked(values, length)

    def _checked(self, values: list[int], length: int) -> list[int]:
        if len(values) != length or not all(isinstance(v, int) and 0 <= v <= 0xFF for v in values):
            raise MPR121Error(
                f"a short or garbled read from the touch controller at 0x{self.address:02x}:"
                f" {values!r}, {length} bytes expected"
            )
        return list(values)

    def _no_answer(self, e: OSError) -> MPR121Error:
        return MPR121Error(f"no answer from the touch controller at 0x{self.address:02x}: {e}")


class TouchPanel:
    """The front panel: one or more chips, each electrode named by the key it sits under."""

    def __init__(
        self,
        bus: I2CBus,
        layout: Mapping[int, Sequence[str]],
        settings: TouchSettings | None = None,
    ) -> None:
        """layout: chip address -> key names in electrode order ("" for an unused electrode)."""
        names = [name for keys in layout.values() for name in keys if name]
        if len(names) != len(set(names)):
            raise ValueError(f"a key sits on two electrodes: {sorted(names)}")
        self.chips = [
            (MPR121(bus, address, len(keys), settings), tuple(keys))
            for address, keys in layout.items()
        ]

    def start(self) -> None:
        for chip, _ in self.chips:
            chip.start()

    def touched(self) -> frozenset[str]:
        return frozenset(
            keys[electrode]
            for chip, keys in self.chips
            for electrode in chip.touched()
            if keys[electrode]
        )


def layout_from_config(
    addresses: Sequence[int], keys: Sequence[Sequence[str]]
) -> dict[int, list[str]]:
    """The keypad_hw config's parallel lists (addresses, keys per chip) as a TouchPanel layout."""
    if len(addresses) != len(keys) or not addresses:
        raise ValueError("keypad_hw: one list of keys per chip address")
    if len(set(addresses)) != len(addresses) or not set(addresses) <= set(ADDRESSES):
        raise ValueError(f"keypad_hw: chip addresses must be distinct, among {ADDRESSES}")
    return {address: list(names) for address, names in zip(addresses, keys)}
