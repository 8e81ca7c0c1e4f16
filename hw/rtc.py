"""The lock's wall clock: the system's, or the simulated board's real-time clock.

A clock that reads before MIN_VALID_EPOCH was lost with the power: the lock then does
not know the time, and says so with None rather than trusting 1970.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol

MIN_VALID_EPOCH = 1_700_000_000.0  # 2023-11-14: no lock of ours was built earlier


class WallClock(Protocol):
    def now(self) -> float | None: ...


class SystemClock:
    def now(self) -> float | None:
        t = time.time()
        return t if t >= MIN_VALID_EPOCH else None


class SimRtc:
    """System time moved by an offset, or lost: {"offset_s": …, "lost": …} in a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> float | None:
        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("lost"):
            return None
        t = time.time() + float(state.get("offset_s", 0.0))
        return t if t >= MIN_VALID_EPOCH else None

    def set(self, *, offset_s: float = 0.0, lost: bool = False) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"offset_s": offset_s, "lost": lost}))
        tmp.replace(self.path)
