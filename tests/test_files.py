"""Files (issue 11, item 7): secrets written whole and 0600 in 0700 folders, refused when
others can read them; the store 0600; a run folder no other user can plant or swap."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ops import mesh
from proto import curve, files
from proto.layout import IDENTITIES, RUN_RECORD, Layout, fits
from services.policy.secrets import SECRET_BYTES, BadSecret, device_secret
from services.policy.store import Store
from tests.meshkit import Lock

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's file")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def loose_umask():
    """The umask an ordinary shell has, or looser: the code must not rely on it."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture
def deep(tmp_path: Path):
    """A data folder too deep for socket paths, as pytest's own temporary folders are."""
    layout = Layout.at(tmp_path / ("d" * 90))
    layout.data.mkdir()
    assert not layout.run_fits_in_data
    yield layout
    mesh.clean_run_dir(layout)


# -- secrets: whole, 0600, refused when others can read them ---------------------------------
def test_curve_secrets_are_0600_in_a_0700_folder_whatever_the_umask(tmp_path, loose_umask):
    keys = tmp_path / "keys"
    curve.ensure_keys(keys, IDENTITIES)
    assert mode(keys) == 0o700
    for name in IDENTITIES:
        assert mode(keys / f"{name}.secret") == 0o600
        assert mode(keys / f"{name}.key") == curve.PUBLIC_MODE
    assert sorted(p.name for p in keys.iterdir() if p.name.endswith(".tmp")) == []


def test_a_stale_world_readable_temp_file_does_not_make_a_readable_secret(tmp_path):
    """The old code wrote both files of a pair through NAME.tmp, opened without O_EXCL: a
    0644 NAME.tmp left by a crash (or planted) kept its mode, and the secret became 0644."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    for name in IDENTITIES:
        stale = keys / f"{name}.tmp"
        stale.write_bytes(b"stale")
        os.chmod(stale, 0o666)
    curve.ensure_keys(keys, IDENTITIES)
    for name in IDENTITIES:
        assert mode(keys / f"{name}.secret") == 0o600, name


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o644, 0o660, 0o601])
def test_a_curve_secret_others_can_read_is_refused_naming_the_file(tmp_path, loose):
    keys = tmp_path / "keys"
    curve.ensure_keys(keys, ("cli",))
    os.chmod(keys / "cli.secret", loose)
    with pytest.raises(files.UnsafeFile) as refused:
        curve.load_identity(keys, "cli")
    assert str(keys / "cli.secret") in str(refused.value)
    assert f"{loose:04o}" in str(refused.value)


def test_a_missing_curve_key_names_the_file(tmp_path):
    curve.ensure_keys(tmp_path / "keys", ("cli",))
    (tmp_path / "keys" / "cli.secret").unlink()
    with pytest.raises(files.MissingFile, match="cli.secret is missing"):
        curve.load_identity(tmp_path / "keys", "cli")


def test_up_makes_an_old_locks_readable_secrets_private_again(tmp_path):
    keys = tmp_path / "keys"
    curve.ensure_keys(keys, ("cli",))
    os.chmod(keys, 0o755)
    os.chmod(keys / "cli.secret", 0o644)
    curve.ensure_keys(keys, ("cli",))
    assert mode(keys) == 0o750 and mode(keys / "cli.secret") == 0o600
    curve.load_identity(keys, "cli")


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "secret"
    files.write_private(path, b"old")

    def power_cut(fd: int) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError, match="power cut"):
        files.write_private(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


# -- the device secret ------------------------------------------------------------------------
def test_a_crash_while_the_device_secret_is_made_leaves_none_not_an_empty_one(
    tmp_path, monkeypatch
):
    """The old code created device.secret (O_EXCL) and wrote it afterwards: a crash between
    left 0 bytes, which every later start refused, forever."""
    path = tmp_path / "device.secret"

    def crash(fd: int) -> None:
        raise OSError("crash")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="crash"):
        device_secret(path)
    monkeypatch.undo()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    assert len(device_secret(path)) == SECRET_BYTES  # the next start simply makes it
    assert mode(path) == 0o600


def test_an_empty_device_secret_with_nothing_keyed_by_it_is_made_again(tmp_path):
    """What an interrupted first start of an older version left: no store was ever opened
    with it (policy refused it), so a new one voids nothing."""
    path = tmp_path / "device.secret"
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    secret = device_secret(path, keyed=tmp_path / "lock.db")
    assert len(secret) == SECRET_BYTES and path.read_bytes() == secret


def test_an_empty_device_secret_beside_a_store_is_refused_naming_it(tmp_path):
    path = tmp_path / "device.secret"
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    (tmp_path / "lock.db").write_bytes(b"")
    with pytest.raises(BadSecret, match=f"{path} holds 0 bytes"):
        device_secret(path, keyed=tmp_path / "lock.db")


def test_two_starts_making_the_device_secret_at_once_keep_one(tmp_path):
    path = tmp_path / "device.secret"
    assert files.create_private(path, b"a" * SECRET_BYTES)
    assert not files.create_private(path, b"b" * SECRET_BYTES)
    assert device_secret(path) == b"a" * SECRET_BYTES


# -- the store ----------------------------------------------------------------------------------
def test_the_store_and_its_wal_are_0600_whatever_the_umask(tmp_path, loose_umask):
    store = Store(tmp_path / "lock.db")
    store.log("refused", reason="wrong-passcode")
    try:
        for name in ("lock.db", "lock.db-wal", "lock.db-shm"):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        store.close()


def test_an_old_readable_store_is_made_private_when_opened(tmp_path):
    Store(tmp_path / "lock.db").close()
    os.chmod(tmp_path / "lock.db", 0o644)
    Store(tmp_path / "lock.db").close()
    assert mode(tmp_path / "lock.db") == 0o600


# -- the run folder -------------------------------------------------------------------------
def old_predictable_run(layout: Layout) -> Path:
    digest = hashlib.sha1(str(layout.data).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"lockmesh-{digest}"


@as_root
def test_a_run_folder_another_user_made_first_is_never_used(deep):
    """The old run folder of a deep data path was /tmp/lockmesh-<sha1 of the path>: another
    user could make it first (0777) and swap supervisord.conf between write and read."""
    planted = old_predictable_run(deep)
    planted.mkdir(mode=0o777)
    try:
        os.chmod(planted, 0o777)
        os.chown(planted, NOBODY, NOBODY)
        run = deep.run
        assert run != planted
        assert run.stat().st_uid == os.geteuid() and mode(run) == 0o700
        assert fits(run)
    finally:
        planted.rmdir()


def test_a_deep_data_path_gets_a_private_unpredictable_run_folder_all_agree_on(deep):
    run = deep.run
    assert mode(run) == 0o700 and not run.is_symlink()
    assert run.name.startswith("lockmesh-") and run != old_predictable_run(deep)
    assert Layout.at(deep.data).run == run  # another process finds the same folder
    assert mode(deep.data / RUN_RECORD) == 0o600
    other = Layout.at(deep.data.with_name("e" * 90))
    other.data.mkdir()
    assert other.run != run
    run.rmdir()


def loosened(run: Path) -> None:
    os.chmod(run, 0o777)


def swapped_for_a_link(run: Path) -> None:
    target = Path(tempfile.mkdtemp())
    run.rmdir()
    run.symlink_to(target)


def given_to_nobody(run: Path) -> None:
    os.chown(run, NOBODY, NOBODY)


@pytest.mark.parametrize(
    "spoil",
    [loosened, swapped_for_a_link, pytest.param(given_to_nobody, marks=as_root), Path.rmdir],
)
def test_a_recorded_run_folder_that_is_no_longer_safe_is_replaced(deep, spoil):
    first = deep.run
    spoil(first)
    try:
        second = deep.run
        assert second != first and mode(second) == 0o700 and not second.is_symlink()
        assert Layout.at(deep.data).run == second
        assert (deep.data / RUN_RECORD).read_text().strip() == str(second)
    finally:
        if first.is_symlink():
            first.resolve().rmdir()
            first.unlink()
        elif first.exists():
            first.rmdir()


@pytest.mark.parametrize("record", ["relative/run", "/" + "x" * 120, "\udcff"])
def test_a_record_that_names_no_usable_folder_is_replaced(deep, record):
    (deep.data / RUN_RECORD).write_text(record, errors="surrogateescape")
    run = deep.run
    assert run.is_absolute() and fits(run) and mode(run) == 0o700


def test_xdg_runtime_dir_is_used_only_when_it_is_private(deep, monkeypatch):
    xdg = Path(tempfile.mkdtemp(prefix="xdg-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    try:
        assert deep.run.parent == xdg
        mesh.clean_run_dir(deep)
        os.chmod(xdg, 0o777)  # not private: a shared folder is no better than /tmp
        assert deep.run.parent != xdg
    finally:
        os.chmod(xdg, 0o700)
        for run in xdg.iterdir():
            run.rmdir()
        xdg.rmdir()


# -- a fresh lock, as ./run-lock starts it ----------------------------------------------------
@pytest.mark.slow
def test_a_fresh_lock_leaves_nothing_readable_by_others_under_its_data_folder(tmp_path):
    """Secrets, templates, the database with its WAL, and the logs: 0600 in 0700 folders.
    The old lock.db (and its WAL) was 0644 on the simulated board."""
    lock = Lock(tmp_path / "fresh")  # not made beforehand: `lockmesh up` makes it
    lock.up()
    try:
        lock.set_up()  # people and passcodes in lock.db, a log written
        lock.cli("events")
        lock.cli("sim", "clock", "offset", "0")  # a file the CLI itself writes
        found = {p: mode(p) for p in lock.layout.data.rglob("*")}
        run = {p: mode(p) for p in lock.layout.run.rglob("*")} | {
            lock.layout.run: mode(lock.layout.run)
        }
    finally:
        mesh.down(lock.layout)
        mesh.clean_run_dir(lock.layout)
    assert mode(lock.layout.data) == 0o700
    names = {p.relative_to(lock.layout.data).as_posix() for p in found}
    assert {"device.secret", "lock.db", "keys/policy.secret", "log/policy.log"} <= names
    loose = {
        p.relative_to(lock.layout.data).as_posix(): f"{m:04o}"
        for p, m in found.items()
        if m & files.NOT_OURS and not (p.suffix == ".key" and m == curve.PUBLIC_MODE)
    }
    assert loose == {}
    assert {p.name: f"{m:04o}" for p, m in run.items() if m & files.NOT_OURS} == {}


def test_policy_refuses_an_empty_secret_beside_its_store_in_one_line(tmp_path):
    """Not a crash loop of tracebacks: one line naming the file, at each start."""
    layout = Layout.at(tmp_path / "data")
    mesh.prepare(layout)
    Store(layout.data / "lock.db").close()  # something was keyed with the secret
    files.write_private(layout.data / "device.secret", b"")
    done = subprocess.run(
        [sys.executable, "-m", "services.policy", "--data", str(layout.data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    refused = [line for line in done.stderr.splitlines() if "CRITICAL" in line]
    assert len(refused) == 1
    assert f"policy cannot start: {layout.data / 'device.secret'} holds 0 bytes" in refused[0]
