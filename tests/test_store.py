"""The store on a real SQLite file: migrations, numbering (L-2), the append-only hash-chained
event log (L-35), and the device secret (L-10)."""

from __future__ import annotations

import itertools
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from services.policy.secrets import SECRET_BYTES, device_secret
from services.policy.store import EVENT_FIELDS, GENESIS, MIGRATIONS, Store, row_hash


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lock.db"


@pytest.fixture
def store(path: Path):
    clock = itertools.count(1_700_000_000.25, 1.5)  # a float clock, one step per write
    store = Store(path, wall=lambda: next(clock))
    yield store
    store.close()


def digest(n: int) -> bytes:
    return n.to_bytes(32, "big")


def stored_events(path: Path) -> list[tuple]:
    """Every event row as stored, in seq order, read with a separate connection."""
    db = sqlite3.connect(path)
    try:
        return db.execute(
            f"SELECT seq, {', '.join(EVENT_FIELDS)}, prev, hash FROM events ORDER BY seq").fetchall()
    finally:
        db.close()


def verify_chain(path: Path) -> int:
    """Recompute the chain from GENESIS; return the number of rows checked."""
    prev = GENESIS
    rows = stored_events(path)
    for seq, *values, stored_prev, stored_hash in rows:
        row = dict(zip(EVENT_FIELDS, values))
        assert bytes(stored_prev) == prev, f"event {seq}: prev does not chain"
        assert bytes(stored_hash) == row_hash(prev, row), f"event {seq}: hash mismatch"
        prev = bytes(stored_hash)
    return len(rows)


# -- migrations ---------------------------------------------------------------------------
def test_migrations_set_user_version(store: Store) -> None:
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_new_store_is_empty(store: Store) -> None:
    assert store.count_people() == 0
    assert store.passcodes() == {}
    assert store.code_lengths() == set()
    assert store.events() == []
    assert store.setting("direction") is None


def test_store_runs_in_wal_mode(store: Store) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopening_does_not_migrate_again(path: Path) -> None:
    Store(path).close()
    again = Store(path)  # a second CREATE TABLE would raise
    try:
        assert again.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        again.close()


# -- settings -----------------------------------------------------------------------------
def test_setting_is_kept_and_logged(store: Store, path: Path) -> None:
    store.set_setting("direction", "right", source="keypad", cause="keypad-1")
    store.set_setting("direction", "left", source="keypad")
    assert store.setting("direction") == "left"
    kinds = [(e["kind"], e["detail"]) for e in store.events()]
    assert kinds == [("setting", "direction=left"), ("setting", "direction=right")]
    assert verify_chain(path) == 2


# -- L-2 numbering ------------------------------------------------------------------------
def test_l2_people_are_numbered_from_001(store: Store) -> None:
    numbers = [store.add_person_with_code("admin" if n == 1 else "user", digest(n), 6)
               for n in range(1, 4)]
    assert numbers == ["001", "002", "003"]
    assert store.count_people() == 3
    assert store.count_people("admin") == 1
    assert store.count_people("user") == 2


def test_l2_new_person_gets_the_lowest_free_number(store: Store) -> None:
    for n in range(1, 5):
        store.add_person_with_code("user", digest(n), 6)
    store.db.execute("DELETE FROM people WHERE number IN ('002', '004')")
    assert store.add_person_with_code("user", digest(10), 6) == "002"
    assert store.add_person_with_code("user", digest(11), 6) == "004"
    assert store.add_person_with_code("user", digest(12), 6) == "005"


def test_l2_deleting_a_person_deletes_their_codes(store: Store) -> None:
    store.add_person_with_code("admin", digest(1), 6)
    store.add_person_with_code("user", digest(2), 8)
    store.db.execute("DELETE FROM people WHERE number='002'")
    assert store.passcodes() == {digest(1): "001"}
    assert store.code_lengths() == {6}


def test_person_is_added_with_their_code_and_logged(store: Store) -> None:
    number = store.add_person_with_code("admin", digest(1), 6, source="keypad", cause="k-3")
    store.add_person_with_code("user", digest(2), 8)
    assert store.passcodes() == {digest(1): number, digest(2): "002"}
    assert store.code_lengths() == {6, 8}
    newest_first = store.events()
    assert [(e["kind"], e["person"], e["detail"]) for e in newest_first] == [
        ("person-added", "002", "user"), ("person-added", "001", "admin")]
    assert newest_first[1]["cause"] == "k-3"


def test_a_code_already_held_is_refused_and_nothing_is_written(store: Store, path: Path) -> None:
    store.add_person_with_code("admin", digest(1), 6)
    with pytest.raises(sqlite3.IntegrityError):
        store.add_person_with_code("user", digest(1), 6)
    assert store.count_people() == 1  # the transaction rolled back: no person, no event
    assert verify_chain(path) == 1


def test_role_must_be_admin_or_user(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.add_person_with_code("owner", digest(1), 6)
    assert store.count_people() == 0 and store.events() == []


# -- the event log ------------------------------------------------------------------------
def test_l35_events_are_hash_chained_from_genesis(store: Store, path: Path) -> None:
    store.set_setting("direction", "right")
    store.add_person_with_code("admin", digest(1), 6, source="keypad")
    store.log("unlock", person="001", method="passcode", source="keypad", cause="keypad-9")
    store.log("refused", method="passcode", reason="wrong-passcode")
    store.log("alarm", reason="jammed", detail="été ☃")  # not ASCII
    assert verify_chain(path) == 5
    first = stored_events(path)[0]
    assert bytes(first[-2]) == GENESIS


def test_l35_log_returns_increasing_sequence_numbers(store: Store) -> None:
    seqs = [store.log("refused", reason=str(n)) for n in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert [e["seq"] for e in store.events()] == seqs[::-1]  # newest first
    assert [e["seq"] for e in store.events(limit=2)] == seqs[:-3:-1]


def test_l35_a_changed_row_breaks_the_chain(store: Store, path: Path) -> None:
    store.log("unlock", person="001", method="passcode")
    store.log("refused", reason="wrong-passcode")
    prev = GENESIS
    for seq, *values, stored_prev, stored_hash in stored_events(path):
        row = dict(zip(EVENT_FIELDS, values))
        if seq == 1:
            row["person"] = "002"  # what a tampered row would hash to
            assert row_hash(prev, row) != bytes(stored_hash)
        prev = bytes(stored_hash)


@pytest.mark.parametrize("sql", [
    "UPDATE events SET person='002' WHERE seq=1",
    "UPDATE events SET hash=x'00'",
    "DELETE FROM events WHERE seq=1",
    "DELETE FROM events",
])
def test_l35_event_log_is_append_only(store: Store, path: Path, sql: str) -> None:
    store.log("unlock", person="001", method="passcode")
    store.log("refused", reason="wrong-passcode")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute(sql)
    other = sqlite3.connect(path)  # the triggers live in the file, not in the connection
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            other.execute(sql)
    finally:
        other.close()
    assert verify_chain(path) == 2


def test_reopening_keeps_people_settings_and_events(path: Path) -> None:
    first = Store(path)
    first.set_setting("direction", "left")
    number = first.add_person_with_code("admin", digest(1), 6)
    first.log("unlock", person=number, method="passcode")
    events = first.events()
    first.close()

    again = Store(path)
    try:
        assert again.setting("direction") == "left"
        assert again.count_people("admin") == 1
        assert again.passcodes() == {digest(1): "001"}
        assert again.code_lengths() == {6}
        assert again.events() == events
        again.log("refused", reason="wrong-passcode")  # the chain goes on from the last row
        assert again.add_person_with_code("user", digest(2), 7) == "002"
    finally:
        again.close()
    assert verify_chain(path) == 5


# -- the device secret (L-10) -------------------------------------------------------------
def test_l10_device_secret_is_made_once_0600_and_32_bytes(tmp_path: Path) -> None:
    path = tmp_path / "device.secret"
    secret = device_secret(path)
    assert len(secret) == SECRET_BYTES == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == secret
    assert device_secret(path) == secret  # read back, not made again


def test_l10_device_secrets_differ_between_locks(tmp_path: Path) -> None:
    assert device_secret(tmp_path / "a") != device_secret(tmp_path / "b")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610])
def test_l10_device_secret_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "device.secret"
    device_secret(path)
    os.chmod(path, mode)
    with pytest.raises(PermissionError):
        device_secret(path)


def test_l10_device_secret_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(ValueError):
        device_secret(path)
