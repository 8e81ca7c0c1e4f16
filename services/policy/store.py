"""The lock's store: SQLite in WAL mode with synchronous writes, migrated by version.

Policy is its only writer. The event log is append-only (triggers refuse UPDATE and
DELETE) and hash-chained: each row's hash covers the previous hash and the row.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

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
    CREATE TRIGGER events_append_only_d BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
    """,
)

EVENT_FIELDS = ("wall", "kind", "person", "method", "source", "reason", "cause", "detail")
GENESIS = bytes(32)


def row_hash(prev: bytes, row: dict[str, Any]) -> bytes:
    values = [row.get(k) for k in EVENT_FIELDS]
    values[0] = float(values[0])  # SQLite gives REAL back: hash what a re-check will read
    canonical = json.dumps(values, separators=(",", ":"))
    return hashlib.sha256(prev + canonical.encode()).digest()


class Store:
    def __init__(self, path: Path, *, wall=time.time) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._wall = wall
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
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))
            self._append({"kind": "setting", "detail": f"{key}={value}", **event})

    # -- people and codes -----------------------------------------------------------------
    def count_people(self, role: str | None = None) -> int:
        if role is None:
            return self.db.execute("SELECT count(*) FROM people").fetchone()[0]
        return self.db.execute("SELECT count(*) FROM people WHERE role=?", (role,)).fetchone()[0]

    def add_person_with_code(self, role: str, digest: bytes, length: int, **event: Any) -> str:
        """Give the lowest free number (L-2) to a new person holding one passcode."""
        with self._transaction():
            taken = {r[0] for r in self.db.execute("SELECT number FROM people")}
            number = next(f"{n:03d}" for n in range(1, 1000) if f"{n:03d}" not in taken)
            self.db.execute("INSERT INTO people VALUES (?, ?, '', ?)", (number, role, self._wall()))
            self.db.execute("INSERT INTO passcodes VALUES (?, ?, ?)", (number, digest, length))
            self._append({"kind": "person-added", "person": number, "detail": role, **event})
        return number

    def passcodes(self) -> dict[bytes, str]:
        return {bytes(d): p for d, p in self.db.execute("SELECT digest, person FROM passcodes")}

    def code_lengths(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT DISTINCT length FROM passcodes")}

    # -- the event log --------------------------------------------------------------------
    def log(self, kind: str, **fields: Any) -> int:
        with self._transaction():
            return self._append({"kind": kind, **fields})

    def _append(self, row: dict[str, Any]) -> int:
        row = {"wall": self._wall(), **row}
        last = self.db.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        prev = bytes(last[0]) if last else GENESIS
        values = [row.get(k) for k in EVENT_FIELDS]
        cur = self.db.execute(
            f"INSERT INTO events ({', '.join(EVENT_FIELDS)}, prev, hash) "
            f"VALUES ({', '.join('?' * len(EVENT_FIELDS))}, ?, ?)",
            (*values, prev, row_hash(prev, row)),
        )
        return cur.lastrowid

    def events(self, limit: int = 100) -> list[dict[str, Any]]:
        columns = ", ".join(EVENT_FIELDS)
        cur = self.db.execute(
            f"SELECT seq, {columns} FROM events ORDER BY seq DESC LIMIT ?", (limit,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def _transaction(self) -> "_Tx":
        return _Tx(self.db)


class _Tx:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error: a write is all or nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
