"""The motor's memory of its last accepted drive, so a restart knows one was cut short.

Written whole (proto/files: a temporary file, fsync, rename) before the motor turns and
again when the drive ends: a motor killed between the two finds an unfinished drive.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from proto import files

log = logging.getLogger(__name__)

ACTIONS = ("lock", "unlock")


@dataclass(frozen=True)
class Drive:
    """One accepted drive: what was asked, on whose cause, and whether it ended."""

    action: str  # lock or unlock
    direction: str  # the door's opening direction, which decides the motor's turn
    cause: str | None  # the id policy's Actuate named: the bolt's reports carry it
    started: float  # wall clock, for the people reading the file
    finished: float | None = None
    outcome: str = ""  # the bolt state the drive ended in

    @property
    def unfinished(self) -> bool:
        return self.finished is None


class Journal:
    """Reads and writes the one record; a file it cannot read counts as no record."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last(self) -> Drive | None:
        try:
            raw = json.loads(self.path.read_text())
            drive = Drive(**raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as e:
            log.warning("drive journal %s unreadable (%s): no drive to resume", self.path, e)
            return None
        if drive.action not in ACTIONS:
            log.warning("drive journal %s names action %r: ignored", self.path, drive.action)
            return None
        return drive

    def started(self, action: str, direction: str, cause: str | None) -> Drive:
        drive = Drive(action=action, direction=direction, cause=cause, started=time.time())
        self._write(drive)
        return drive

    def finished(self, drive: Drive, outcome: str) -> Drive:
        done = dataclasses.replace(drive, finished=time.time(), outcome=outcome)
        self._write(done)
        return done

    def _write(self, drive: Drive) -> None:
        """All or nothing, on disk before the caller goes on; 0600 in a 0700 folder."""
        files.private_dir(self.path.parent)
        files.write_private(self.path, json.dumps(dataclasses.asdict(drive)).encode())
