"""Bluetooth keys and offline codes, policy's side, in this process (issue 16, L-32, L-34):
the ble relay and the phone over the in-process radio (the fast transport), policy's parts
on a real store, the motor answering as told.

Every refusal is checked for its reason, for being counted, and for storing nothing: the
event log and the settings rows are the same after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hw.ble import InProcessCentral, InProcessRadio, chunks
from ops.phone import exchange, operate
from proto import offline_codes as offline
from proto import phonekey
from proto.ble import BleAnswer, BleChallenge, PhoneKey, PhoneKeySet, PhoneRevoke
from proto.board import Actuate
from proto.control import Done
from proto.phonekey import Answer, Grant
from proto.policy import Decision, VerifyPasscode
from proto.schema import Message
from services.ble.relay import Relay
from services.policy.changes import Changes
from services.policy.offline_codes import OfflineCodes
from services.policy.panel import Panel
from services.policy.phonekeys import PhoneKeys
from services.policy.secrets import lock_id, subkey
from services.policy.tickets import TicketBook
from tests.policykit import SECRET, envelope, events
from tests.test_owner_app import PIN_1, Policy, claim, start_policy

NOW = 1_800_000_000.0  # the lock's wall clock in these tests (2027-01-15 08:00 UTC)
LOCK_ID = bytes.fromhex(lock_id(SECRET))


class Wall:
    def __init__(self, now: float | None = NOW) -> None:
        self.t = now

    def now(self) -> float | None:
        return self.t


@dataclass
class Rig:
    policy: Policy
    keys: PhoneKeys
    panel: Panel
    radio: InProcessRadio
    relay: Relay
    owner: Ed25519PrivateKey

    @property
    def lock(self) -> Any:
        return self.policy.lock

    def phone(self, conn: str = "phone") -> InProcessCentral:
        return self.radio.connect(conn)

    def stored(self) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """The event log and every settings row: what a refusal must leave as it was."""
        rows = self.lock.store.db.execute("SELECT key, value FROM settings ORDER BY key")
        return events(self.lock), [tuple(r) for r in rows]

    def unlocks(self) -> int:
        return sum(
            isinstance(b, Actuate) and b.action == "unlock" for _, b, _ in self.policy.outlet.asked
        )


def build(data: Path, wall: Wall | None = None) -> Rig:
    p = start_policy(data)
    p.lock.settings.set("direction", "right")
    p.lock.wall = wall or Wall()
    keys = PhoneKeys(p.lock, p.decider, p.actuation, p.account, p.pairing,
                     lock_id=LOCK_ID, code_key=subkey(SECRET, "offline-codes"))  # fmt: skip
    changes = Changes(p.lock, TicketBook(p.clock, 300.0))
    if p.lock.initial:  # an administrator, as after L-12's first start
        assert changes.add_person("admin", "", "246813", source="keypad", cause="setup").ok
    offline_codes = OfflineCodes(p.lock, p.decider, keys.code_secret)
    panel = Panel(p.lock, p.decider, changes, p.actuation, p.board, offline_codes)
    handlers = {BleChallenge: keys.on_challenge, BleAnswer: keys.on_answer}

    def ask(body: Message) -> Any:  # what the bus does for the ble service, minus sockets
        return envelope(handlers[type(body)](envelope(body, "ble"), "ble"), "policy")

    radio = InProcessRadio()
    relay = Relay(ask, radio.notify)
    radio.start(relay)
    return Rig(p, keys, panel, radio, relay, Ed25519PrivateKey.generate())


def register(rig: Rig, key: Ed25519PrivateKey | None = None, pin: str = PIN_1) -> Message:
    public = phonekey.public_bytes(key or rig.owner).hex()
    return rig.policy.ask(rig.keys.on_key_set, PhoneKeySet(public_key=public, pin=pin), "cli")


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = build(tmp_path / "data")
    assert claim(r.policy).ok
    assert isinstance(register(r), PhoneKey)
    return r


def visitor_grant(rig: Rig, visitor: Ed25519PrivateKey, **fields: Any) -> Grant:
    base = dict(lock_id=LOCK_ID, grant_id=os.urandom(8), visitor_key=phonekey.public_bytes(visitor),
                not_before=int(NOW - 60), not_after=int(NOW + 3600), max_uses=0, rights=1,
                label="alice")  # fmt: skip
    return phonekey.sign_grant(rig.owner, Grant(**{**base, **fields}))


def refused_unchanged(rig: Rig, reason: str, act) -> None:
    """act() is refused with reason, counted once, and stores nothing."""
    before, counted = rig.stored(), rig.keys.refusals[reason]
    ok, said = act()
    assert (ok, said) == (False, reason)
    assert rig.keys.refusals[reason] == counted + 1
    assert rig.stored() == before


# -- the owner's key (L-32) -------------------------------------------------------------------
def test_l32_issue_16_the_owners_phone_unlocks_and_locks_logged_with_method_ble(rig: Rig) -> None:
    assert operate(rig.phone(), rig.owner, "unlock") == (True, "")
    assert operate(rig.phone(), rig.owner, "lock") == (True, "")
    asked = [b.action for _, b, _ in rig.policy.outlet.asked if isinstance(b, Actuate)]
    assert asked == ["unlock", "lock"]
    granted = events(rig.lock, "granted")[0]
    assert (granted["method"], granted["person"], granted["source"]) == ("ble", "owner", "ble")
    assert rig.policy.outlet.of_type(Decision)[-1].granted


def test_l32_issue_16_registering_needs_someone_at_the_lock_and_the_app_pin(tmp_path) -> None:
    r = build(tmp_path / "data")
    assert register(r).reason == "not-claimed"
    assert claim(r.policy).ok
    assert register(r, pin="0000").reason == "wrong-pin"  # counted toward the PIN's lockout
    r.policy.clock.now += r.lock.config["pairing"]["window_s"] + 1
    assert register(r).reason == "not-pairing"  # the claim's window is over: no PIN asked
    r.policy.pairing.open(None)  # SET held again
    given = register(r)
    assert isinstance(given, PhoneKey) and given.lock_id == LOCK_ID.hex()
    assert len(bytes.fromhex(given.code_secret)) == 32
    assert given.code_secret not in repr(given) and given.redacted()["code_secret"] == "***"
    rows = [(e["kind"], e["reason"]) for e in reversed(events(r.lock)) if "phone" in e["kind"]]
    assert rows == [("phone-key-refused", "wrong-pin"), ("phone-key-set", None)]
    assert isinstance(register(r, key=Ed25519PrivateKey.generate()), PhoneKey)  # replaces ...
    assert operate(r.phone(), r.owner, "unlock") == (False, "unknown-key")  # ... the old key


@pytest.mark.parametrize("sender", ["cli", "gateway"])
def test_l32_issue_16_a_bad_phone_key_is_refused(rig: Rig, sender: str) -> None:
    body = PhoneKeySet(public_key="zz" * 32, pin=PIN_1)
    assert rig.policy.ask(rig.keys.on_key_set, body, sender).reason == "bad-key"


# -- challenge-response: replayed, late, forged --------------------------------------------------
def signed_answer(
    rig: Rig, key: Ed25519PrivateKey, credential: bytes, kind: str = "owner"
) -> bytes:
    reply = exchange(rig.phone(), phonekey.hello())
    lock, nonce = phonekey.decode_challenge(reply)
    return phonekey.sign_answer(key, lock, Answer("unlock", kind, nonce, credential)).encode()


def send(rig: Rig, answer: bytes) -> tuple[bool, str]:
    return phonekey.decode_result(exchange(rig.phone(), answer))


def test_l32_issue_16_a_replayed_or_late_answer_is_refused(rig: Rig) -> None:
    answer = signed_answer(rig, rig.owner, phonekey.public_bytes(rig.owner))
    assert send(rig, answer) == (True, "")
    refused_unchanged(rig, "replayed", lambda: send(rig, answer))
    late = signed_answer(rig, rig.owner, phonekey.public_bytes(rig.owner))
    rig.policy.clock.now += rig.lock.config["ble"]["answer_within_s"] + 0.1
    refused_unchanged(rig, "late", lambda: send(rig, late))
    unknown = Answer("unlock", "owner", os.urandom(16), phonekey.public_bytes(rig.owner))
    forged = phonekey.sign_answer(rig.owner, LOCK_ID, unknown).encode()
    refused_unchanged(rig, "unknown-nonce", lambda: send(rig, forged))
    assert rig.unlocks() == 1


def test_l32_issue_16_another_key_or_a_tampered_answer_is_refused(rig: Rig) -> None:
    stranger = Ed25519PrivateKey.generate()
    own = phonekey.public_bytes(rig.owner)
    theirs = phonekey.public_bytes(stranger)
    refused_unchanged(rig, "unknown-key", lambda: send(rig, signed_answer(rig, stranger, theirs)))
    refused_unchanged(rig, "bad-signature", lambda: send(rig, signed_answer(rig, stranger, own)))
    answer = bytearray(signed_answer(rig, rig.owner, own))
    answer[2] = 2  # unlock signed, lock sent
    refused_unchanged(rig, "bad-signature", lambda: send(rig, bytes(answer)))
    assert rig.unlocks() == 0


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x07", "unknown-type"),
        (b"\x01\x09", "version"),
        (b"\x02\x01\x01", "truncated"),
        (
            bytes([0x02, 1, 1, 1]) + bytes(16) + bytes([32]) + bytes(32) + bytes([0]) + bytes(63),
            "truncated",
        ),
    ],
)
def test_issue_16_malformed_and_truncated_messages_are_refused_and_counted(
    rig: Rig, data, reason
) -> None:
    before = rig.stored()
    assert send(rig, data) == (False, reason)
    assert rig.relay.counts[f"refused:{reason}"] == 1
    assert rig.stored() == before and rig.unlocks() == 0


def test_issue_16_an_oversized_message_is_refused_by_the_relay_before_policy(rig: Rig) -> None:
    phone, before = rig.phone(), rig.stored()
    phone.send(chunks(b"\x02" + bytes(600), 64)[:28])  # 28 * 60 bytes: past 512, no last chunk
    reply = phonekey.decode_result(exchange(phone, b"\x07"))  # the refusal came first
    assert reply == (False, "oversized") and rig.relay.counts["refused:oversized"] == 1
    assert rig.stored() == before


# -- visitors' grants (L-34) ----------------------------------------------------------------------
def test_l34_issue_16_a_visitor_key_opens_within_its_window_and_uses_counted_on_disk(
    rig: Rig, tmp_path
) -> None:
    visitor = Ed25519PrivateKey.generate()
    g = visitor_grant(rig, visitor, max_uses=2)
    assert operate(rig.phone(), visitor, "unlock", grant=g) == (True, "")
    granted = events(rig.lock, "granted")[0]
    assert (granted["method"], granted["person"]) == ("ble", "visitor:alice")
    again = build(tmp_path / "data")  # policy restarted on the same store
    again.owner = rig.owner
    assert operate(again.phone(), visitor, "unlock", grant=g) == (True, "")
    refused_unchanged(
        again, "uses-exhausted", lambda: operate(again.phone(), visitor, "unlock", grant=g)
    )
    refused_unchanged(again, "no-right", lambda: operate(again.phone(), visitor, "lock", grant=g))


def test_l34_issue_16_bad_grants_are_refused_with_their_reasons(rig: Rig) -> None:
    visitor, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cases = {
        "other-lock": visitor_grant(rig, visitor, lock_id=bytes(8)),
        "expired": visitor_grant(rig, visitor, not_before=int(NOW - 7200), not_after=int(NOW - 1)),
        "not-yet-valid": visitor_grant(rig, visitor, not_before=int(NOW + 60)),
        "bad-grant-signature": phonekey.sign_grant(other, visitor_grant(rig, visitor)),
    }
    for reason, g in cases.items():
        refused_unchanged(rig, reason, lambda g=g: operate(rig.phone(), visitor, "unlock", grant=g))
    stolen = visitor_grant(rig, visitor)  # someone else's phone presents it
    refused_unchanged(
        rig, "bad-signature", lambda: operate(rig.phone(), other, "unlock", grant=stolen)
    )
    rig.lock.wall.t = None  # L-7: a lock that lost the time
    refused_unchanged(
        rig, "time-unknown", lambda: operate(rig.phone(), visitor, "unlock", grant=stolen)
    )
    assert rig.unlocks() == 0


def test_l34_issue_16_a_revoked_key_is_refused_inside_its_window(rig: Rig) -> None:
    visitor = Ed25519PrivateKey.generate()
    by_id, by_key = visitor_grant(rig, visitor), visitor_grant(rig, visitor)
    owner_said = rig.policy.ask(
        rig.keys.on_revoke, PhoneRevoke(target=by_id.grant_id.hex()), "gateway"
    )
    assert owner_said.ok
    refused_unchanged(rig, "revoked", lambda: operate(rig.phone(), visitor, "unlock", grant=by_id))
    assert operate(rig.phone(), visitor, "unlock", grant=by_key) == (True, "")
    target = phonekey.public_bytes(visitor)  # over Bluetooth, with the owner's key
    assert operate(rig.phone(), rig.owner, "revoke", target=target) == (True, "")
    refused_unchanged(rig, "revoked", lambda: operate(rig.phone(), visitor, "unlock", grant=by_key))
    friend = Ed25519PrivateKey.generate()  # a visitor's key cannot revoke, even another's
    theirs = visitor_grant(rig, friend, rights=3)
    revoking = lambda: operate(rig.phone(), friend, "revoke", grant=theirs, target=target)  # noqa: E731
    refused_unchanged(rig, "not-owner", revoking)
    rows = [
        (e["kind"], e["source"])
        for e in reversed(events(rig.lock))
        if e["kind"] == "phone-key-revoked"
    ]
    assert rows == [("phone-key-revoked", "app"), ("phone-key-revoked", "ble")]
    bad = rig.policy.ask(rig.keys.on_revoke, PhoneRevoke(target="abc"), "cli")
    assert isinstance(bad, Done) and bad.reason == "bad-target"


def test_issue_16_the_bluetooth_state_reaches_home(rig: Rig) -> None:
    from proto.ble import BleState

    assert rig.keys.bluetooth == "absent"
    rig.keys.on_radio(envelope(BleState(state="advertising", transport="sim"), "ble"))
    assert rig.keys.bluetooth == "advertising"


# -- offline codes at the door --------------------------------------------------------------------
def typed(rig: Rig, entry: str) -> Decision:
    return rig.panel.on_verify(envelope(VerifyPasscode(entry=entry), "keypad"), "keypad")


def owner_code(rig: Rig, hours: int = 4, kind: str = "once", start: float = NOW - 600) -> str:
    secret = rig.keys.code_secret()
    return offline.code(secret, offline.spec_for(start, hours, kind))


def test_issue_16_an_offline_code_opens_in_its_window_once_and_stays_spent(
    rig: Rig, tmp_path
) -> None:
    code = owner_code(rig)
    decision = typed(rig, code)
    assert decision.granted and decision.person.startswith("offline:") and decision.method == "pin"
    assert typed(rig, code).reason == "uses-exhausted"
    again = build(tmp_path / "data")  # restarted: the spent code is on disk
    assert typed(again, code).reason == "uses-exhausted"
    many = owner_code(rig, kind="multi")
    assert typed(again, many).granted and typed(again, many).granted


def test_issue_16_an_offline_code_is_refused_outside_its_window_and_with_the_time_unknown(
    rig: Rig,
) -> None:
    later = owner_code(rig, hours=1, start=NOW + 7200)
    assert typed(rig, later).reason == "invalid-credential"  # counted toward L-20
    assert len(rig.policy.decider.lockout.failures) == 1
    rig.lock.wall.t = None
    assert typed(rig, owner_code(rig)).reason == "time-unknown"
    assert rig.unlocks() == 0


def test_issue_16_offline_codes_count_toward_the_lockout_and_are_refused_during_it(
    rig: Rig,
) -> None:
    code = owner_code(rig)
    for n in range(5):
        typed(rig, f"{n:010d}")
    assert typed(rig, code).reason == "lockout"
    rig.policy.clock.now += 181
    assert typed(rig, code).granted  # not spent by the refusal in the lockout
