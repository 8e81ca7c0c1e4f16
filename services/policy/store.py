"""The lock's store: SQLite in WAL mode with synchronous writes, migrated by version.

Policy is its only writer; people and codes live in people.py on top of this. The event
log is append-only (triggers refuse UPDATE and DELETE) and hash-chained: each row's hash
covers the previous hash and the row, keyed with the device secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

APPEND_ONLY_DELETE = """CREATE TRIGGER events_append_only_d BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END"""
MIGRATIONS = (
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE people (
        number TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        name TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    CREATE TABLE passcodes (
        person TEXT NOT NULL REFERENCES people(number) ON DELETE CASCADE,
        digest BLOB NOT NULL UNIQUE,
        length INTEGER NOT NULL
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        wall REAL NOT NULL,
        kind TEXT NOT NULL,
        person TEXT, method TEXT, source TEXT, reason TEXT, cause TEXT, detail TEXT,
        prev BLOB NOT NULL,
        hash BLOB NOT NULL
    );
    CREATE TRIGGER events_append_only_u BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
    """
    + APPEND_ONLY_DELETE
    + ";",
    """
    ALTER TABLE people ADD COLUMN valid_start REAL;
    ALTER TABLE people ADD COLUMN valid_end REAL;
    ALTER TABLE people ADD COLUMN slots TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE passcodes ADD COLUMN kind TEXT NOT NULL DEFAULT 'normal'
        CHECK (kind IN ('normal', 'duress'));
    CREATE TABLE visitors (
        label TEXT PRIMARY KEY,
        digest BLOB NOT NULL UNIQUE,
        length INTEGER NOT NULL,
        valid_start REAL,
        valid_end REAL,
        slots TEXT NOT NULL DEFAULT '[]',
        uses_left INTEGER,
        created REAL NOT NULL
    );
    """,
    """
    CREATE TABLE templates (
        kind TEXT NOT NULL CHECK (kind IN ('face', 'fingerprint', 'palm-vein')),
        person TEXT NOT NULL REFERENCES people(number) ON DELETE CASCADE,
        slot INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (kind, person, slot)
    );
    """,
)

EVENT_FIELDS = ("wall", "kind", "person", "method", "source", "reason", "cause", "detail")
GENESIS = bytes(32)


def row_hash(prev: bytes, row: dict[str, Any], key: bytes = b"") -> bytes:
    """SHA-256 over the previous hash and the row; keyed (HMAC) with the device secret,
    so that someone who edits the file cannot forge a chain that verifies."""
    values = [row.get(k) for k in EVENT_FIELDS]
    values[0] = float(values[0])  # SQLite gives REAL back: hash what a re-check will read
    canonical = prev + json.dumps(values, separators=(",", ":")).encode()
    if key:
        return hmac.new(key, canonical, hashlib.sha256).digest()
    return hashlib.sha256(canonical).digest()


class Store:
    def __init__(self, path: Path, *, wall=time.time, chain_key: bytes = b"") -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._wall = wall
        self._key = chain_key
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")

    def close(self) -> None:
        self.db.close()

    # -- settings -------------------------------------------------------------------------
    def setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str, **event: Any) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))
            self._append({"kind": "setting", "detail": f"{key}={value}", **event})

    # -- the event log --------------------------------------------------------------------
    def log(self, kind: str, **fields: Any) -> int:
        with self.transaction():
            return self._append({"kind": kind, **fields})

    def _append(self, row: dict[str, Any]) -> int:
        row = {"wall": self._wall(), **row}
        last = self.db.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        prev = bytes(last[0]) if last else GENESIS
        values = [row.get(k) for k in EVENT_FIELDS]
        cur = self.db.execute(
            f"INSERT INTO events ({', '.join(EVENT_FIELDS)}, prev, hash) "
            f"VALUES ({', '.join('?' * len(EVENT_FIELDS))}, ?, ?)",
            (*values, prev, row_hash(prev, row, self._key)),
        )
        return cur.lastrowid

    def events(
        self,
        limit: int = 100,
        *,
        since: float | None = None,
        person: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, filtered (L-35)."""
        where, args = ["1"], []
        for clause, value in (("wall >= ?", since), ("person = ?", person), ("kind = ?", kind)):
            if value is not None:
                where.append(clause)
                args.append(value)
        columns = ", ".join(EVENT_FIELDS)
        cur = self.db.execute(
            f"SELECT seq, {columns} FROM events WHERE {' AND '.join(where)} "
            "ORDER BY seq DESC LIMIT ?",
            (*args, limit),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def verify_chain(self) -> tuple[int, int | None, str]:
        """(rows checked, first bad seq or None, why): edits, deletions, reorderings show."""
        prev, expected_seq, checked = GENESIS, 1, 0
        columns = ", ".join(EVENT_FIELDS)
        for seq, *values, stored_prev, stored in self.db.execute(
            f"SELECT seq, {columns}, prev, hash FROM events ORDER BY seq"
        ):
            row = dict(zip(EVENT_FIELDS, values))
            if seq != expected_seq:
                return checked, seq, f"row {expected_seq} is missing"
            if bytes(stored_prev) != prev or bytes(stored) != row_hash(prev, row, self._key):
                return checked, seq, f"row {seq} was changed or moved"
            prev, expected_seq, checked = bytes(stored), seq + 1, checked + 1
        return checked, None, "intact"

    def factory_reset(self, **event: Any) -> None:
        """L-30: people, codes, templates, visitors and settings erased; the log too, but
        for one "factory-reset" entry that starts a new chain. The one path around the
        log's append-only trigger, lifted and put back within the same transaction."""
        with self.transaction():
            for table in ("people", "visitors", "settings"):  # people cascade to the rest
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("DROP TRIGGER events_append_only_d")
            self.db.execute("DELETE FROM events")
            self.db.execute(APPEND_ONLY_DELETE)
            self._append({"kind": "factory-reset", **event})

    def transaction(self) -> "_Tx":
        """A write, all or nothing; append events inside it with append()."""
        return _Tx(self.db)

    def append(self, kind: str, **fields: Any) -> int:
        """Add an event within a transaction() the caller holds."""
        return self._append({"kind": kind, **fields})


class _Tx:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error: a write is all or nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
