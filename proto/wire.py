"""The wire format: a versioned msgpack envelope around a typed body, checked on receipt."""

from __future__ import annotations

import dataclasses
import math
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

import msgpack

from proto.schema import REGISTRY, Message, SchemaError

# 2: the envelope carries the sender's session and a request's expiry (issue 11).
PROTOCOL_VERSION = 2
MAX_MESSAGE_BYTES = 64 * 1024
MAX_REQUEST_LIFE_S = 600.0  # a request may not ask to stay valid longer than this

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
    "unauthorized",  # the trust table (proto/trust.py) forbids this peer this type
    "unexpected",  # a known type this receiver does not handle
    "handler-error",  # a handler raised: a bug, logged with its traceback
    "expired",  # a request received after its expiry
    "replayed",  # not newer than the last seen in its session, or from a stale session
    "unknown-key",  # a connection refused: its CURVE key is not in the lock's key folder
)

_ENVELOPE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "type": str,
    "sender": str,
    "session": str,
    "seq": int,
    "wall": (float, int),
    "mono": (float, int),
    "expires": (float, int, type(None)),
    "id": str,
    "cause": (str, type(None)),
    "body": dict,
}
_ENVELOPE_KEYS = frozenset(_ENVELOPE_FIELDS)
SESSIONS_KEPT = 256  # sessions parsed once and kept (a few per peer); more: start again


class WireError(ValueError):
    """A message that cannot be accepted; reason is one of DROP_REASONS."""

    def __init__(self, reason: str, detail: str, *, answer_to: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail
        # the id of a request whose envelope was sound, so its sender can be told why
        self.answer_to = answer_to


def _boot_id() -> str:
    """This boot of the machine: every process of the mesh shares it and its monotonic clock."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        return "0" * 12  # not Linux: sessions are still ordered by their start


BOOT = _boot_id()


@dataclasses.dataclass(frozen=True)
class Session:
    """A sender's series of sequence numbers, opened when its Stamper is made.

    A restarted sender opens a new series, which starts later on CLOCK_MONOTONIC (one
    clock for the whole machine on Linux): a receiver can tell it from a replay of the
    old one. A series from another boot is stale whatever its start.
    """

    boot: str
    start: int  # CLOCK_MONOTONIC at opening, in ns
    nonce: str  # two series opened in the same nanosecond are still two

    @classmethod
    def open(cls, mono_ns: Callable[[], int] = time.monotonic_ns) -> "Session":
        return cls(BOOT, mono_ns(), secrets.token_hex(4))

    @classmethod
    def parse(cls, text: str) -> "Session":
        """The wire's form back; ValueError if it is not one."""
        boot, start, nonce = text.split(".")
        if not (boot and nonce and len(text) <= 64):
            raise ValueError(text)
        return cls(boot, int(start, 16), nonce)

    def __str__(self) -> str:
        return f"{self.boot}.{self.start:x}.{self.nonce}"


M = TypeVar("M", bound=Message)


@dataclasses.dataclass(frozen=True)
class Envelope(Generic[M]):
    """One message as it travels: who sent it, when, in answer to what.

    Generic in its body, so a handler can say `env: Envelope[MenuOpen]` and be checked.
    """

    topic: str
    sender: str
    seq: int
    wall: float
    mono: float
    id: str
    cause: str | None
    body: M
    v: int = PROTOCOL_VERSION
    session: Session = Session(BOOT, 0, "-")
    expires: float | None = None  # a request's deadline on CLOCK_MONOTONIC; None otherwise

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
    """Stamps outgoing messages of one sender with its session, a sequence and the clocks."""

    def __init__(
        self,
        sender: str,
        *,
        channel: str = "",
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender, self.channel, self._wall, self._mono = sender, channel, wall, mono
        self.seq = 0
        self.session = Session.open()

    def stamp(
        self, body: Message, cause: str | None = None, *, timeout: float | None = None
    ) -> Envelope[Message]:
        """The next envelope; a request gives its timeout, which becomes its expiry."""
        self.seq += 1
        mono = self._mono()
        return Envelope(
            topic=body.topic(self.sender),
            sender=self.sender,
            seq=self.seq,
            wall=self._wall(),
            mono=mono,
            id=f"{self.sender}-{self.session.nonce}-{self.channel}{self.seq}",
            cause=cause,
            body=body,
            session=self.session,
            expires=None if timeout is None else mono + timeout,
        )


def fields(env: Envelope[Message], body: dict[str, Any]) -> dict[str, Any]:
    """The envelope as a map around a given body (the wire's, or a redacted one)."""
    return {
        "v": env.v,
        "type": env.type,
        "sender": env.sender,
        "session": str(env.session),
        "seq": env.seq,
        "wall": env.wall,
        "mono": env.mono,
        "expires": env.expires,
        "id": env.id,
        "cause": env.cause,
        "body": body,
    }


def encode(env: Envelope[Message]) -> list[bytes]:
    """Two frames: the topic (for SUB prefix filters), then the packed envelope."""
    packed = msgpack.packb(fields(env, env.body.to_body()), use_bin_type=True)
    return [env.topic.encode(), packed]


def decode(frames: list[bytes], *, max_bytes: int = MAX_MESSAGE_BYTES) -> Envelope[Message]:
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
        raise WireError("unknown-type", repr(raw["type"])[:80], answer_to=raw["id"])
    try:
        body = cls.from_body(raw["body"])
    except SchemaError as e:
        raise WireError("bad-field", f"{raw['type']}: {e}", answer_to=raw["id"]) from None
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
        session=_session(raw["session"]),
        expires=None if raw["expires"] is None else float(raw["expires"]),
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
    if _sound(raw):  # every message the mesh sends: checked at a fraction of the cost
        return
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
    for name in ("wall", "mono", "expires"):
        if raw[name] is not None and not math.isfinite(raw[name]):
            raise WireError("envelope", f"{name} is {raw[name]}")  # NaN would never expire


def _sound(raw: dict[str, Any]) -> bool:
    """True when raw is an envelope _check_envelope accepts, tested on the exact types
    msgpack gives (so no bool passes for an int); False sends it through the checks
    field by field, which name what is wrong."""
    expires, cause = raw.get("expires"), raw.get("cause")
    return (
        raw.keys() == _ENVELOPE_KEYS
        and type(raw["v"]) is int
        and raw["v"] == PROTOCOL_VERSION
        and type(raw["type"]) is str
        and type(raw["sender"]) is str
        and type(raw["session"]) is str
        and type(raw["seq"]) is int
        and type(raw["id"]) is str
        and type(raw["body"]) is dict
        and (cause is None or type(cause) is str)
        and _finite(raw["wall"])
        and _finite(raw["mono"])
        and (expires is None or _finite(expires))
    )


def _finite(value: Any) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


_sessions: dict[str, Session] = {}


def _session(text: str) -> Session:
    """The sender's session, parsed once: every message of a session names it."""
    session = _sessions.get(text)
    if session is not None:
        return session
    try:
        session = Session.parse(text)
    except ValueError:
        raise WireError("envelope", f"session {text[:40]!r} is not boot.start.nonce") from None
    if len(_sessions) >= SESSIONS_KEPT:  # forged sessions by the thousand: bounded
        _sessions.clear()
    _sessions[text] = session
    return session


def _topic(topic_b: bytes) -> str:
    try:
        return topic_b.decode()
    except UnicodeDecodeError:
        raise WireError("garbage", "topic is not UTF-8") from None
