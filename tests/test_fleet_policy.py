"""A building's console pushing visitor codes, policy's side, in this process (issue 17,
L-9): the sealed push opened with the door's fleet key, every lie and malformation
refused with its reason, counted, and storing nothing; the door's answer signed so the
console can tell it from the broker's. proto/fleet.py is the format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proto import fleet, trust
from proto.bridge import FleetAck, FleetKeySet, FleetPush
from proto.control import Done
from services.policy.changes import Changes
from services.policy.fleet import Fleet
from services.policy.tickets import TicketBook
from tests.meshkit import shows_code
from tests.policykit import Clock, Outlet, envelope, events, make_lock

NOW = 1_800_000_000.0
SERIAL, OTHER = "LMFLEET00001", "LMFLEET00002"
KEY, WRONG = bytes(range(32)), bytes(range(1, 33))
VISITOR = fleet.Visitor("cleaner", "482915", NOW, NOW + 3600, 3)


class Wall:
    def __init__(self, now: float | None = NOW) -> None:
        self.t = now

    def now(self) -> float | None:
        return self.t


@pytest.fixture
def door(tmp_path: Path) -> Fleet:
    clock = Clock()
    lock = make_lock(tmp_path / "data", clock, Outlet())
    lock.wall = Wall()  # type: ignore[assignment]
    part = Fleet(lock, Changes(lock, TicketBook(clock, 300.0)), SERIAL)
    done = part.on_key_set(envelope(FleetKeySet(key=KEY.hex()), "cli"), "cli")
    assert done.ok
    return part


def push(part: Fleet, payload: bytes, key: bytes | None = KEY) -> fleet.Ack:
    answer = part.on_push(envelope(FleetPush(payload=payload), "bridge"), "bridge")
    assert isinstance(answer, FleetAck)
    return fleet.read_ack(key, answer.payload)


def sealed(ident: str = "p1", at: float = NOW, key: bytes = KEY, serial: str = SERIAL,
           visitor: fleet.Visitor = VISITOR) -> bytes:  # fmt: skip
    return fleet.seal(key, serial, ident, at, visitor)


def stored(part: Fleet) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    rows = part.lock.store.db.execute("SELECT key, value FROM settings ORDER BY key")
    visitors = part.lock.people.visitors()
    return visitors, [tuple(r) for r in rows]


def test_l9_issue17_a_sealed_push_adds_the_visitor_code_and_the_ack_is_signed(door: Fleet):
    ack = push(door, sealed())
    assert (ack.ok, ack.reason, ack.signed, ack.id, ack.serial) == (True, "", True, "p1", SERIAL)
    assert ack.head is not None and ack.head["count"] == len(events(door.lock))
    (visitor,) = door.lock.people.visitors()
    assert visitor["label"] == "cleaner"
    (row,) = events(door.lock, "visitor-added")
    assert row["source"] == "fleet"
    assert door.status() == {"key": True, "taken": 1, "refused": {}}
    assert not shows_code(json.dumps(events(door.lock)), "482915")  # the code is kept only hashed


def test_issue17_a_replayed_push_is_answered_with_its_first_outcome_and_not_done_again(
    door: Fleet,
):
    payload = sealed()
    assert push(door, payload).ok
    before = door.lock.people.visitors()
    again = push(door, payload)
    assert (again.ok, again.again, again.signed) == (True, True, True)
    assert door.lock.people.visitors() == before
    assert len(events(door.lock, "visitor-added")) == 1
    assert door.status()["refused"] == {"replayed": 1}  # counted, not logged (floods)
    # a policy restarted still knows the id (kept in the store)
    fresh = Fleet(door.lock, door.changes, SERIAL)
    assert push(fresh, payload).again is True


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (sealed(key=WRONG), "bad-seal"),  # the broker, or anyone, without this door's key
        (sealed(serial=OTHER, key=WRONG), "bad-seal"),  # another door's push moved here
        (b"x" * 3000, "too-long"),
        (b"\xff\xfe", "not-json"),
        (b"[1]", "not-json"),
        (b'{"v": 1}', "bad-field"),
    ],
)
def test_issue17_a_push_not_sealed_with_the_doors_key_is_refused_unsigned_and_stores_nothing(
    door: Fleet, payload: bytes, reason: str
):
    before = stored(door)
    ack = push(door, payload)
    assert (ack.ok, ack.reason, ack.signed, ack.id) == (False, reason, False, None)
    assert stored(door) == before
    assert door.status()["refused"] == {reason: 1}


def tampered(payload: bytes, **change: Any) -> bytes:
    fields = json.loads(payload)
    fields.update(change)
    return json.dumps(fields).encode()


def test_issue17_a_push_altered_on_the_way_is_refused(door: Fleet):
    good = json.loads(sealed())
    cases = {
        "re-dated": tampered(sealed(), at=NOW + 30),  # within the window, but not sealed so
        "renamed": tampered(sealed(), id="p2"),
        "re-addressed": tampered(sealed(), serial=OTHER),
        "box": tampered(sealed(), box=good["box"][:-4] + "AAAA"),
        "nonce": tampered(sealed(), nonce="AAAAAAAAAAAAAAAA"),
    }
    for name, payload in cases.items():
        assert push(door, payload).reason == "bad-seal", name
    for name, payload in {
        "version": tampered(sealed(), v=2),
        "operation": tampered(sealed(), op="person_add"),
        "not base64": tampered(sealed(), box="%%%"),
        "extra field": tampered(sealed(), admin=True),
        "long id": tampered(sealed(), id="i" * 65),
        "time a string": tampered(sealed(), at="now"),
    }.items():
        ack = push(door, payload)
        assert not ack.ok and not ack.signed and ack.reason != "bad-seal", name
    assert door.lock.people.visitors() == []


def test_issue17_a_sealed_push_that_is_late_or_for_another_door_is_refused_signed(door: Fleet):
    before = stored(door)[0]
    late = push(door, sealed("old", at=NOW - fleet.MAX_AGE_S - 1))
    assert (late.ok, late.reason, late.signed) == (False, "stale", True)
    early = push(door, sealed("new", at=NOW + fleet.MAX_AGE_S + 1))
    assert early.reason == "stale"
    moved = push(door, sealed("moved", serial=OTHER))  # one key given to two doors
    assert (moved.reason, moved.signed) == ("wrong-serial", True)
    door.lock.wall.t = None  # type: ignore[attr-defined]
    assert push(door, sealed("lost")).reason == "time-unknown"
    assert stored(door)[0] == before
    logged = [e["reason"] for e in events(door.lock, "fleet-refused")]
    assert sorted(logged) == ["stale", "stale", "time-unknown", "wrong-serial"]


@pytest.mark.parametrize(
    ("visitor", "reason"),
    [
        (fleet.Visitor("v", "12ab56"), "bad-body"),
        (fleet.Visitor("", "482915"), "bad-body"),
        (fleet.Visitor("v", "482915", uses=0), "bad-body"),
        (fleet.Visitor("v", "123456"), "sequence"),  # L-4: refused as at the keypad
        (fleet.Visitor("v", "4829"), "too-short"),
        (fleet.Visitor("v", "482915", NOW + 10, NOW), "bad-value"),
    ],
)
def test_issue17_a_sealed_visitor_code_is_checked_as_the_owners_would_be(
    door: Fleet, visitor: fleet.Visitor, reason: str
):
    ack = push(door, sealed(visitor=visitor))
    assert (ack.ok, ack.reason, ack.signed) == (False, reason, True)
    assert door.lock.people.visitors() == []


def test_issue17_the_audit_head_is_answered_signed_and_nothing_is_done(door: Fleet):
    push(door, sealed())
    before = stored(door)
    ack = push(door, fleet.seal(KEY, SERIAL, "h1", NOW, None))
    assert (ack.ok, ack.signed, ack.id) == (True, True, "h1")
    head = door.lock.store.head()
    assert head is not None and ack.head == {"count": head.count, "last": head.last.hex()}
    assert stored(door) == before
    late = push(door, fleet.seal(KEY, SERIAL, "h2", NOW - 600, None))
    assert (late.ok, late.reason) == (False, "stale")
    forged = push(door, fleet.seal(WRONG, SERIAL, "h3", NOW, None))
    assert (forged.ok, forged.reason, forged.signed) == (False, "bad-seal", False)


def test_issue17_a_door_without_a_fleet_key_takes_no_push(door: Fleet):
    assert door.on_key_set(envelope(FleetKeySet(key=""), "cli"), "cli").ok
    ack = push(door, sealed())
    assert (ack.ok, ack.reason, ack.signed) == (False, "fleet-off", False)
    bad = door.on_key_set(envelope(FleetKeySet(key="abc"), "cli"), "cli")
    assert isinstance(bad, Done) and bad.reason == "bad-key"


def test_issue17_only_the_bridge_relays_pushes_and_only_the_owner_sets_the_key():
    assert trust.refusal("fleet.push", "request", "bridge") is None
    for sender in ("gateway", "ble", "keypad", "cli", "face"):
        assert trust.refusal("fleet.push", "request", sender) is not None
    assert trust.refusal("fleet.key_set", "request", "cli") is None
    assert trust.refusal("fleet.key_set", "request", "bridge") is not None  # the broker's side
    assert trust.refusal("fleet.ack", "reply", "bridge") is not None  # only policy signs


@given(
    label=st.text(min_size=1, max_size=fleet.MAX_LABEL).filter(str.isprintable),
    code=st.text(alphabet="0123456789", min_size=1, max_size=fleet.MAX_CODE),
    uses=st.none() | st.integers(min_value=1, max_value=10_000),
    where=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_issue17_any_push_opens_as_sealed_and_any_flipped_bit_is_refused_or_changes_nothing(
    label: str, code: str, uses: int | None, where: int, bit: int
):
    visitor = fleet.Visitor(label, code, NOW, NOW + 60, uses)
    payload = fleet.seal(KEY, SERIAL, "id", NOW, visitor)
    assert fleet.open_push(KEY, SERIAL, payload, NOW).visitor == visitor
    flipped = bytearray(payload)
    flipped[where % len(flipped)] ^= 1 << bit
    try:
        opened = fleet.open_push(KEY, SERIAL, bytes(flipped), NOW)
    except fleet.Refused:
        return
    # base64's last character may carry unused bits: the same bytes, the same push
    assert opened == fleet.open_push(KEY, SERIAL, payload, NOW)
