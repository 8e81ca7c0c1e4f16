"""The event log's head as others see it, and the witnesses that keep the newest one.

Policy's status tells every peer the head of its log: the lock's id, the epoch (one more at
each factory reset), the number of the last row and its hash. A witness keeps the newest
head it has seen outside lock.db: the watchdog in a folder of its own, the owner's CLI in
the owner's state. A store put back from an older copy ends before a head a witness saw;
one put back and written again has another row where the witness saw its row.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from proto import files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Head:
    lock: str  # a public name of the lock's device secret
    epoch: int
    count: int  # the number of the log's last row
    last: str  # that row's hash, hex

    @property
    def order(self) -> tuple[int, int]:
        return self.epoch, self.count

    def to_body(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_body(cls, body: Any) -> Head | None:
        """A head from a status or a file; None for anything malformed."""
        try:
            head = cls(str(body["lock"]), int(body["epoch"]), int(body["count"]), str(body["last"]))
        except (KeyError, TypeError, ValueError):
            return None
        return head if head.epoch >= 0 and head.count >= 0 else None


def behind(store: Head, seen: Head) -> str | None:
    """Why a store's head is older than one a witness saw, or None when it is not."""
    if store.lock != seen.lock or store.order > seen.order:
        return None
    if store.order == seen.order:
        if store.last == seen.last:
            return None
        return f"row {store.count} is not the row a witness saw (rolled back, then written)"
    if store.epoch < seen.epoch:
        return (
            f"the store is from before a factory reset that a witness saw "
            f"(epoch {store.epoch}, the witness saw {seen.epoch})"
        )
    return f"the store ends at row {store.count} but a witness saw row {seen.count}"


@dataclass(frozen=True)
class Witness:
    head: Head
    # What this witness once saw go backwards. Kept: a head that later grows past the old
    # one cannot excuse it (the watchdog sees heads, not the rows between them).
    rolled_back: str = ""


def read(path: Path) -> Witness | None:
    try:
        body = json.loads(path.read_bytes())
        head = Head.from_body(body["head"])
        note = str(body.get("rolled_back", ""))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("ignoring the witness in %s: %s", path, e)
        return None
    return Witness(head, note) if head is not None else None


def write(path: Path, witness: Witness) -> None:
    files.private_dir(path.parent)
    body = {"head": witness.head.to_body(), "rolled_back": witness.rolled_back}
    files.write_private(path, json.dumps(body, sort_keys=True).encode())


def observe(path: Path, head: Head, now: float | None = None) -> tuple[Witness, str | None]:
    """Keep head in path if it is newer than what the witness holds; the witness after,
    and why the store went back when this head is the first to show it."""
    old = read(path)
    if old is None or old.head.lock != head.lock:
        new = Witness(head)
    elif why := behind(head, old.head):
        if old.rolled_back:
            return old, None  # already noted
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        new = Witness(old.head, f"{why} (seen {stamp})")
        write(path, new)
        return new, why
    elif head.order > old.head.order:
        # a factory reset (a newer epoch) starts the lock anew, and its record with it
        new = Witness(head, old.rolled_back if head.epoch == old.head.epoch else "")
    else:
        return old, None
    write(path, new)
    return new, None
