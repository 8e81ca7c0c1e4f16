"""The doorbell's snapshots (L-23): the camera's frame, kept as NAME.jpg for the app.

Each is written whole (proto/files.py: a temporary file, fsync, then linked into place, so
a name is never half-written and never replaced) and readable by the group: on a Pi the
folder belongs to the gateway's group (ops/deploy.py), which serves it to the owner. The
folder is bounded: the newest `face.snapshots_kept` (200) are kept, older ones deleted.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from proto import files
from proto.biometric import snapshot_name
from proto.control import Done, refused
from proto.layout import Layout
from services.face.video import encode_jpeg

log = logging.getLogger(__name__)

SNAPSHOT_MODE = 0o640  # the owner (face) writes, the group (the gateway, on a Pi) reads
QUALITY = 85  # a still kept for the owner: better than the live view's frames


class SnapshotFolder:
    def __init__(self, layout: Layout, kept: int) -> None:
        self.layout, self.folder, self.kept = layout, layout.snapshots, kept

    def prepare(self) -> None:
        """The folder made at start (on a Pi deploy made it); a failure is the first
        snapshot's to report."""
        try:
            files.private_dir(self.folder)
        except OSError as e:
            log.warning("the snapshot folder %s: %s", self.folder, e)

    def take(self, name: str, rgb: np.ndarray) -> Done:
        """Keep this frame as name; refused if the name is taken or the disk fails."""
        bad = snapshot_name(name)
        if bad is not None:
            return refused("bad-value", bad)
        path = self.layout.snapshot(name)
        try:
            files.private_dir(self.folder)
            if not files.create_private(path, encode_jpeg(rgb, QUALITY), SNAPSHOT_MODE):
                return refused("exists", f"a snapshot named {name} exists already")
        except OSError as e:
            log.error("snapshot %s not written: %s", name, e)
            return refused("not-written", f"the snapshot could not be written: {e.strerror}")
        self._prune()
        return Done(ok=True, detail=name)

    def names(self) -> list[str]:
        """The snapshots kept, oldest first."""
        return [p.stem for p in self._oldest_first()]

    def _oldest_first(self) -> list[Path]:
        kept = []
        for p in self.folder.glob("*.jpg"):
            try:
                kept.append((p.stat().st_mtime_ns, p.name, p))
            except FileNotFoundError:
                continue  # deleted meanwhile
        return [p for *_, p in sorted(kept)]

    def _prune(self) -> None:
        """The newest `kept` stay; a deletion that fails is tried again next time."""
        for old in self._oldest_first()[: -self.kept or None]:
            try:
                old.unlink()
            except OSError as e:
                log.warning("could not delete the old snapshot %s: %s", old.name, e)
