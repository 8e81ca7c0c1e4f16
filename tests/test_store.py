"""The store on a real SQLite file: migrations, numbering (L-2), the append-only hash-chained
event log (L-35), and the device secret (L-10)."""

from __future__ import annotations

import itertools
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from proto.config import DEFAULTS
from services.policy import chain
from services.policy.people import People, Refusal
from services.policy.secrets import SECRET_BYTES, device_secret
from services.policy.store import (
    EVENT_FIELDS,
    GENESIS,
    HEAD_MIGRATION,
    MIGRATIONS,
    Store,
    row_hash,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lock.db"


@pytest.fixture
def store(path: Path):
    clock = itertools.count(1_700_000_000.25, 1.5)  # a float clock, one step per write
    store = Store(path, wall=lambda: next(clock))
    yield store
    store.close()


@pytest.fixture
def people(store: Store) -> People:
    return People(store, DEFAULTS["capacity"], wall=lambda: 1_700_000_000.0)


def owners(people: People) -> dict[bytes, str]:
    return {d: ref.owner for d, ref in people.codes().items()}


def digest(n: int) -> bytes:
    return n.to_bytes(32, "big")


def stored_events(path: Path) -> list[tuple]:
    """Every event row as stored, in seq order, read with a separate connection."""
    db = sqlite3.connect(path)
    try:
        return db.execute(
            f"SELECT seq, {', '.join(EVENT_FIELDS)}, prev, hash FROM events ORDER BY seq"
        ).fetchall()
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


def test_new_store_is_empty(store: Store, people: People) -> None:
    assert people.count() == 0
    assert people.codes() == {}
    assert people.lengths() == set()
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
def test_l2_people_are_numbered_from_001(store: Store, people: People) -> None:
    numbers = [people.add("admin" if n == 1 else "user", "", digest(n), 6) for n in range(1, 4)]
    assert numbers == ["001", "002", "003"]
    assert people.count() == 3
    assert people.count("admin") == 1
    assert people.count("user") == 2


def test_l2_new_person_gets_the_lowest_free_number(store: Store, people: People) -> None:
    for n in range(1, 5):
        people.add("user", "", digest(n), 6)
    store.db.execute("DELETE FROM people WHERE number IN ('002', '004')")
    assert people.add("user", "", digest(10), 6) == "002"
    assert people.add("user", "", digest(11), 6) == "004"
    assert people.add("user", "", digest(12), 6) == "005"


def test_l2_deleting_a_person_deletes_their_codes(store: Store, people: People) -> None:
    people.add("admin", "", digest(1), 6)
    people.add("user", "", digest(2), 8)
    store.db.execute("DELETE FROM people WHERE number='002'")
    assert owners(people) == {digest(1): "001"}
    assert people.lengths() == {6}


def test_person_is_added_with_their_code_and_logged(store: Store, people: People) -> None:
    number = people.add("admin", "", digest(1), 6, source="keypad", cause="k-3")
    people.add("user", "", digest(2), 8)
    assert owners(people) == {digest(1): number, digest(2): "002"}
    assert people.lengths() == {6, 8}
    newest_first = store.events()
    assert [(e["kind"], e["person"], e["detail"]) for e in newest_first] == [
        ("person-added", "002", "user"),
        ("person-added", "001", "admin"),
    ]
    assert newest_first[1]["cause"] == "k-3"


def test_a_code_already_held_is_refused_and_nothing_is_written(
    store: Store, people: People, path: Path
) -> None:
    people.add("admin", "", digest(1), 6)
    with pytest.raises(Refusal, match="already in use"):
        people.add("user", "", digest(1), 6)
    assert people.count() == 1  # the transaction rolled back: no person, no event
    assert verify_chain(path) == 1


def test_role_must_be_admin_or_user(store: Store, people: People) -> None:
    with pytest.raises(Refusal):
        people.add("owner", "", digest(1), 6)
    assert people.count() == 0 and store.events() == []


# -- the event log ------------------------------------------------------------------------
def test_l35_events_are_hash_chained_from_genesis(store: Store, people: People, path: Path) -> None:
    store.set_setting("direction", "right")
    people.add("admin", "", digest(1), 6, source="keypad")
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


def test_l35_a_changed_row_breaks_the_chain(path: Path) -> None:
    """A row edited behind policy's back (plain SQL, the append-only guard dropped) is the
    first bad row verify_chain names; the rows before it still check."""
    store = Store(path, chain_key=KEY)
    store.log("unlock", person="001", method="passcode")
    store.log("unlock", person="001", method="passcode")
    store.log("refused", reason="wrong-passcode")
    assert store.verify_chain() == (3, None, "intact")
    store.close()
    copy = tampered_copy(path, "UPDATE events SET person='002' WHERE seq=2")
    tampered = Store(copy, chain_key=KEY)
    try:
        assert tampered.verify_chain() == (1, 2, "row 2 was changed or moved")
    finally:
        tampered.close()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET person='002' WHERE seq=1",
        "UPDATE events SET hash=x'00'",
        "DELETE FROM events WHERE seq=1",
        "DELETE FROM events",
    ],
)
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
    def people_of(store: Store) -> People:
        return People(store, DEFAULTS["capacity"], wall=lambda: 1_700_000_000.0)

    first = Store(path)
    first.set_setting("direction", "left")
    number = people_of(first).add("admin", "", digest(1), 6)
    first.log("unlock", person=number, method="passcode")
    events = first.events()
    first.close()

    again = Store(path)
    try:
        assert again.setting("direction") == "left"
        people = people_of(again)
        assert people.count("admin") == 1
        assert owners(people) == {digest(1): "001"}
        assert people.lengths() == {6}
        assert again.events() == events
        again.log("refused", reason="wrong-passcode")  # the chain goes on from the last row
        assert people.add("user", "", digest(2), 7) == "002"
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


# -- people's rules (L-3, L-6, L-7, L-8, L-9) ----------------------------------------------
def test_l6_the_last_admin_and_the_only_person_cannot_be_deleted(people: People) -> None:
    admin = people.add("admin", "", digest(1), 6)
    with pytest.raises(Refusal, match="only person"):
        people.delete(admin)
    user = people.add("user", "", digest(2), 6)
    with pytest.raises(Refusal, match="last administrator"):
        people.delete(admin)
    with pytest.raises(Refusal) as unknown:
        people.delete("077")
    assert unknown.value.reason == "unknown-person"
    people.delete(user)
    assert people.count() == 1 and digest(2) not in people.codes()


def test_l6_deleting_says_what_was_deleted_in_the_log(store: Store, people: People) -> None:
    people.add("admin", "", digest(1), 6)
    user = people.add("user", "", digest(2), 6)
    people.set_duress(user, digest(3), 6)
    people.delete(user, source="remote")
    newest = store.events(limit=1)[0]
    assert newest["kind"] == "person-deleted" and "2 passcode(s)" in newest["detail"]


def test_l3_a_full_lock_refuses_and_touches_nothing(store: Store) -> None:
    small = People(store, {**DEFAULTS["capacity"], "lock_passcodes": 2}, wall=lambda: 1.0)
    small.add("admin", "", digest(1), 6)
    small.add("user", "", digest(2), 6)
    before = store.events()
    with pytest.raises(Refusal) as full:
        small.add("user", "", digest(3), 6)
    assert full.value.reason == "full"
    assert small.count() == 2 and store.events() == before


def test_l7_l9_validity_and_visitor_codes_are_kept(people: People) -> None:
    number = people.add("admin", "", digest(1), 6)
    people.set_validity(number, 10.0, 20.0, [[0b0111110, 480, 1080]])
    validity = people.validity(number)
    assert validity.start == 10.0 and validity.end == 20.0
    assert validity.slots[0].days == frozenset(range(5))  # Monday to Friday
    people.add_visitor("cleaner", digest(5), 7, None, 1_800_000_000.0, 2)
    assert people.codes()[digest(5)].kind == "visitor"
    with pytest.raises(Refusal) as ended:  # the owner's app and a fleet push, not only the CLI
        people.add_visitor("late", digest(6), 7, None, 1_699_999_999.0, 2)
    assert ended.value.reason == "bad-value" and people.visitor("late") is None
    people.use_visitor("cleaner")
    assert people.visitor("cleaner").uses_left == 1
    with pytest.raises(Refusal):
        people.set_validity(number, 20.0, 10.0, [])


def test_l35_verify_chain_finds_an_edited_a_deleted_and_a_reordered_row(path: Path) -> None:
    store = Store(path, chain_key=b"k" * 32)
    for n in range(5):
        store.log("refused", reason=f"r{n}")
    assert store.verify_chain() == (5, None, "intact")
    store.close()
    for tamper, bad in (
        ("UPDATE events SET reason='x' WHERE seq=3", 3),
        ("DELETE FROM events WHERE seq=2", 2),  # the missing row is named
        (
            "UPDATE events SET seq=105 WHERE seq=5; "  # swap rows 4 and 5
            "UPDATE events SET seq=5 WHERE seq=4; "
            "UPDATE events SET seq=4 WHERE seq=105",
            4,
        ),
    ):
        copy = path.with_name(f"t{bad}.db")
        copy.write_bytes(path.read_bytes())
        db = sqlite3.connect(copy)
        db.executescript(
            "DROP TRIGGER events_append_only_u; DROP TRIGGER events_append_only_d; " + tamper
        )
        db.close()
        tampered = Store(copy, chain_key=b"k" * 32)
        checked, first_bad, why = tampered.verify_chain()
        tampered.close()
        assert first_bad == bad, (tamper, why)


def test_l30_factory_reset_erases_all_and_the_log_keeps_one_entry(tmp_path):
    store = Store(tmp_path / "lock.db", chain_key=b"k" * 32)
    store.db.execute("INSERT INTO people (number, role, created) VALUES ('001', 'admin', 0)")
    store.db.execute("INSERT INTO passcodes (person, digest, length) VALUES ('001', x'01', 6)")
    store.set_setting("direction", "left")
    for _ in range(5):
        store.log("refused", reason="wrong-passcode")
    store.factory_reset(source="keypad")
    for table in ("people", "passcodes", "settings", "visitors", "templates"):
        assert store.db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    assert [e["kind"] for e in store.events(limit=10)] == ["factory-reset"]
    assert store.verify_chain() == (1, None, "intact")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the guard is back
        store.db.execute("DELETE FROM events")
    store.close()


# -- the sealed head (issue 11): a cut at the end shows --------------------------------------
KEY = b"k" * 32


def tampered_copy(path: Path, sql: str) -> Path:
    """A copy of the store edited as someone without the key could: plain SQL."""
    copy = path.with_name(f"copy-{abs(hash(sql))}.db")
    copy.write_bytes(path.read_bytes())
    db = sqlite3.connect(copy)
    db.executescript("DROP TRIGGER events_append_only_u; DROP TRIGGER events_append_only_d; " + sql)
    db.close()
    return copy


def audited(path: Path):
    db = chain.open_readonly(path)
    try:
        return chain.audit(db, KEY)
    finally:
        db.close()


@pytest.fixture
def eight(path: Path) -> Path:
    store = Store(path, chain_key=KEY)
    for n in range(8):
        store.log("refused", reason=f"r{n}")
    store.close()
    return path


@pytest.mark.parametrize(
    "cut, why",
    [
        (1, "the last row is missing"),
        (5, "the last 5 rows are missing"),
        (8, "the last 8 rows are missing"),
    ],
)
def test_l35_rows_cut_from_the_end_of_the_log_are_named(eight: Path, cut: int, why: str) -> None:
    """Without the head, a prefix of a good chain verifies: the old code said "intact"."""
    copy = tampered_copy(eight, f"DELETE FROM events WHERE seq > {8 - cut}")
    found = audited(copy)
    assert not found.intact
    assert found.first_bad == 8 - cut + 1 and found.checked == 8 - cut
    assert found.why.startswith(why), found.why


@pytest.mark.parametrize(
    "sql, why",
    [
        ("DELETE FROM chain_head", "the sealed head of the log is missing"),
        ("UPDATE chain_head SET count = 3", "the sealed head of the log was changed"),
        ("DROP TABLE chain_head", "the log has no sealed head"),
    ],
)
def test_l35_a_removed_or_edited_head_shows(eight: Path, sql: str, why: str) -> None:
    found = audited(tampered_copy(eight, sql))
    assert not found.intact and found.why.startswith(why) and found.first_bad == 9


def test_l35_the_head_is_written_with_each_row_and_audits_intact(eight: Path) -> None:
    found = audited(eight)
    assert (found.checked, found.first_bad, found.why) == (8, None, "intact")
    assert (found.head.epoch, found.head.count) == (0, 8)
    assert found.head.last == bytes(stored_events(eight)[-1][-1])


def test_l35_a_row_rolled_back_with_its_transaction_leaves_the_head_as_it_was(path: Path) -> None:
    store = Store(path, chain_key=KEY)
    store.log("refused", reason="r0")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.append("refused", reason="r1")
            raise RuntimeError("the write fails after the row")
    assert store.head().count == 1 and store.audit().intact
    store.close()


def test_l35_writing_after_a_cut_keeps_the_gap_and_says_so_in_the_log(eight: Path) -> None:
    """Policy's next row follows the sealed head, not the cut rows: the cut never heals,
    and the log itself records what policy found."""
    copy = tampered_copy(eight, "DELETE FROM events WHERE seq > 5")
    store = Store(copy, chain_key=KEY)
    store.log("refused", reason="after")
    newest = store.events(limit=2)
    assert [(e["seq"], e["kind"]) for e in newest] == [(10, "refused"), (9, "audit-tampered")]
    assert newest[1]["detail"] == "rows 6 to 8 were cut from the end of the log"
    assert store.verify_chain() == (5, 6, "rows 6 to 8 are missing")
    store.close()


def test_l35_writing_after_the_head_was_removed_says_so_in_the_log(eight: Path) -> None:
    copy = tampered_copy(eight, "DELETE FROM chain_head")
    store = Store(copy, chain_key=KEY)
    store.log("refused", reason="after")
    tampered = store.events(limit=2)[1]
    assert tampered["kind"] == "audit-tampered"
    assert tampered["detail"] == "the sealed head of the log is missing"
    store.close()


def test_l30_a_factory_reset_starts_a_new_epoch(eight: Path) -> None:
    store = Store(eight, chain_key=KEY)
    store.factory_reset(source="keypad")
    assert (store.head().epoch, store.head().count) == (1, 1)
    assert store.verify_chain() == (1, None, "intact")
    store.close()


def test_l35_a_store_from_before_the_head_is_sealed_once_and_says_from_where(path: Path) -> None:
    old = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[: HEAD_MIGRATION - 1], start=1):
        old.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
    prev = GENESIS
    for n in range(3):  # rows as the older version wrote them
        row = {"wall": 1.0 + n, "kind": "refused", "reason": f"r{n}"}
        digest = row_hash(prev, row, KEY)
        old.execute(
            "INSERT INTO events (wall, kind, reason, prev, hash) VALUES (?, ?, ?, ?, ?)",
            (row["wall"], row["kind"], row["reason"], prev, digest),
        )
        prev = digest
    old.commit()
    old.close()
    store = Store(path, chain_key=KEY)
    assert store.verify_chain() == (4, None, "intact")
    newest = store.events(limit=1)[0]
    assert (
        newest["kind"] == "audit-head-sealed" and newest["detail"] == "rows 1 to 3 were not sealed"
    )
    store.close()
    Store(path, chain_key=KEY).close()  # sealed once: opening again adds nothing
    assert len(stored_events(path)) == 4


def test_l35_the_audit_reads_a_store_without_writing_it(eight: Path) -> None:
    before = eight.read_bytes()
    os.chmod(eight, 0o400)  # a read-only copy: opened read-only, it still audits
    assert audited(eight).intact
    assert eight.read_bytes() == before
