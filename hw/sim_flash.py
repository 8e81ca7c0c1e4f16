"""A simulated module's flash: its template store, kept in a file so it outlives the process.

A real module keeps its templates through power cycles and host restarts; the simulated
one must too, or a restarted biometric service would find an empty module. Written
whole and atomically (write, fsync, rename), so a kill mid-write leaves the old store.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Flash:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self) -> dict[int, dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            return {int(k): v for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError, AttributeError) as e:
            log.error("simulated flash %s unreadable, starting empty: %s", self.path, e)
            return {}

    def save(self, records: dict[int, dict[str, Any]]) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({str(k): v for k, v in records.items()}, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
