"""What a decision reads of people and settings, kept in memory until it changes (issue 12).

A decision read the administrators' count, the person's validity and four settings from
SQLite each time: a fifth of what it spent outside its write. Policy is the store's only
writer (as Lock.codes, the passcodes' digests kept in memory, already assumes), but
the cache does not rely on each of its write paths remembering to say so: temporary
triggers (this connection's own, nothing is added to lock.db) tell it of every row
inserted, updated or deleted in the watched tables, whichever statement did it, cascades
included. It is also emptied when a transaction is rolled back (it may hold what the
transaction had read of its own changes). Asking SQLite whether another connection had
committed (PRAGMA data_version) before each answer cost half of what the cache saves, for
a writer the lock does not have: a store changed behind policy's back is read afresh
when policy restarts, as the passcodes are.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")

# table: the column whose value names the entries a row's change touches (None: them all).
# settings: per key, so the lockout's state, written with every decision, empties nothing
# else; people: every entry, as a count depends on every row.
WATCHED: dict[str, str | None] = {"people": None, "settings": "key"}


class ReadCache:
    """Answers of reads of the watched tables, by (table, key)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._kept: dict[tuple[str, Hashable], Any] = {}
        self._watching = False

    def watch(self) -> None:
        """Start keeping answers, once the watched tables exist (after the migrations)."""
        self.db.create_function("lockmesh_changed", 2, self._changed)
        for table, column in WATCHED.items():
            for op, row in (("INSERT", "NEW"), ("UPDATE", None), ("DELETE", "OLD")):
                key = f"{row}.{column}" if column and row else "NULL"  # an update: all
                self.db.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS lockmesh_{table}_{op.lower()} "
                    f"AFTER {op} ON main.{table} "
                    f"BEGIN SELECT lockmesh_changed('{table}', {key}); END"
                )
        self._watching = True

    def get(self, table: str, key: Hashable, read: Callable[[], T]) -> T:
        """read()'s answer, as kept since the table (or that key of it) last changed."""
        if not self._watching:
            return read()
        entry = (table, key)
        if entry in self._kept:
            return self._kept[entry]
        value = self._kept[entry] = read()
        return value

    def clear(self) -> None:
        self._kept.clear()

    def _changed(self, table: str, key: str | None) -> None:
        if key is None:
            for entry in [e for e in self._kept if e[0] == table]:
                del self._kept[entry]
        else:
            self._kept.pop((table, key), None)
