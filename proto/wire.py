"""The wire format: a versioned msgpack envelope around a typed body, checked on receipt."""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Any

import msgpack

from proto.schema import REGISTRY, Message, SchemaError

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024

# Why a message was dropped: stable names, counted per receiver and shown by `status`.
DROP_REASONS = (
    "garbage",  # not two frames, or not msgpack
    "envelope",  # envelope fields missing or of the wrong type
    "version",  # a protocol version this build does not speak
    "unknown-type",
    "bad-field",  # the body does not fit its type
    "oversized",
    "topic",  # the topic frame does not match the envelope
    "forged",  # sender differs from the authenticated peer
    "unauthorized",  # the peer may not send this command
    "unexpected",  # a known type this receiver does not handle
    "handler-error",  # a handler raised: a bug, logged with its traceback
)

_ENVELOPE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "type": str,
    "sender": str,
    "seq": int,
    "wall": (float, int),
    "mono": (float, int),
    "id": str,
    "cause": (str, type(None)),
    "body": dict,
}


class WireError(ValueError):
    """A message that cannot be accepted; reason is one of DROP_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclasses.dataclass(frozen=True)
class Envelope:
    """One message as it travels: who sent it, when, in answer to what."""

    topic: str
    sender: str
    seq: int
    wall: float
    mono: float
    id: str
    cause: str | None
    body: Message
    v: int = PROTOCOL_VERSION

    @property
    def type(self) -> str:
        return self.body.TYPE

    @property
    def trace(self) -> str:
        """The id to name as cause in what this message brings about.

        A request is invisible to the tap, so what it causes points past it, at the
        event that caused the request: the chain on the bus stays unbroken.
        """
        return self.cause or self.id


class Stamper:
    """Stamps outgoing messages of one sender with a sequence and the clocks."""

    def __init__(
        self, sender: str, *, channel: str = "", wall=time.time, mono=time.monotonic
    ) -> None:
        self.sender, self.channel, self._wall, self._mono = sender, channel, wall, mono
        self.seq = 0
        self._boot = secrets.token_hex(3)

    def stamp(self, body: Message, cause: str | None = None) -> Envelope:
        self.seq += 1
        return Envelope(
            topic=body.topic(self.sender),
            sender=self.sender,
            seq=self.seq,
            wall=self._wall(),
            mono=self._mono(),
            id=f"{self.sender}-{self._boot}-{self.channel}{self.seq}",
            cause=cause,
            body=body,
        )


def fields(env: Envelope, body: dict[str, Any]) -> dict[str, Any]:
    """The envelope as a map around a given body (the wire's, or a redacted one)."""
    return {
        "v": env.v,
        "type": env.type,
        "sender": env.sender,
        "seq": env.seq,
        "wall": env.wall,
        "mono": env.mono,
        "id": env.id,
        "cause": env.cause,
        "body": body,
    }


def encode(env: Envelope) -> list[bytes]:
    """Two frames: the topic (for SUB prefix filters), then the packed envelope."""
    packed = msgpack.packb(fields(env, env.body.to_body()), use_bin_type=True)
    return [env.topic.encode(), packed]


def decode(frames: list[bytes], *, max_bytes: int = MAX_MESSAGE_BYTES) -> Envelope:
    """Check and decode two frames; raise WireError with the reason to count."""
    if len(frames) != 2:
        raise WireError("garbage", f"{len(frames)} frames, expected 2")
    topic_b, packed = frames
    if len(packed) + len(topic_b) > max_bytes:
        raise WireError("oversized", f"{len(packed) + len(topic_b)} bytes > {max_bytes}")
    raw = _unpack(packed)
    _check_envelope(raw)
    cls = REGISTRY.get(raw["type"])
    if cls is None:
        raise WireError("unknown-type", repr(raw["type"])[:80])
    try:
        body = cls.from_body(raw["body"])
    except SchemaError as e:
        raise WireError("bad-field", f"{raw['type']}: {e}") from None
    env = Envelope(
        topic=_topic(topic_b),
        sender=raw["sender"],
        seq=raw["seq"],
        wall=float(raw["wall"]),
        mono=float(raw["mono"]),
        id=raw["id"],
        cause=raw["cause"],
        body=body,
        v=raw["v"],
    )
    if env.topic != body.topic(env.sender):
        raise WireError("topic", f"{env.topic!r} for {env.type} from {env.sender}")
    return env


def _unpack(packed: bytes) -> dict[str, Any]:
    try:
        raw = msgpack.unpackb(packed, raw=False, strict_map_key=True, max_bin_len=MAX_MESSAGE_BYTES)
    except Exception as e:  # msgpack raises several unrelated types on bad bytes
        raise WireError("garbage", f"not msgpack ({type(e).__name__})") from None
    if not isinstance(raw, dict):
        raise WireError("envelope", f"envelope is a {type(raw).__name__}, not a map")
    return raw


def _check_envelope(raw: dict[str, Any]) -> None:
    v = raw.get("v")
    if isinstance(v, int) and not isinstance(v, bool) and v != PROTOCOL_VERSION:
        raise WireError("version", f"protocol {v}, this build speaks {PROTOCOL_VERSION}")
    for name, kind in _ENVELOPE_FIELDS.items():
        value = raw.get(name)
        if name not in raw or not isinstance(value, kind) or isinstance(value, bool):
            raise WireError("envelope", f"field {name!r} missing or mistyped")
    extra = set(raw) - set(_ENVELOPE_FIELDS)
    if extra:
        raise WireError("envelope", f"unknown envelope fields {sorted(map(str, extra))}")


def _topic(topic_b: bytes) -> str:
    try:
        return topic_b.decode()
    except UnicodeDecodeError:
        raise WireError("garbage", "topic is not UTF-8") from None
