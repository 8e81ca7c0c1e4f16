"""The event log's hash chain and its sealed head, and the audit that re-checks both.

Each row's hash covers the previous hash and the row, keyed with a subkey of the device
secret, so an edited, deleted or moved row shows. The chain alone cannot show a cut at its
end: a prefix of a good chain is a good chain. So the store also keeps a sealed head, apart
from the rows and written in the same transaction as each one: the epoch (one more at each
factory reset), the number of the last row and its hash, sealed (HMAC) with its own
subkey. Removing the newest rows without the key leaves a head that names rows no longer
there. A whole store put back from an older copy carries its older head along: that is
what the witnesses outside the store are for (proto/witness.py).

audit() only reads, so it runs on the live store, on a stopped lock's file and on a copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

NO_HEAD_TABLE = (
    "the log has no sealed head (its table was dropped, or the store is from an older "
    "version that policy has not opened yet)"
)
EVENT_FIELDS = ("wall", "kind", "person", "method", "source", "reason", "cause", "detail")
GENESIS = bytes(32)


@dataclass(frozen=True)
class SealedHead:
    epoch: int
    count: int  # the number of the last row (0: an empty log)
    last: bytes  # its hash (GENESIS for an empty log)


@dataclass(frozen=True)
class Audit:
    checked: int
    first_bad: int | None
    why: str
    head: SealedHead | None  # as found in the store, when its seal holds

    @property
    def intact(self) -> bool:
        return self.first_bad is None


def row_hash(prev: bytes, row: dict[str, Any], key: bytes = b"") -> bytes:
    """SHA-256 over the previous hash and the row; keyed (HMAC) with the device secret,
    so that someone who edits the file cannot forge a chain that verifies."""
    values = [row.get(k) for k in EVENT_FIELDS]
    values[0] = float(row["wall"])  # SQLite gives REAL back: hash what a re-check will read
    return _mac(key, prev + json.dumps(values, separators=(",", ":")).encode())


def seal(key: bytes, epoch: int, count: int, last: bytes) -> bytes:
    """The head's seal, under a key of its own (derived from the chain's)."""
    head_key = hmac.new(key, b"sealed head", hashlib.sha256).digest() if key else b""
    return _mac(head_key, b"lockmesh head %d %d " % (epoch, count) + last)


def _mac(key: bytes, data: bytes) -> bytes:
    if key:
        return hmac.new(key, data, hashlib.sha256).digest()
    return hashlib.sha256(data).digest()


def read_head(db: sqlite3.Connection, key: bytes) -> tuple[SealedHead | None, str]:
    """The sealed head, or None and why not."""
    try:
        row = db.execute("SELECT epoch, count, last, seal FROM chain_head").fetchone()
    except sqlite3.OperationalError:
        return None, NO_HEAD_TABLE
    if row is None:
        return None, "the sealed head of the log is missing"
    epoch, count, last, sealed = row
    if not hmac.compare_digest(bytes(sealed), seal(key, epoch, count, bytes(last))):
        return None, "the sealed head of the log was changed"
    return SealedHead(epoch, count, bytes(last)), ""


def last_row(db: sqlite3.Connection) -> tuple[int, bytes]:
    """The number and hash of the newest row as the rows say (0 and GENESIS: none)."""
    row = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], bytes(row[1])) if row else (0, GENESIS)


def hash_at(db: sqlite3.Connection, seq: int) -> bytes | None:
    row = db.execute("SELECT hash FROM events WHERE seq=?", (seq,)).fetchone()
    return bytes(row[0]) if row else None


def audit(db: sqlite3.Connection, key: bytes) -> Audit:
    """Re-check every row from GENESIS, then the rows' end against the sealed head; name
    the first row that is wrong (or missing) and say why."""
    checked, bad, why = _walk(db, key)
    head, head_problem = read_head(db, key)
    if bad is not None:
        return Audit(checked, bad, why, head)
    if head is None:
        return Audit(checked, checked + 1, head_problem, None)
    return Audit(checked, *_against_head(checked, head, last_row(db)[1]), head)


def _walk(db: sqlite3.Connection, key: bytes) -> tuple[int, int | None, str]:
    prev, expected, checked = GENESIS, 1, 0
    columns = ", ".join(EVENT_FIELDS)
    for seq, *values, stored_prev, stored in db.execute(
        f"SELECT seq, {columns}, prev, hash FROM events ORDER BY seq"
    ):
        if seq != expected:
            return checked, expected, f"{_rows(expected, seq - 1)} missing"
        row = dict(zip(EVENT_FIELDS, values))
        if bytes(stored_prev) != prev or bytes(stored) != row_hash(prev, row, key):
            return checked, seq, f"row {seq} was changed or moved"
        prev, expected, checked = bytes(stored), seq + 1, checked + 1
    return checked, None, "intact"


def _rows(first: int, last: int) -> str:
    return f"row {first} is" if first == last else f"rows {first} to {last} are"


def _against_head(rows: int, head: SealedHead, last: bytes) -> tuple[int | None, str]:
    """The rows (all good, 1..rows) against the sealed head."""
    if head.count > rows:
        missing = head.count - rows
        cut = "the last row is" if missing == 1 else f"the last {missing} rows are"
        return rows + 1, f"{cut} missing (the log ends at row {rows}, its head at {head.count})"
    if head.count < rows:
        return head.count + 1, f"rows after {head.count} are not covered by the sealed head"
    if last != head.last:
        return rows, f"row {rows} is not the one the sealed head names"
    return None, "intact"


def open_readonly(path: Path) -> sqlite3.Connection:
    """The store's file for reading only (a stopped lock's, a running one's or a copy):
    nothing is migrated or written, not even the journal mode."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
