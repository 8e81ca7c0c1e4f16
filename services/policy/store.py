"""The lock's store: SQLite in WAL mode with synchronous writes, migrated by version.

Policy is its only writer; people and codes live in people.py on top of this. The event
log is append-only (triggers refuse UPDATE and DELETE), hash-chained, and its end is
sealed in a head kept apart from the rows (chain.py).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

from proto import files
from services.policy.chain import (
    EVENT_FIELDS,
    GENESIS,
    Audit,
    SealedHead,
    audit,
    last_row,
    read_head,
    row_hash,
    seal,
)
from services.policy.readcache import ReadCache

__all__ = ["EVENT_FIELDS", "GENESIS", "MIGRATIONS", "Store", "row_hash"]

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
    # The log's sealed head (chain.py), sealed over the rows an older version wrote.
    """
    CREATE TABLE chain_head (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        epoch INTEGER NOT NULL,
        count INTEGER NOT NULL,
        last BLOB NOT NULL,
        seal BLOB NOT NULL
    );
    INSERT INTO chain_head
        SELECT 1, 0, coalesce(max(seq), 0),
               coalesce((SELECT hash FROM events ORDER BY seq DESC LIMIT 1), zeroblob(32)),
               lockmesh_seal(0, coalesce(max(seq), 0),
                   coalesce((SELECT hash FROM events ORDER BY seq DESC LIMIT 1), zeroblob(32)))
        FROM events;
    """,
    # issue 15: Matter's UserStatus (occupied-enabled/-disabled) and CredentialRule
    """
    ALTER TABLE people ADD COLUMN status TEXT NOT NULL DEFAULT 'enabled'
        CHECK (status IN ('enabled', 'disabled'));
    ALTER TABLE people ADD COLUMN credential_rule TEXT NOT NULL DEFAULT 'single'
        CHECK (credential_rule IN ('single', 'dual', 'tri'));
    """,
)

HEAD_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, 1) if "TABLE chain_head" in m)


class Store:
    def __init__(
        self, path: Path, *, wall: Callable[[], float] = time.time, chain_key: bytes = b""
    ) -> None:
        _private(path)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._wall = wall
        self._began: float | None = None  # the open transaction's start: its rows' time
        self._key = chain_key
        self.db.create_function(
            "lockmesh_seal", 3, lambda e, c, last: seal(self._key, e, c, bytes(last))
        )
        self.cache = ReadCache(self.db)  # people's and settings' reads, kept until changed
        self._migrate()
        self.cache.watch()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        unsealed = last_row(self.db)[0]  # rows an older version wrote, before any head
        if version < HEAD_MIGRATION and unsealed:
            self.log("audit-head-sealed", detail=f"rows 1 to {unsealed} were not sealed")

    def close(self) -> None:
        self.db.close()

    # -- settings -------------------------------------------------------------------------
    def setting(self, key: str) -> str | None:
        return self.cache.get("settings", key, lambda: self._read_setting(key))

    def _read_setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str, **event: Any) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))
            self._append({"kind": "setting", "detail": f"{key}={value}", **event})

    def put_setting(self, key: str, value: str) -> None:
        """Keep a value with no row of its own, within a transaction() the caller holds:
        state written beside the row that explains it (the lockout's, the pairing's)."""
        self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    # -- the event log --------------------------------------------------------------------
    def log(self, kind: str, **fields: Any) -> int:
        with self.transaction():
            return self._append({"kind": kind, **fields})

    def _append(self, row: dict[str, Any]) -> int:
        head = self._head_for_append()
        head = self._insert(head, {"wall": self._row_wall(), **row})
        self._write_head(head)
        return head.count

    def _insert(self, head: SealedHead, row: dict[str, Any]) -> SealedHead:
        """Add row after head; the head that follows it."""
        seq, digest = head.count + 1, row_hash(head.last, row, self._key)
        self.db.execute(
            f"INSERT INTO events (seq, {', '.join(EVENT_FIELDS)}, prev, hash) "
            f"VALUES (?, {', '.join('?' * len(EVENT_FIELDS))}, ?, ?)",
            (seq, *[row.get(k) for k in EVENT_FIELDS], head.last, digest),
        )
        return SealedHead(head.epoch, seq, digest)

    def _head_for_append(self) -> SealedHead:
        """Where the next row goes: after the sealed head. A head that does not match the
        rows was tampered with: the log then says so itself, in a row of its own, and rows
        cut from its end stay missing (new rows follow the head and leave the gap)."""
        head, problem = read_head(self.db, self._key)
        count, last = last_row(self.db)
        if head is not None and (head.count, head.last) == (count, last):
            return head
        if head is not None and head.count > count:
            problem = f"rows {count + 1} to {head.count} were cut from the end of the log"
        elif head is not None:
            problem = f"the sealed head named row {head.count} but the log ends at row {count}"
            head = SealedHead(head.epoch, count, last)
        else:
            head = SealedHead(0, count, last)
        evidence = {"wall": self._row_wall(), "kind": "audit-tampered", "detail": problem}
        return self._insert(head, evidence)

    def _write_head(self, head: SealedHead) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO chain_head (one, epoch, count, last, seal) "
            "VALUES (1, ?, ?, ?, ?)",
            (head.epoch, head.count, head.last, seal(self._key, *_fields(head))),
        )

    def next_seq(self) -> tuple[int, int]:
        """(epoch, seq) of the next row to be written, as far as the head tells."""
        head = self.head()
        if head is None:  # damaged: the next row says so first; this is a fair guess
            return 0, last_row(self.db)[0] + 1
        return head.epoch, head.count + 1

    def head(self) -> SealedHead | None:
        """The sealed head as stored (None when missing or its seal fails)."""
        return read_head(self.db, self._key)[0]

    def events(
        self,
        limit: int = 100,
        *,
        since: float | None = None,
        person: str | None = None,
        kind: str | None = None,
        before: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, filtered (L-35); before: only rows older than that seq, the page
        after one that ended there. seq is the rowid, so the scan starts at before and walks
        back along the primary key, however long the log (issue 13)."""
        where, args = ["1"], []
        filters = (
            ("seq < ?", before),
            ("wall >= ?", since),
            ("person = ?", person),
            ("kind = ?", kind),
        )
        for clause, value in filters:
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
        """(rows checked, first bad seq or None, why): edits, deletions, reorderings and
        rows cut from the end show."""
        found = self.audit()
        return found.checked, found.first_bad, found.why

    def audit(self) -> Audit:
        return audit(self.db, self._key)

    def factory_reset(self, **event: Any) -> None:
        """L-30: people, codes, templates, visitors and settings erased; the log too, but
        for one "factory-reset" entry that starts a new chain. The one path around the
        log's append-only trigger, lifted and put back within the same transaction."""
        with self.transaction():
            for table in ("people", "visitors", "settings"):  # people cascade to the rest
                self.db.execute(f"DELETE FROM {table}")
            epoch = (self.head() or SealedHead(0, 0, GENESIS)).epoch
            self.db.execute("DROP TRIGGER events_append_only_d")
            self.db.execute("DELETE FROM events")
            self.db.execute(APPEND_ONLY_DELETE)
            self._write_head(SealedHead(epoch + 1, 0, GENESIS))  # a newer epoch: witnesses
            self._append({"kind": "factory-reset", **event})  # see a reset, not a rollback

    def spent_reset_gesture(self) -> str | None:
        """The gesture (its Button event's id) the last factory reset was made with."""
        rows = self.events(1, kind="factory-reset")
        return rows[0]["detail"] if rows else None

    def transaction(self) -> "_Tx":
        """A write, all or nothing; append events inside it with append(). Its rows bear
        the time it began: a decision's row says when it was decided, not how long the
        write took to reach it (`bench policy` splits there)."""
        return _Tx(self)

    def _row_wall(self) -> float:
        return self._wall() if self._began is None else self._began

    def append(self, kind: str, **fields: Any) -> int:
        """Add an event within a transaction() the caller holds."""
        return self._append({"kind": kind, **fields})


def _fields(head: SealedHead) -> tuple[int, int, bytes]:
    return head.epoch, head.count, head.last


def _private(path: Path) -> None:
    """lock.db and its -wal and -shm (SQLite gives them the database's mode) are 0600."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, files.PRIVATE_FILE))
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        files.tighten(path.with_name(name))


class _Tx:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error: a write is all or nothing. What
    was read inside it may be what it wrote: the cache forgets it unless it committed."""

    def __init__(self, store: Store) -> None:
        self.store, self.db, self.cache = store, store.db, store.cache

    def __enter__(self) -> None:
        began = self.store._wall()
        self.db.execute("BEGIN IMMEDIATE")
        self.store._began = began

    def __exit__(self, kind: Any, *_: Any) -> None:
        committed = False
        try:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")
            committed = kind is None
        finally:
            self.store._began = None
            if not committed:
                self.cache.clear()
