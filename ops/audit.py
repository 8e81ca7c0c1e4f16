"""`lockmesh audit verify`: the event log re-checked from the database file itself, and its
head against the witnesses that saw it (issue 11).

It reads lock.db (read-only) and the device secret, so it works with the lock running or
stopped, and on a copy taken elsewhere (--db FILE --secret FILE). The owner's witness is
kept in the owner's state (XDG_STATE_HOME), one file per lock: it moves on only after a
verification that found the log whole and continuous with it, so a store rolled back and
then written past the old head still shows. Beside it, which lock (the id of its secret)
each data folder held: root on the board can make a new secret, and with it a lock no
witness has seen; the owner hears of that once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proto import files, witness
from proto.control import StatusReply, StatusRequest
from proto.layout import Layout
from proto.witness import Head, Witness
from services.policy import chain
from services.policy.secrets import lock_id, read_device_secret, subkey

OWNER = "your last audit"  # the owner's witness, as reports name it


@dataclass
class Report:
    audit: chain.Audit
    head: Head | None
    rolled_back: list[str] = field(default_factory=list)
    # Not the store's fault, but for the owner to hear: a factory reset since the last
    # audit; a new device secret where the owner audited another (that one fails once).
    notes: list[str] = field(default_factory=list)
    secret_changed: bool = False

    @property
    def intact(self) -> bool:
        return self.audit.intact and not self.rolled_back and not self.secret_changed

    def to_body(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "checked": self.audit.checked,
            "first_bad": self.audit.first_bad,
            "why": self.audit.why,
            "head": self.head.to_body() if self.head else None,
            "rolled_back": self.rolled_back,
            "notes": self.notes,
        }


def owner_state() -> Path:
    """The owner's own records, off the lock's data folder."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "lockmesh"


def owner_witness_file(lock: str) -> Path:
    """The owner's record of the newest head of a lock (by its id) that audited clean."""
    return owner_state() / "witness" / f"{lock}.json"


def known_lock_file(data: Path) -> Path:
    """Which lock (id) the owner last audited in a data folder: a lock whose secret was
    replaced gets a new id, and so would escape its old witness unseen."""
    return owner_state() / "locks" / f"{hashlib.sha256(str(data).encode()).hexdigest()[:16]}"


def verify(db_path: Path, secret_path: Path, witnesses: dict[str, Path]) -> Report:
    """Re-check the chain and the sealed head; then the head against each witness."""
    secret = read_device_secret(secret_path)
    db = chain.open_readonly(db_path)
    try:
        found = chain.audit(db, subkey(secret, "audit-chain"))
        if found.head is None:
            return Report(found, None)
        head = Head(lock_id(secret), found.head.epoch, found.head.count, found.head.last.hex())
        report = Report(found, head)
        for name, path in {OWNER: owner_witness_file(head.lock), **witnesses}.items():
            _against(report, name, witness.read(path), db)
    finally:
        db.close()
    return report


def _against(report: Report, name: str, seen: Witness | None, db: sqlite3.Connection) -> None:
    """What a witness says against the store's head, added to the report."""
    head = report.head
    if head is None or seen is None or seen.head.lock != head.lock:
        return
    if seen.rolled_back:
        report.rolled_back.append(f"{name} saw it: {seen.rolled_back}")
    why = witness.behind(head, seen.head)
    if why:
        report.rolled_back.append(f"{why} ({name})")
    elif seen.head.epoch < head.epoch:
        report.notes.append(f"the lock was factory reset since {name} (epoch {head.epoch})")
    elif 0 < seen.head.count < head.count:
        at = chain.hash_at(db, seen.head.count)
        if at is None or at.hex() != seen.head.last:
            report.rolled_back.append(
                f"row {seen.head.count} is not the row {name} saw: the store was put back "
                "to an older copy and written again"
            )


def _secret_changed(report: Report, data: Path) -> None:
    """Note (once) a lock id other than the one last audited in this data folder."""
    if report.head is None:
        return
    path = known_lock_file(data)
    try:
        before = json.loads(path.read_text())["lock"]
    except (OSError, ValueError, KeyError, TypeError):
        before = None
    if before not in (None, report.head.lock):
        report.secret_changed = True
        report.notes.append(
            f"the device secret changed since your last audit of {data} (lock {before}, now "
            f"{report.head.lock}): a lock made anew, or its secret replaced"
        )
    files.private_dir(path.parent)
    files.write_private(path, json.dumps({"data": str(data), "lock": report.head.lock}).encode())


def cmd_verify(layout: Layout, args: argparse.Namespace) -> int:
    if (args.db is None) != (args.secret is None):
        print("lockmesh: --db and --secret go together", file=sys.stderr)
        return 2
    db = args.db or layout.data / "lock.db"
    secret = args.secret or layout.data / "device.secret"
    for path in (db, secret):
        if not path.is_file():  # a copy's file is not a missing lock: no "no lock at"
            missing = FileNotFoundError if args.db else files.MissingFile
            raise missing(f"{path} is missing")
    try:
        report = verify(db, secret, {"the watchdog": layout.witness_file})
    except sqlite3.DatabaseError as e:
        print(f"lockmesh: {db} cannot be read as a lock's store: {e}", file=sys.stderr)
        return 1
    if args.db is None:
        _secret_changed(report, layout.data)
    if report.audit.intact and not report.rolled_back and report.head is not None:
        witness.write(owner_witness_file(report.head.lock), Witness(report.head))
    show(report, args.json)
    return 0 if report.intact else 1


def show(report: Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_body(), indent=2))
        return
    print(f"audit: {report.audit.why} ({report.audit.checked} events checked)")
    for problem in report.rolled_back:
        print(f"audit: rolled back: {problem}")
    for note in report.notes:
        print(f"audit: note: {note}")


def warn_if_rolled_back(bus: Any) -> bool:
    """After `events`: the head policy reports against the owner's witness (counts only:
    rows are not read here). True, with a line on stderr, when the store went back."""
    answer = bus.client("policy").request(StatusRequest(), timeout=2.0)
    if answer is None or not isinstance(answer.body, StatusReply):
        return False
    head = Head.from_body(answer.body.detail.get("audit_head"))
    seen = witness.read(owner_witness_file(head.lock)) if head else None
    why = witness.behind(head, seen.head) if head and seen else None
    if why:
        print(
            f"lockmesh: rolled back: {why} ({OWNER}): see `lockmesh audit verify`", file=sys.stderr
        )
    return why is not None
