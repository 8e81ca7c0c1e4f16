"""The wire: encode→decode gives back the envelope; each bad input is a WireError and its reason."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto.messages import REGISTRY
from proto.policy import VerifyPasscode
from proto.schema import MAX_TEXT, Message
from proto.wire import (
    BOOT,
    DROP_REASONS,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Envelope,
    Session,
    Stamper,
    WireError,
    decode,
    encode,
)
from tests.test_proto_schema import (
    ANY,
    ANY_MESSAGE,
    CHOICE_FIELDS,
    RANGE_FIELDS,
    REQUIRED_FIELDS,
    TYPED_FIELDS,
    TYPES,
    field_of,
    hints,
    messages,
    minimal_body,
    wrong_value,
)

SENDER = "keypad"


def raw_envelope(message: Message | None = None, **over: Any) -> dict[str, Any]:
    """The envelope map as encode() packs it, with fields replaced or (value ...) removed."""
    message = message or VerifyPasscode(entry="00135790")
    raw = {
        "v": PROTOCOL_VERSION,
        "type": message.TYPE,
        "sender": SENDER,
        "session": f"{BOOT}.2a.0badcafe",
        "seq": 7,
        "wall": 1700000000.5,
        "mono": 12.25,
        "expires": 14.25,
        "id": f"{SENDER}-abc-7",
        "cause": None,
        "body": message.to_body(),
    }
    raw.update(over)
    return raw


def frames_of(raw: Any, topic: str | None = None) -> list[bytes]:
    if topic is None:
        cls = REGISTRY.get(raw.get("type")) if isinstance(raw, dict) else None
        topic = cls(**minimal_body(cls)).topic(SENDER) if cls else "x"
    return [topic.encode(), msgpack.packb(raw, use_bin_type=True)]


def reason(frames: list[bytes], **kw: Any) -> str:
    with pytest.raises(WireError) as caught:
        decode(frames, **kw)
    assert caught.value.reason in DROP_REASONS
    return caught.value.reason


# -- round trip ---------------------------------------------------------------------------
def test_encode_gives_topic_then_envelope() -> None:
    env = Stamper(SENDER).stamp(VerifyPasscode(entry="135790"))
    topic, packed = encode(env)
    assert topic == b"policy.keypad.verify_code"
    assert msgpack.unpackb(packed)["body"] == {"entry": "135790"}


@pytest.mark.parametrize("type_name", TYPES)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_round_trip_every_type(type_name: str, data: st.DataObject) -> None:
    message = data.draw(messages(REGISTRY[type_name]))
    cause = data.draw(st.none() | st.text(max_size=20))
    env = Stamper(SENDER).stamp(message, cause=cause)
    back = decode(encode(env))
    assert back == env
    assert back.body == message and type(back.body) is type(message)


@settings(max_examples=100, deadline=None)
@given(
    message=ANY_MESSAGE,
    sender=st.text(st.characters(codec="utf-8", exclude_characters="."), min_size=1, max_size=12),
    channel=st.text(max_size=5),
    wall=st.floats(0, 4e9),
    mono=st.floats(0, 1e7),
)
def test_round_trip_keeps_the_envelope(
    message: Message, sender: str, channel: str, wall: float, mono: float
) -> None:
    stamper = Stamper(sender, channel=channel, wall=lambda: wall, mono=lambda: mono)
    first, second = stamper.stamp(message), stamper.stamp(message, cause="x-1", timeout=2.5)
    for env in (first, second):
        back = decode(encode(env))
        assert (
            back.topic,
            back.sender,
            back.session,
            back.seq,
            back.wall,
            back.mono,
            back.expires,
            back.id,
            back.cause,
            back.v,
            back.body,
        ) == (
            env.topic,
            sender,
            stamper.session,
            env.seq,
            wall,
            mono,
            env.expires,
            env.id,
            env.cause,
            PROTOCOL_VERSION,
            message,
        )
    assert (first.seq, second.seq) == (1, 2)
    assert first.id != second.id
    assert (first.expires, second.expires) == (None, mono + 2.5)  # a request's expiry


def test_a_new_stamper_opens_a_later_session_of_this_boot() -> None:
    """Issue 11: a restarted sender's series is told from its old one by its start."""
    old, new = Stamper(SENDER).session, Stamper(SENDER).session
    assert old.boot == new.boot == BOOT
    assert new.start > old.start and new.nonce != old.nonce
    assert Session.parse(str(new)) == new


def test_trace_is_the_cause_or_the_id() -> None:
    stamper = Stamper(SENDER)
    env = stamper.stamp(VerifyPasscode(entry="1"))
    assert env.trace == env.id
    assert stamper.stamp(VerifyPasscode(entry="1"), cause="policy-1").trace == "policy-1"


# -- garbage ------------------------------------------------------------------------------
@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_garbage_bytes_are_refused(junk: bytes) -> None:
    # 0xc1 is never used in msgpack: whatever follows, this is not a message.
    assert reason([b"policy.keypad.verify_code", b"\xc1" + junk]) == "garbage"


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_random_bytes_are_garbage_or_a_bad_envelope(junk: bytes) -> None:
    assert reason([b"policy.keypad.verify_code", junk]) in ("garbage", "envelope", "version")


def test_truncated_message_is_garbage() -> None:
    topic, packed = frames_of(raw_envelope())
    assert reason([topic, packed[:-3]]) == "garbage"
    assert reason([topic, packed + b"\x00"]) == "garbage"  # trailing bytes


@pytest.mark.parametrize("count", [0, 1, 3, 4])
def test_wrong_number_of_frames_is_garbage(count: int) -> None:
    topic, packed = frames_of(raw_envelope())
    frames = ([topic, packed] * 2)[:count]
    assert reason(frames) == "garbage"


def test_topic_that_is_not_utf8_is_garbage() -> None:
    assert reason([b"\xff\xfe", frames_of(raw_envelope())[1]]) == "garbage"


# -- envelope -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [[1, 2], "text", 3, None, b"bytes", 1.5, True])
def test_envelope_that_is_not_a_map_is_refused(value: Any) -> None:
    assert reason(frames_of(value, topic="policy.keypad.verify_code")) == "envelope"


ENVELOPE_FIELDS = (
    "v",
    "type",
    "sender",
    "session",
    "seq",
    "wall",
    "mono",
    "expires",
    "id",
    "cause",
    "body",
)


@pytest.mark.parametrize("name", ENVELOPE_FIELDS)
def test_missing_envelope_field_is_refused(name: str) -> None:
    raw = raw_envelope()
    del raw[name]
    assert reason(frames_of(raw, topic="policy.keypad.verify_code")) == "envelope"


MISTYPED = [
    ("v", "1"),
    ("v", 1.0),
    ("v", True),
    ("v", False),
    ("v", None),
    ("type", 3),
    ("type", None),
    ("sender", b"keypad"),
    ("sender", None),
    ("seq", "7"),
    ("seq", 7.0),
    ("seq", True),
    ("wall", "now"),
    ("wall", None),
    ("wall", False),
    ("mono", "now"),
    ("mono", True),
    ("session", 5),
    ("session", None),
    ("session", "one-part"),
    ("session", "boot.not-hex.nonce"),
    ("session", "boot.2a."),
    ("expires", "soon"),
    ("expires", True),
    ("wall", float("nan")),
    ("mono", float("inf")),
    ("expires", float("nan")),  # a NaN expiry would never expire
    ("expires", float("inf")),
    ("id", 5),
    ("cause", 5),
    ("cause", b"x"),
    ("body", ["entry"]),
    ("body", None),
]


@pytest.mark.parametrize("name,value", MISTYPED)
def test_mistyped_envelope_field_is_refused(name: str, value: Any) -> None:
    raw = raw_envelope(**{name: value})
    assert reason(frames_of(raw, topic="policy.keypad.verify_code")) == "envelope"


def test_unknown_envelope_field_is_refused() -> None:
    raw = raw_envelope(extra=1)
    assert reason(frames_of(raw)) == "envelope"


def test_int_clocks_are_accepted_as_floats() -> None:
    env = decode(frames_of(raw_envelope(wall=1700000000, mono=3)))
    assert (env.wall, env.mono) == (1700000000.0, 3.0)


@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, -1, 99])
def test_other_protocol_version_is_refused(version: int) -> None:
    assert reason(frames_of(raw_envelope(v=version))) == "version"


def test_other_version_is_told_apart_even_when_its_envelope_differs() -> None:
    raw = {"v": PROTOCOL_VERSION + 1, "kind": "something new"}
    assert reason(frames_of(raw, topic="x")) == "version"


@pytest.mark.parametrize("type_name", ["policy.nothing", "", "verify_code", "POLICY.VERIFY_CODE"])
def test_unknown_type_is_refused(type_name: str) -> None:
    raw = raw_envelope(type=type_name)
    assert reason(frames_of(raw, topic="policy.keypad.verify_code")) == "unknown-type"


# -- body ---------------------------------------------------------------------------------
def body_frames(type_name: str, body: dict[str, Any]) -> list[bytes]:
    cls = REGISTRY[type_name]
    return frames_of(raw_envelope(cls(**minimal_body(cls)), body=body))


@pytest.mark.parametrize("type_name", TYPES)
def test_minimal_body_of_every_type_is_accepted(type_name: str) -> None:
    env = decode(body_frames(type_name, minimal_body(REGISTRY[type_name])))
    assert env.type == type_name


@pytest.mark.parametrize("type_name,name", TYPED_FIELDS)
def test_wrong_field_type_is_bad_field(type_name: str, name: str) -> None:
    cls = REGISTRY[type_name]
    body = minimal_body(cls) | {name: wrong_value(hints(cls)[name])}
    assert reason(body_frames(type_name, body)) == "bad-field"


@pytest.mark.parametrize("type_name,name", REQUIRED_FIELDS)
def test_missing_required_field_is_bad_field(type_name: str, name: str) -> None:
    body = minimal_body(REGISTRY[type_name])
    del body[name]
    assert reason(body_frames(type_name, body)) == "bad-field"


@pytest.mark.parametrize("type_name", TYPES)
def test_unknown_field_is_bad_field(type_name: str) -> None:
    body = minimal_body(REGISTRY[type_name]) | {"surprise": "!"}
    assert reason(body_frames(type_name, body)) == "bad-field"


@pytest.mark.parametrize("type_name,name", CHOICE_FIELDS)
def test_value_not_in_choices_is_bad_field(type_name: str, name: str) -> None:
    body = minimal_body(REGISTRY[type_name]) | {name: "no-such-choice"}
    assert reason(body_frames(type_name, body)) == "bad-field"


@pytest.mark.parametrize("type_name,name", RANGE_FIELDS)
def test_value_out_of_range_is_bad_field(type_name: str, name: str) -> None:
    low, high = field_of(type_name, name).metadata["range"]
    for value in (low - 1, high + 1, float("inf"), float("nan")):
        body = minimal_body(REGISTRY[type_name]) | {name: value}
        assert reason(body_frames(type_name, body)) == "bad-field"


def test_overlong_text_in_a_body_is_bad_field() -> None:
    frames = frames_of(raw_envelope(body={"entry": "1" * (MAX_TEXT + 1)}))
    assert reason(frames) == "bad-field"


# -- size ---------------------------------------------------------------------------------
def test_oversized_message_is_refused() -> None:
    from proto.keypad import Prompt

    big = Prompt(prompt="p", text="t", params={str(i): "x" * 4000 for i in range(20)})
    frames = encode(Stamper(SENDER).stamp(big))  # every field is valid, the whole is too big
    assert len(frames[0]) + len(frames[1]) > MAX_MESSAGE_BYTES
    assert reason(frames) == "oversized"


def test_size_limit_counts_both_frames_and_is_inclusive() -> None:
    frames = encode(Stamper(SENDER).stamp(VerifyPasscode(entry="135790")))
    size = len(frames[0]) + len(frames[1])
    assert decode(frames, max_bytes=size).body == VerifyPasscode(entry="135790")
    assert reason(frames, max_bytes=size - 1) == "oversized"
    assert reason(frames, max_bytes=len(frames[1])) == "oversized"


def test_oversized_is_decided_before_unpacking() -> None:
    assert reason([b"t", b"\xc1" * 100], max_bytes=50) == "oversized"


# -- topic --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "topic",
    [
        "policy.motor.verify_code",  # another sender than the envelope's
        "policy.keypad.check_code",  # another event
        "keypad.keypad.verify_code",  # another family
        "policy.keypad.verify_code.",
        "",
    ],
)
def test_topic_not_matching_the_envelope_is_refused(topic: str) -> None:
    frames = encode(Stamper(SENDER).stamp(VerifyPasscode(entry="135790")))
    assert reason([topic.encode(), frames[1]]) == "topic"


# -- nothing but WireError ----------------------------------------------------------------
def mutated_envelopes() -> st.SearchStrategy[list[bytes]]:
    """Valid envelopes with one field (or one body field) replaced by anything."""

    @st.composite
    def build(draw: st.DrawFn) -> list[bytes]:
        message = draw(ANY_MESSAGE)
        raw = raw_envelope(message)
        target = draw(st.sampled_from(ENVELOPE_FIELDS + ("body-field", "drop")))
        if target == "body-field" and raw["body"]:
            raw["body"][draw(st.sampled_from(sorted(raw["body"])))] = draw(ANY)
        elif target == "drop":
            raw.pop(draw(st.sampled_from(ENVELOPE_FIELDS)))
        elif target != "body-field":
            raw[target] = draw(ANY)
        topic = draw(st.just(message.topic(SENDER)) | st.text(max_size=30))
        return [topic.encode(), msgpack.packb(raw, use_bin_type=True)]

    return build()


FRAMES = st.one_of(
    st.lists(st.binary(max_size=64), max_size=4),
    st.tuples(
        st.binary(max_size=40), st.builds(lambda v: msgpack.packb(v, use_bin_type=True), ANY)
    ).map(list),
    mutated_envelopes(),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FRAMES)
def test_decode_raises_nothing_but_wire_error(frames: list[bytes]) -> None:
    try:
        env = decode(frames)
    except WireError as e:
        assert e.reason in DROP_REASONS
    else:
        assert isinstance(env, Envelope) and env.type in REGISTRY
        assert env.topic == env.body.topic(env.sender)


def test_wire_error_names_reason_and_detail() -> None:
    e = WireError("topic", "mismatch")
    assert (e.reason, e.detail, str(e)) == ("topic", "mismatch", "topic: mismatch")


def test_envelope_is_frozen() -> None:
    env = Stamper(SENDER).stamp(VerifyPasscode(entry="1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.seq = 9  # type: ignore[misc]
