"""The phone-key protocol's bytes (issue 16, L-32, L-34): frames, grants, chunks, offline
codes; the parsers fuzzed with Hypothesis (any bytes: a value or a refusal with a reason,
never another exception)."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example, given
from hypothesis import strategies as st

from hw.ble import FrameError, Reassembler, chunks
from proto import offline_codes as offline
from proto import phonekey
from proto.phonekey import MAX_MESSAGE, Answer, Grant, Refused

LOCK_ID = bytes.fromhex("0123456789abcdef")
OWNER = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
VISITOR = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
NONCE = bytes(16)


def grant(**fields) -> Grant:
    base = dict(lock_id=LOCK_ID, grant_id=b"g" * 8, visitor_key=phonekey.public_bytes(VISITOR),
                not_before=1_800_000_000, not_after=1_800_003_600, max_uses=2, rights=1,
                label="alice")  # fmt: skip
    return phonekey.sign_grant(OWNER, Grant(**{**base, **fields}))


def visitor_answer(action: phonekey.Action = "unlock", g: Grant | None = None) -> Answer:
    g = g or grant()
    return phonekey.sign_answer(VISITOR, LOCK_ID, Answer(action, "visitor", NONCE, g.encode()))


def owner_answer(action: phonekey.Action = "unlock", target: bytes = b"") -> Answer:
    unsigned = Answer(action, "owner", NONCE, phonekey.public_bytes(OWNER), target)
    return phonekey.sign_answer(OWNER, LOCK_ID, unsigned)


# -- grants and answers ---------------------------------------------------------------------
def test_l34_issue_16_a_grant_round_trips_and_only_the_owners_signature_verifies_it() -> None:
    g = grant()
    assert len(g.encode()) == phonekey.GRANT_BYTES == 140
    back = phonekey.decode_grant(g.encode())
    assert back == g and back.signed_by(phonekey.public_bytes(OWNER))
    assert not back.signed_by(phonekey.public_bytes(VISITOR))
    tampered = bytearray(g.encode())
    tampered[phonekey.GRANT_BODY.size - 17] ^= 2  # the rights byte: unlock becomes lock+unlock
    assert not phonekey.decode_grant(bytes(tampered)).signed_by(phonekey.public_bytes(OWNER))


def test_l32_issue_16_an_answer_round_trips_and_its_signature_binds_nonce_action_and_lock() -> None:
    a = owner_answer()
    back = phonekey.decode_answer(a.encode())
    assert back == a
    owner = phonekey.public_bytes(OWNER)
    assert phonekey.verifies(owner, back.signature, back.signed_part(LOCK_ID))
    other_lock = bytes(8)
    assert not phonekey.verifies(owner, back.signature, back.signed_part(other_lock))
    for changed in (
        Answer("lock", "owner", NONCE, owner),
        Answer("unlock", "owner", b"n" * 16, owner),
    ):
        assert not phonekey.verifies(owner, a.signature, changed.signed_part(LOCK_ID))
    assert len(visitor_answer().encode()) == 226  # 12 chunks at the default MTU


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "truncated"),
        (owner_answer().encode()[:-1], "truncated"),
        (owner_answer().encode() + b"x", "malformed"),  # a signature of 65 bytes
        (owner_answer().encode() + bytes(MAX_MESSAGE), "oversized"),
        (bytes([0x02, 9]) + owner_answer().encode()[2:], "version"),
        (bytes([0x02, 1, 7]) + owner_answer().encode()[3:], "unknown-action"),
        (bytes([0x02, 1, 1, 9]) + owner_answer().encode()[4:], "unknown-kind"),
        (bytes([0x05]) + owner_answer().encode()[1:], "malformed"),
        (owner_answer(target=b"x" * 8).encode(), "malformed"),  # an unlock takes no target
    ],
)
def test_issue_16_bad_answers_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        phonekey.decode_answer(data)
    assert refused.value.reason == reason


@given(st.binary(max_size=600))
@example(bytes([0x02, 1, 1, 2]) + bytes(16) + bytes([140]) + bytes(140) + bytes([0]) + bytes(64))
def test_issue_16_any_bytes_are_an_answer_or_a_refusal_with_a_reason(data: bytes) -> None:
    try:
        answer = phonekey.decode_answer(data)
    except Refused as r:
        assert r.reason in {"truncated", "oversized", "malformed", "version", "unknown-action",
                            "unknown-kind"}  # fmt: skip
        return
    assert answer.encode() == data  # what was read is all there was
    if answer.kind == "visitor":
        try:
            answer.grant()
        except Refused as r:
            assert r.reason in {"malformed", "version"}


@given(st.integers(0, 225), st.integers(0, 255))
def test_issue_16_one_changed_byte_of_a_signed_answer_never_verifies(at: int, flip: int) -> None:
    data = bytearray(visitor_answer().encode())
    data[at] ^= flip or 1
    try:
        a = phonekey.decode_answer(bytes(data))
        g = a.grant()
    except Refused:
        return
    owner = phonekey.public_bytes(OWNER)
    assert not (g.signed_by(owner) and phonekey.verifies(g.visitor_key, a.signature,
                                                          a.signed_part(LOCK_ID)))  # fmt: skip


@given(st.binary(max_size=200))
def test_issue_16_any_bytes_are_a_grant_or_a_refusal(data: bytes) -> None:
    try:
        phonekey.decode_grant(data)
    except Refused as r:
        assert r.reason in {"malformed", "version"}


# -- chunks -----------------------------------------------------------------------------------
@given(st.binary(min_size=1, max_size=MAX_MESSAGE), st.integers(23, 517))
def test_issue_16_any_message_survives_chunking_at_any_mtu(message: bytes, mtu: int) -> None:
    parts = chunks(message, mtu)
    assert all(len(p) <= mtu - 3 for p in parts)
    asm = Reassembler()
    assert [asm.feed(p) for p in parts] == [None] * (len(parts) - 1) + [message]


@given(st.lists(st.binary(max_size=30), max_size=40))
def test_issue_16_any_chunks_make_messages_or_refusals_with_a_reason(writes: list[bytes]) -> None:
    asm = Reassembler()
    for w in writes:
        try:
            message = asm.feed(w)
        except FrameError as e:
            assert e.reason in {"empty", "out-of-order", "oversized"}
            continue
        assert message is None or len(message) <= MAX_MESSAGE


def test_issue_16_truncated_out_of_order_and_oversized_chunks_are_refused() -> None:
    parts = chunks(os.urandom(100), 23)
    asm = Reassembler()
    asm.feed(parts[0])
    with pytest.raises(FrameError, match="out-of-order"):
        asm.feed(parts[2])
    with pytest.raises(FrameError, match="empty"):
        asm.feed(b"")
    big = Reassembler()
    with pytest.raises(FrameError, match="oversized"):
        for p in chunks(os.urandom(MAX_MESSAGE + 40), 64):
            big.feed(p)
    assert asm.feed(parts[0]) is None  # a new message starts over at index 0


# -- offline codes ----------------------------------------------------------------------------
SECRET = bytes(range(32))


def test_issue_16_an_offline_code_is_ten_digits_valid_only_in_its_window() -> None:
    start = offline.hour_of(1_800_000_000)
    spec = offline.CodeSpec(start, 4, "once", 0)
    digits = offline.code(SECRET, spec)
    assert len(digits) == 10 and digits.isdigit()
    for hour in range(start - 2, start + 6):
        table = offline.table(SECRET, hour)
        assert (spec in table.get(digits, [])) == (start <= hour < start + 4), hour
    assert offline.code(bytes(32), spec) != digits  # another secret, another code
    assert offline.code(SECRET, offline.CodeSpec(start, 4, "once", 1)) != digits


def test_issue_16_every_hour_holds_exactly_the_stated_number_of_candidates() -> None:
    """The figure the README states: 1,392 codes valid in any hour, so a random ten-digit
    entry is valid with chance 1.392e-7, and five entries (then L-20's lockout) 7.0e-7."""
    specs = list(offline.valid_during(500_000))
    assert len(specs) == len(set(specs)) == offline.CANDIDATES == 1392
    assert all(s.holds(500_000 * 3600) for s in specs)
    assert offline.chance_per_entry() == pytest.approx(1.392e-7)
    assert 5 * offline.chance_per_entry() <= 1e-6
    assert len(offline.table(SECRET, 500_000)) >= 1380  # a few collisions at most
