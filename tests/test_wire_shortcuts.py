"""Decoding's shortcuts (issue 12 item 6) accept exactly what the full checks accept.

proto/wire.py checks a sound envelope in one expression before the field-by-field checks,
and keeps the sessions it parsed; proto/schema.py passes a value of exactly its field's
type at once. Each is compared here with the path it shortens, on envelopes and values of
every kind: the same envelope, or the same refusal with the same reason and detail.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import schema, wire
from proto.board import Bolt
from proto.keypad import Key
from proto.policy import VerifyPasscode
from proto.schema import MAX_TEXT, SchemaError
from proto.wire import BOOT, PROTOCOL_VERSION, Envelope, WireError, decode

SENDER = "keypad"
INTS = st.integers(-(2**63), 2**64 - 1)  # what msgpack packs
FIELDS = ("v", "type", "sender", "session", "seq", "wall", "mono", "expires", "id", "cause",
          "body")  # fmt: skip
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=8),
    st.sampled_from([PROTOCOL_VERSION, f"{BOOT}.2a.0badcafe", "a.b.c", "keypad", 0, 1.0]),
    st.lists(INTS, max_size=2),
    st.dictionaries(st.text(max_size=3), INTS, max_size=2),
)
MESSAGES = st.sampled_from(
    [VerifyPasscode(entry="246813"), Key(key="digit"), Bolt(state="unlocked", reason="x")]
)


def raw_envelope(body: Any) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION, "type": body.TYPE, "sender": SENDER,
        "session": f"{BOOT}.2a.0badcafe", "seq": 7, "wall": 1.7e9, "mono": 12.25,
        "expires": 14.25, "id": f"{SENDER}-abc-7", "cause": None, "body": body.to_body(),
    }  # fmt: skip


@st.composite
def envelopes(draw: st.DrawFn) -> list[bytes]:
    """Sound envelopes with up to three fields replaced, added or dropped."""
    message = draw(MESSAGES)
    raw: dict[Any, Any] = raw_envelope(message)
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.sampled_from(("replace", "drop", "add")))
        name = draw(st.sampled_from(FIELDS))
        if change == "replace":
            raw[name] = draw(VALUES)
        elif change == "drop":
            raw.pop(name, None)
        else:
            raw[draw(st.text(max_size=6) | INTS)] = draw(VALUES)
    return [message.topic(SENDER).encode(), msgpack.packb(raw, use_bin_type=True)]


def outcome(frames: list[bytes]) -> Envelope[Any] | tuple[str, str]:
    try:
        return decode(frames)
    except WireError as e:
        return e.reason, e.detail


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=envelopes())
def test_issue_12_the_sound_envelope_shortcut_decides_as_the_full_checks(frames):
    wire._sessions.clear()
    quick = outcome(frames)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(wire, "_sound", lambda raw: False)  # every field checked one by one
        m.setattr(wire, "_sessions", {})
        full = outcome(frames)
    assert quick == full


def test_issue_12_the_shortcut_takes_what_the_mesh_sends():
    taken: list[bool] = []
    sound = wire._sound
    for over in ({}, {"cause": "keypad-abc-e3"}, {"expires": None}, {"wall": 1700000000}):
        raw = {**raw_envelope(VerifyPasscode(entry="246813")), **over}
        taken.append(sound(raw))
    assert all(taken)
    assert not sound({**raw_envelope(Key(key="digit")), "seq": True})  # a bool is no int
    assert not sound({**raw_envelope(Key(key="digit")), "mono": math.nan})


def test_issue_12_sessions_are_parsed_once_and_kept_within_bounds():
    wire._sessions.clear()
    raw = raw_envelope(Key(key="digit"))
    first = decode([b"keypad.keypad.key", msgpack.packb(raw)])
    again = decode([b"keypad.keypad.key", msgpack.packb({**raw, "seq": 8})])
    assert first.session is again.session and str(first.session) == raw["session"]
    for n in range(wire.SESSIONS_KEPT + 5):  # a peer forging sessions by the thousand
        forged = {**raw, "session": f"{BOOT}.{n:x}.0badcafe"}
        decode([b"keypad.keypad.key", msgpack.packb(forged)])
    assert len(wire._sessions) <= wire.SESSIONS_KEPT
    bad = {**raw, "session": "boot.not-hex.nonce"}
    with pytest.raises(WireError) as caught:
        decode([b"keypad.keypad.key", msgpack.packb(bad)])
    assert caught.value.reason == "envelope"


# -- a body's scalar fields -------------------------------------------------------------------
def reference(name: str, value: Any, kind: type) -> None:
    """The scalar check without its shortcut, as it was before issue 12's item 6."""
    schema._expect(name, value, kind)
    if isinstance(value, (str, bytes)) and len(value) > MAX_TEXT:
        raise SchemaError(f"{name}: {len(value)} long, at most {MAX_TEXT}")


def verdict(check: Any, *args: Any) -> tuple[str, str] | None:
    try:
        check(*args)
    except SchemaError as e:
        return type(e).__name__, str(e)
    return None


SCALARS = st.one_of(
    VALUES,
    st.text(min_size=MAX_TEXT, max_size=MAX_TEXT + 1),
    st.binary(min_size=MAX_TEXT, max_size=MAX_TEXT + 1),
)


@settings(max_examples=1500, deadline=None)
@given(kind=st.sampled_from([str, int, float, bool, bytes, type(None)]), value=SCALARS)
def test_issue_12_a_scalar_fields_shortcut_decides_as_its_full_check(kind, value):
    assert verdict(schema._scalar(kind), "f", value) == verdict(reference, "f", value, kind)
