"""Bluetooth keys and offline codes on a real mesh, driven as a person would on a laptop
(issue 16, L-32, L-34): `lockmesh phone` claims the simulated lock, unlocks and locks over
the simulated air (the ble service's in-process radio), signs a visitor's grant and an
offline code without the lock, revokes; the bolt moves on the motor's word."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from proto.board import Bolt
from proto.policy import Pairing
from services.policy.secrets import identity, read_device_secret
from tests.meshkit import Lock, Watcher, is_type, lean_but, running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lock]:
    with running(tmp_path_factory.mktemp("ble") / "data", without=lean_but("ble")) as lock:
        yield lock


@pytest.fixture(scope="module")
def owner(lock: Lock, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The owner's phone: its key, then the claim in pairing mode (L-17) with its key."""
    folder = tmp_path_factory.mktemp("phones") / "owner"
    phone(lock, folder, "keygen")
    who = identity(read_device_secret(lock.layout.data / "device.secret"))
    watch = lock.watcher()
    try:
        lock.cli("sim", "button", "set-long")  # someone at the lock
        watch.wait_for(is_type(Pairing, open=True), timeout=15)
    finally:
        watch.close()
    typed = f"{who.verification_code}\nan owner's password\n2580\n"
    claimed = phone(lock, folder, "claim", "--serial", who.serial, "--code-stdin", input=typed)
    assert len(claimed["lock_id"]) == 16
    return folder


def phone(
    lock: Lock, folder: Path, *args: str, check: bool = True, input: str | None = None
) -> Any:
    done = lock.cli("phone", *args, "--phone", str(folder), "--json", check=check, input=input)
    return json.loads(done.stdout) if done.stdout.strip() else {"ok": False, "err": done.stderr}


def bolt(watch: Watcher, state: str) -> None:
    watch.wait_for(lambda e: is_type(Bolt, state=state)(e) and e.sender == "motor", timeout=15)
    watch.seen.clear()


def test_l32_l34_issue_16_unlock_lock_grant_revoke_over_the_simulated_air(
    lock: Lock, owner: Path, tmp_path: Path
) -> None:
    visitor = tmp_path / "visitor"
    visitor_key = phone(lock, visitor, "keygen")["public_key"]
    watch = lock.watcher()
    try:
        assert phone(lock, owner, "unlock")["ok"]
        bolt(watch, "unlocked")
        assert phone(lock, owner, "lock")["ok"]
        bolt(watch, "locked")
        end = str(time.time() + 3600)
        grant = phone(lock, owner, "grant", visitor_key, "--end", end, "--uses", "1",
                      "--label", "bob", "--out", str(tmp_path / "bob.grant"))  # fmt: skip
        with_grant = ("--grant", str(tmp_path / "bob.grant"))
        assert phone(lock, visitor, "unlock", *with_grant)["ok"]
        bolt(watch, "unlocked")
        assert (
            phone(lock, visitor, "unlock", *with_grant, check=False)["reason"] == "uses-exhausted"
        )
        assert phone(lock, visitor, "lock", *with_grant)["ok"]  # locking spends no use
        bolt(watch, "locked")
        assert phone(lock, owner, "revoke", grant["grant_id"])["ok"]  # over the air
        assert phone(lock, visitor, "lock", *with_grant, check=False)["reason"] == "revoked"
    finally:
        watch.close()
    rows = json.loads(lock.cli("events", "--json", "--limit", "20").stdout)["items"]
    done = [(r["kind"], r["person"], r["method"]) for r in reversed(rows) if r["method"] == "ble"]
    assert done == [
        ("granted", "owner", "ble"), ("unlock", "owner", "ble"), ("lock", "owner", "ble"),
        ("granted", "visitor:bob", "ble"), ("unlock", "visitor:bob", "ble"),
        ("lock", "visitor:bob", "ble"), ("phone-key-revoked", "owner", "ble"),
    ]  # fmt: skip


def test_issue_16_an_offline_code_opens_at_the_keypad_once_and_bluetooth_shows(
    lock: Lock, owner: Path
) -> None:
    code = phone(lock, owner, "code", "--hours", "1", "--once")["code"]
    watch = lock.watcher()
    try:
        lock.press("touch", *code, "ok")
        bolt(watch, "unlocked")
        lock.cli("sim", "button", "lock")
        bolt(watch, "locked")
    finally:
        watch.close()
    lock.press("touch", *code, "ok")
    rows = json.loads(lock.cli("events", "--json", "--limit", "6").stdout)["items"]
    assert [(r["kind"], r["reason"]) for r in rows if r["method"] == "pin"][:2] == [
        ("refused", "uses-exhausted"), ("unlock", None)]  # fmt: skip
    status = lock.status()["services"]
    assert status["ble"]["detail"]["bluetooth"] == "advertising"
    assert status["policy"]["detail"]["ble"]["bluetooth"] == "advertising"
    assert "bluetooth: advertising" in lock.cli("home").stdout
