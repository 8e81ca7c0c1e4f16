"""`lockmesh audit verify` with the lock stopped, on the database itself, and on a copy
(issue 11, item 6, L-35): edits, moves, deletions and cuts at the end are named; a store put
back from an older copy is reported as rolled back whenever a witness saw a newer head;
every command answers a missing lock with one line."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from ops import audit, cli, mesh
from proto import witness
from proto.bus import Bus
from proto.control import StatusReply, StatusRequest
from proto.layout import Layout
from services.policy.secrets import device_secret, subkey
from services.policy.store import Store
from tests.meshkit import LEAN, eventually, running

ROWS = 12


@pytest.fixture(autouse=True)
def owner_state(tmp_path: Path, monkeypatch) -> Path:
    """The owner's witnesses of this test only."""
    state = tmp_path / "owner-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """A stopped lock's data folder whose log has ROWS rows, written as policy writes them."""
    layout = Layout.at(tmp_path / "data")
    mesh.prepare(layout)
    log(layout, ROWS)
    return layout


def log(layout: Layout, rows: int, kind: str = "refused") -> None:
    secret = device_secret(layout.data / "device.secret")
    store = Store(layout.data / "lock.db", chain_key=subkey(secret, "audit-chain"))
    for n in range(rows):
        store.log(kind, reason=f"r{n}")
    store.close()


def lockmesh(*args: str, capsys) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def verify(layout: Layout, capsys, *extra: str) -> tuple[int, dict]:
    code, out, err = lockmesh(
        "audit", "verify", "--json", "--data", str(layout.data), *extra, capsys=capsys
    )
    assert not err, err
    return code, json.loads(out)


def tamper(db_path: Path, sql: str) -> None:
    """Plain SQL, as anyone who can write the file can: the triggers are no obstacle."""
    db = sqlite3.connect(db_path)
    db.executescript(
        "DROP TRIGGER IF EXISTS events_append_only_u; "
        "DROP TRIGGER IF EXISTS events_append_only_d; " + sql
    )
    db.close()


# -- the chain and its head, read from the database with the lock stopped --------------------
def test_l35_a_clean_log_is_intact_with_the_lock_stopped(layout, capsys):
    assert not mesh.running(layout)
    code, out, err = lockmesh("audit", "verify", "--data", str(layout.data), capsys=capsys)
    assert (code, err) == (0, "")
    assert out == f"audit: intact ({ROWS} events checked)\n"


@pytest.mark.parametrize(
    "sql, first_bad, why",
    [
        ("UPDATE events SET reason='x' WHERE seq=4", 4, "row 4 was changed or moved"),
        (
            "UPDATE events SET seq=105 WHERE seq=7; UPDATE events SET seq=7 WHERE seq=6; "
            "UPDATE events SET seq=6 WHERE seq=105",
            6,
            "row 6 was changed or moved",
        ),
        ("DELETE FROM events WHERE seq=5", 5, "row 5 is missing"),
        ("DELETE FROM events WHERE seq IN (5, 6, 7)", 5, "rows 5 to 7 are missing"),
        (f"DELETE FROM events WHERE seq={ROWS}", ROWS, "the last row is missing"),
        (f"DELETE FROM events WHERE seq>{ROWS - 5}", ROWS - 4, "the last 5 rows are missing"),
        ("DELETE FROM events", 1, f"the last {ROWS} rows are missing"),
        ("DELETE FROM chain_head", ROWS + 1, "the sealed head of the log is missing"),
    ],
)
def test_l35_audit_names_the_row_of_an_edited_moved_deleted_or_cut_log(
    layout, capsys, sql, first_bad, why
):
    tamper(layout.data / "lock.db", sql)
    code, report = verify(layout, capsys)
    assert code == 1 and not report["intact"]
    assert report["first_bad"] == first_bad
    assert report["why"].startswith(why), report["why"]


def test_l35_audit_reads_a_copy_taken_elsewhere(layout, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("lock.db", "device.secret"):
        shutil.copy2(layout.data / name, elsewhere / name)
    shutil.rmtree(layout.data)  # nothing of the lock is left but the copy
    code, out, _ = lockmesh(
        "audit", "verify", "--db", str(elsewhere / "lock.db"),
        "--secret", str(elsewhere / "device.secret"), capsys=capsys,
    )  # fmt: skip
    assert code == 0 and out == f"audit: intact ({ROWS} events checked)\n"
    tamper(elsewhere / "lock.db", "DELETE FROM events WHERE seq > 10")
    code, out, _ = lockmesh(
        "audit", "verify", "--db", str(elsewhere / "lock.db"),
        "--secret", str(elsewhere / "device.secret"), capsys=capsys,
    )  # fmt: skip
    assert code == 1 and out.startswith("audit: the last 2 rows are missing")


def test_l35_the_wrong_secret_finds_every_row_changed(layout, tmp_path, capsys):
    other = tmp_path / "other.secret"
    device_secret(other)
    code, report = verify(
        layout, capsys, "--db", str(layout.data / "lock.db"), "--secret", str(other)
    )
    assert code == 1 and report["first_bad"] == 1


# -- rollback: the witnesses outside the store -----------------------------------------------
def test_l35_a_store_put_back_from_an_older_copy_is_reported_rolled_back(layout, tmp_path, capsys):
    """The old audit said "intact" on an older copy: a prefix of a good chain is good."""
    older = tmp_path / "older.db"
    shutil.copy2(layout.data / "lock.db", older)
    log(layout, 3, kind="person-deleted")
    code, report = verify(layout, capsys)  # the owner's audit witnesses row ROWS + 3
    assert code == 0 and report["head"]["count"] == ROWS + 3
    shutil.copy2(older, layout.data / "lock.db")
    code, report = verify(layout, capsys)
    assert code == 1 and not report["intact"]
    assert report["why"] == "intact"  # the copy is a good chain in itself...
    assert report["rolled_back"] == [  # ...but older than what a witness saw
        f"the store ends at row {ROWS} but a witness saw row {ROWS + 3} ({audit.OWNER})"
    ]


def test_l35_a_store_put_back_and_written_past_the_old_head_is_still_caught(
    layout, tmp_path, capsys
):
    older = tmp_path / "older.db"
    shutil.copy2(layout.data / "lock.db", older)
    log(layout, 2, kind="person-deleted")
    assert verify(layout, capsys)[0] == 0
    shutil.copy2(older, layout.data / "lock.db")
    log(layout, 5)  # the lock goes on writing: its head passes the witness's
    code, report = verify(layout, capsys)
    assert code == 1
    assert report["rolled_back"] == [
        f"row {ROWS + 2} is not the row {audit.OWNER} saw: the store was put back to an "
        "older copy and written again"
    ]


def test_l35_the_watchdogs_witness_alone_catches_a_rollback(layout, tmp_path, capsys, monkeypatch):
    older = tmp_path / "older.db"
    shutil.copy2(layout.data / "lock.db", older)
    log(layout, 4)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "another-owner"))
    head = verify(layout, capsys)[1]["head"]
    witness.write(layout.witness_file, witness.Witness(witness.Head.from_body(head)))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "a-third-owner"))  # no owner witness
    shutil.copy2(older, layout.data / "lock.db")
    code, report = verify(layout, capsys)
    assert code == 1
    assert report["rolled_back"] == [
        f"the store ends at row {ROWS} but a witness saw row {ROWS + 4} (the watchdog)"
    ]


def test_l30_a_factory_reset_is_not_a_rollback(layout, capsys):
    assert verify(layout, capsys)[0] == 0
    secret = device_secret(layout.data / "device.secret")
    store = Store(layout.data / "lock.db", chain_key=subkey(secret, "audit-chain"))
    store.factory_reset(source="keypad")
    store.close()
    code, report = verify(layout, capsys)
    assert code == 0 and report["head"]["epoch"] == 1 and report["checked"] == 1
    assert report["notes"] == [f"the lock was factory reset since {audit.OWNER} (epoch 1)"]


def test_a_device_secret_replaced_under_the_owner_is_reported_once(layout, capsys):
    """Root on the board can make a new secret and re-sign a store: a lock no witness has
    seen. The owner's CLI remembers which lock each data folder held."""
    assert verify(layout, capsys)[0] == 0
    (layout.data / "device.secret").unlink()
    (layout.data / "lock.db").unlink()
    log(layout, 3)  # a new secret, a new store, re-signed
    code, report = verify(layout, capsys)
    assert code == 1 and report["why"] == "intact" and report["rolled_back"] == []
    assert report["notes"][0].startswith(
        f"the device secret changed since your last audit of {layout.data}"
    )
    assert verify(layout, capsys) == (0, {**report, "intact": True, "notes": []})


def test_witness_keeps_the_newest_head_and_a_regression_it_saw(tmp_path):
    heads = [witness.Head("lock", 0, n, f"{n:02x}") for n in (5, 9, 7, 12)]
    path = tmp_path / "w" / "head.json"
    notes = [witness.observe(path, head)[1] for head in heads]
    kept = witness.read(path)
    assert notes == [None, None, "the store ends at row 7 but a witness saw row 9", None]
    assert kept.head.count == 12  # the newest head...
    assert kept.rolled_back.startswith("the store ends at row 7")  # ...and, for good, the fall


# -- one line, never a traceback ---------------------------------------------------------------
VERBS = [
    ["down"],
    ["status"],
    ["tap", "--count", "1", "--timeout", "1"],
    ["sim", "press", "ok"],
    ["sim", "clock", "lost"],
    ["people"],
    ["codes"],
    ["settings"],
    ["lockout", "release"],
    ["unlock"],
    ["lock"],
    ["home"],
    ["events"],
    ["audit", "verify"],
    ["pair", "--serial", "x", "--code-stdin"],
    ["enrol", "finger", "001"],
    ["bench", "policy", "--count", "1"],
    ["bench", "face", "--count", "1"],
]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v[:2]))
def test_every_command_answers_a_missing_data_folder_with_one_line(tmp_path, capsys, verb):
    missing = tmp_path / "nowhere"
    code, out, err = lockmesh(*verb, "--data", str(missing), capsys=capsys)
    assert code != 0 and out == ""
    assert err == f"lockmesh: no lock at {missing}: no such folder (start one with `lockmesh up`)\n"
    assert not missing.exists()


# bench face measures the models on the photos and asks no lock: without keys it just runs
# (120 s and more on a loaded machine), so only the missing folder is asked of it
TO_A_LOCK = [v for v in VERBS if v[:2] != ["bench", "face"]]


@pytest.mark.parametrize("verb", TO_A_LOCK, ids=lambda v: " ".join(v[:2]))
def test_every_command_answers_a_lock_without_keys_in_one_line(tmp_path, capsys, verb):
    data = tmp_path / ("deep" * 25)  # deep, as pytest's folders: the short run folder too
    data.mkdir()
    code, out, err = lockmesh(*verb, "--data", str(data), capsys=capsys)
    assert "Traceback" not in err and len(err.splitlines()) <= 1, err
    mesh.clean_run_dir(Layout.at(data))


# -- the mesh: the head in policy's status, witnessed by the watchdog ---------------------------
@pytest.mark.slow
def test_l35_a_rolled_back_store_is_reported_by_the_watchdog_and_the_owner(tmp_path, capsys):
    """The issue's attack: put back an older lock.db and a person the owner had deleted
    opens the door again. Nothing prevents the copy on the board; both witnesses name it."""
    with running(tmp_path / "data", without=LEAN) as lock:
        lock.cli("people", "add", "Bob", "--code-stdin", input="135792\n")
        lock.down()
        older = tmp_path / "older.db"
        shutil.copy2(lock.layout.data / "lock.db", older)  # Bob still in it
        lock.up()
        lock.cli("people", "delete", "002")
        with Bus(lock.layout, "cli") as bus:
            head = policy_head(bus)
        assert verify(lock.layout, capsys)[0] == 0  # the owner's witness
        eventually(lambda: witnessed(lock.layout) == head)  # the watchdog's
        lock.down()
        shutil.copy2(older, lock.layout.data / "lock.db")
        for name in ("lock.db-wal", "lock.db-shm"):
            (lock.layout.data / name).unlink(missing_ok=True)
        code, report = verify(lock.layout, capsys)  # the lock stopped
        assert code == 1 and report["why"] == "intact"
        assert len(report["rolled_back"]) == 2, report
        assert all(p.startswith("the store ends at row") for p in report["rolled_back"])
        lock.up()
        note = eventually(lambda: watchdog_detail(lock)["rolled_back"])
        assert note.startswith("the store ends at row"), note
        events = lock.cli("events", check=False)
        assert events.returncode == 1 and "rolled back" in events.stderr


def policy_head(bus: Bus) -> dict:
    answer = bus.client("policy").request(StatusRequest(), timeout=5)
    assert isinstance(answer.body, StatusReply)
    return answer.body.detail["audit_head"]


def witnessed(layout: Layout) -> dict | None:
    seen = witness.read(layout.witness_file)
    return seen.head.to_body() if seen else None


def watchdog_detail(lock) -> dict:
    return lock.status()["services"]["watchdog"]["detail"]


def test_the_watchdogs_folder_is_its_own_on_a_pi():
    from ops import deploy

    layout = Layout.at("/var/lib/lockmesh")
    assert layout.witness_file.parent == deploy.workdir(layout, deploy.ACCOUNTS["watchdog"])
