"""Offline visitor codes (issue 16): typed at the door, made by the owner without
contacting the lock, in the spirit of RFC 4226/6238 (HOTP/TOTP).

The owner's phone and policy share a 32-byte secret K from the claim (policy derives it
from the device secret; the owner gets it once, through an owner request). A code is

    HMAC-SHA256(K, b"LMPIN1" ‖ start hour u32 ‖ duration index u8 ‖ kind u8 ‖ seq u8),
    its first 8 bytes as a big-endian integer, mod 10^10, written with 10 digits

for a window that starts on the hour (UTC hours since the epoch) and lasts one of
DURATIONS_H hours; kind `once` opens once, `multi` any number of times in the window; seq
(0 or 1) tells two codes of the same window and kind apart. Taking 64 bits before the
modulo keeps the bias under 10^10 / 2^64 (5e-10); RFC 4226's 31 bits would reach only a
fifth of the ten-digit space.

Nobody tells the lock which codes exist: at each hour it computes every code whose window
holds that hour (CANDIDATES of them) and accepts an entry only if it is one of those. So
the chance that a random ten-digit entry is valid at a given moment counts all of them,
issued or not: CANDIDATES / 10^10 (see chance_per_entry).
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

DIGITS = 10
HOUR_S = 3600
DURATIONS_H = (1, 2, 3, 4, 6, 8, 12, 24, 48, 72, 168)  # a week at most
KINDS = ("once", "multi")
SEQS = 2
CONTEXT = b"LMPIN1"
SECRET_BYTES = 32
# every code valid during any one hour: each duration d has d windows holding that hour
CANDIDATES = len(KINDS) * SEQS * sum(DURATIONS_H)  # 1392


@dataclass(frozen=True)
class CodeSpec:
    """Which code: its window's first hour (UTC hours since the epoch), its length in
    hours, once or multi, and its sequence number."""

    start_hour: int
    hours: int
    kind: str
    seq: int = 0

    def __post_init__(self) -> None:
        if self.hours not in DURATIONS_H:
            raise ValueError(f"a window lasts one of {DURATIONS_H} hours, not {self.hours}")
        if self.kind not in KINDS or not 0 <= self.seq < SEQS:
            raise ValueError(f"kind is one of {KINDS} and seq 0 to {SEQS - 1}")
        if not 0 <= self.start_hour < 2**32:
            raise ValueError("the start hour is out of range")

    @property
    def start(self) -> float:
        return float(self.start_hour * HOUR_S)

    @property
    def end(self) -> float:
        return float((self.start_hour + self.hours) * HOUR_S)

    def holds(self, now: float) -> bool:
        return self.start <= now < self.end

    def name(self) -> str:
        """How the log names it: offline:2026-12-24T10Z+4h/once/0."""
        start = datetime.fromtimestamp(self.start, timezone.utc).strftime("%Y-%m-%dT%HZ")
        return f"offline:{start}+{self.hours}h/{self.kind}/{self.seq}"


def code(secret: bytes, spec: CodeSpec) -> str:
    message = CONTEXT + struct.pack(
        ">IBBB", spec.start_hour, DURATIONS_H.index(spec.hours), KINDS.index(spec.kind), spec.seq
    )
    mac = hmac.digest(secret, message, "sha256")
    return str(int.from_bytes(mac[:8], "big") % 10**DIGITS).zfill(DIGITS)


def hour_of(now: float) -> int:
    return int(now // HOUR_S)


def valid_during(hour: int) -> Iterator[CodeSpec]:
    """Every code whose window holds this hour: CANDIDATES of them."""
    for hours in DURATIONS_H:
        for start in range(hour - hours + 1, hour + 1):
            for kind in KINDS:
                for seq in range(SEQS):
                    yield CodeSpec(start, hours, kind, seq)


def table(secret: bytes, hour: int) -> dict[str, list[CodeSpec]]:
    """The codes valid during this hour, by their digits (two specs may share digits)."""
    found: dict[str, list[CodeSpec]] = {}
    for spec in valid_during(hour):
        found.setdefault(code(secret, spec), []).append(spec)
    return found


def chance_per_entry() -> float:
    """The chance that one random ten-digit entry is valid at a given moment."""
    return CANDIDATES / float(10**DIGITS)


def spec_for(start: float, hours: int, kind: str, seq: int = 0) -> CodeSpec:
    """The code whose window starts at the hour holding `start` (epoch seconds)."""
    return CodeSpec(hour_of(start), hours, kind, seq)
