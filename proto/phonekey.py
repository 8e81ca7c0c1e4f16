"""The phone-key protocol (issue 16, L-32, L-34): its frames, visitor grants, signatures.

A phone key is an Ed25519 key pair (`cryptography`). The owner's public key is registered
with policy after the claim; a visitor's key is named in a *grant* the owner's key signs,
so the lock checks a visitor key by itself, never having been told of it. Every operation
is challenge-response: the lock sends a fresh nonce (policy's, single use, short-lived),
the phone signs it with the action and the lock's id.

Shared by the phone (ops/phone.py), the ble service (which only relays these bytes) and
policy, which parses and verifies them. Nothing here reads a clock or keeps state.

Frames, first byte the type (each then cut into ATT-sized chunks by hw/ble.py):
    phone -> lock  HELLO      01 ‖ version                      asks for a challenge
                   ANSWER     02 ‖ version ‖ action ‖ kind ‖ nonce 16 ‖ len ‖ credential
                                 ‖ len ‖ target ‖ signature 64
    lock -> phone  CHALLENGE  81 ‖ version ‖ lock id 8 ‖ nonce 16
                   RESULT     82 ‖ ok ‖ reason (ASCII, at most 40)
The answer's signature covers b"LOCKOPEN1" ‖ lock id ‖ the answer up to the signature;
a grant's covers b"LOCKGRANT1" ‖ its body. The context prefixes keep the two purposes
(and any later one) from ever verifying each other's bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = 1
LOCK_ID_BYTES, NONCE_BYTES, KEY_BYTES, SIG_BYTES = 8, 16, 32, 64
GRANT_ID_BYTES, LABEL_BYTES = 8, 16
MAX_MESSAGE = 512  # the longest message either side reassembles (a visitor's answer is 226 bytes)
MAX_REASON = 40

HELLO, ANSWER, CHALLENGE, RESULT = 0x01, 0x02, 0x81, 0x82
ACTIONS = {1: "unlock", 2: "lock", 3: "revoke"}
KINDS = {1: "owner", 2: "visitor"}
RIGHTS = {"unlock": 1, "lock": 2}  # a grant's rights: a bit each
OPEN_CONTEXT, GRANT_CONTEXT = b"LOCKOPEN1", b"LOCKGRANT1"
# version, lock id, grant id, visitor key, not before, not after, uses (0: any), rights, label
GRANT_BODY = struct.Struct(">B8s8s32sIIHB16s")
GRANT_BYTES = GRANT_BODY.size + SIG_BYTES  # 140
ANSWER_HEAD = struct.Struct(f">BBBB{NONCE_BYTES}s")  # type, version, action, kind, nonce

Action = Literal["unlock", "lock", "revoke"]


class Refused(ValueError):
    """Bytes or a signature the protocol refuses: a stable reason and a sentence."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


# -- keys ---------------------------------------------------------------------------------
def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether signature is public_key's over message; a key that is no point verifies
    nothing."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def key_flaw(public_key: bytes) -> str | None:
    """Why these bytes are no Ed25519 public key, or None."""
    if len(public_key) != KEY_BYTES:
        return f"a public key has {KEY_BYTES} bytes, not {len(public_key)}"
    try:
        Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        return "not an Ed25519 public key"
    return None


# -- grants -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """A visitor key, signed by the owner's: for one lock, a window [not_before, not_after)
    in epoch seconds, a number of unlocks (0: any) and rights (RIGHTS' bits)."""

    lock_id: bytes
    grant_id: bytes
    visitor_key: bytes
    not_before: int
    not_after: int
    max_uses: int
    rights: int
    label: str
    signature: bytes = b""

    def body(self) -> bytes:
        label = self.label.encode()[:LABEL_BYTES]
        return GRANT_BODY.pack(
            VERSION, self.lock_id, self.grant_id, self.visitor_key, self.not_before,
            self.not_after, self.max_uses, self.rights, label,
        )  # fmt: skip

    def encode(self) -> bytes:
        return self.body() + self.signature

    def signed_by(self, owner_key: bytes) -> bool:
        return verifies(owner_key, self.signature, GRANT_CONTEXT + self.body())

    def allows(self, action: str) -> bool:
        return bool(self.rights & RIGHTS.get(action, 0))


def sign_grant(owner: Ed25519PrivateKey, grant: Grant) -> Grant:
    """The grant with the owner's signature (done on the owner's phone, offline)."""
    signature = owner.sign(GRANT_CONTEXT + grant.body())
    return Grant(**{**grant.__dict__, "signature": signature})


def decode_grant(data: bytes) -> Grant:
    if len(data) != GRANT_BYTES:
        raise Refused("malformed", f"a grant has {GRANT_BYTES} bytes, not {len(data)}")
    version, lock_id, grant_id, key, start, end, uses, rights, label = GRANT_BODY.unpack(
        data[: GRANT_BODY.size]
    )
    if version != VERSION:
        raise Refused("version", f"grant version {version}, this lock reads {VERSION}")
    try:
        text = label.rstrip(b"\0").decode()
    except UnicodeDecodeError:
        raise Refused("malformed", "the grant's label is not UTF-8") from None
    if not 0 < rights < 4:
        raise Refused("malformed", f"rights {rights} grant nothing known")
    fields = (lock_id, grant_id, key, start, end, uses, rights, text)
    return Grant(*fields, signature=data[GRANT_BODY.size :])


# -- answers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """A phone's answer to a challenge: what it asks, with which credential (the owner's
    public key, or a grant), the challenge's nonce, and its signature over all of it."""

    action: str
    kind: str
    nonce: bytes
    credential: bytes
    target: bytes = b""  # revoke: a grant id (8 bytes) or a visitor key (32)
    signature: bytes = b""

    def unsigned(self) -> bytes:
        head = ANSWER_HEAD.pack(ANSWER, VERSION, _code(ACTIONS, self.action),
                                _code(KINDS, self.kind), self.nonce)  # fmt: skip
        return b"".join(
            (head, bytes([len(self.credential)]), self.credential,
             bytes([len(self.target)]), self.target)
        )  # fmt: skip

    def signed_part(self, lock_id: bytes) -> bytes:
        """What the phone signs: the context, the lock's id, the answer itself."""
        return OPEN_CONTEXT + lock_id + self.unsigned()

    def encode(self) -> bytes:
        return self.unsigned() + self.signature

    def grant(self) -> Grant:
        return decode_grant(self.credential)


def _code(table: dict[int, str], name: str) -> int:
    return next(code for code, known in table.items() if known == name)


def sign_answer(key: Ed25519PrivateKey, lock_id: bytes, answer: Answer) -> Answer:
    return Answer(**{**answer.__dict__, "signature": key.sign(answer.signed_part(lock_id))})


CREDENTIAL_BYTES = {"owner": KEY_BYTES, "visitor": GRANT_BYTES}
TARGET_BYTES = {"unlock": (0,), "lock": (0,), "revoke": (GRANT_ID_BYTES, KEY_BYTES)}


def decode_answer(data: bytes) -> Answer:
    """An answer's fields, each checked for size and meaning; Refused says what is wrong
    (`truncated`, `oversized`, `malformed`, `version`, `unknown-action`, `unknown-kind`)."""
    if len(data) > MAX_MESSAGE:
        raise Refused("oversized", f"{len(data)} bytes, at most {MAX_MESSAGE}")
    if len(data) < ANSWER_HEAD.size + 2 + SIG_BYTES:
        raise Refused("truncated", f"{len(data)} bytes is shorter than any answer")
    kind_byte, version, action, kind, nonce = ANSWER_HEAD.unpack_from(data)
    if kind_byte != ANSWER:
        raise Refused("malformed", f"type {kind_byte:#04x} is not an answer")
    if version != VERSION:
        raise Refused("version", f"answer version {version}, this lock reads {VERSION}")
    if action not in ACTIONS:
        raise Refused("unknown-action", f"action {action}")
    if kind not in KINDS:
        raise Refused("unknown-kind", f"credential kind {kind}")
    credential, at = _field(data, ANSWER_HEAD.size)
    target, at = _field(data, at)
    answer = Answer(ACTIONS[action], KINDS[kind], nonce, credential, target, data[at:])
    _check_sizes(answer)
    return answer


def _field(data: bytes, at: int) -> tuple[bytes, int]:
    """A length-prefixed field at `at`, and where the next begins."""
    if at >= len(data):
        raise Refused("truncated", "a field's length is missing")
    end = at + 1 + data[at]
    if end > len(data):
        raise Refused("truncated", f"a field of {data[at]} bytes runs past the end")
    return data[at + 1 : end], end


def _check_sizes(answer: Answer) -> None:
    if len(answer.signature) != SIG_BYTES:
        why = "truncated" if len(answer.signature) < SIG_BYTES else "malformed"
        raise Refused(why, f"a signature has {SIG_BYTES} bytes, not {len(answer.signature)}")
    expected = CREDENTIAL_BYTES[answer.kind]
    if len(answer.credential) != expected:
        raise Refused("malformed", f"an {answer.kind} credential has {expected} bytes")
    if len(answer.target) not in TARGET_BYTES[answer.action]:
        raise Refused("malformed", f"{answer.action} takes no target of {len(answer.target)}")


# -- the other frames -----------------------------------------------------------------------
def hello() -> bytes:
    return bytes([HELLO, VERSION])


def challenge(lock_id: bytes, nonce: bytes) -> bytes:
    return bytes([CHALLENGE, VERSION]) + lock_id + nonce


def decode_challenge(data: bytes) -> tuple[bytes, bytes]:
    """(lock id, nonce) of a challenge frame."""
    if len(data) != 2 + LOCK_ID_BYTES + NONCE_BYTES or data[:2] != bytes([CHALLENGE, VERSION]):
        raise Refused("malformed", "not a challenge")
    return data[2 : 2 + LOCK_ID_BYTES], data[2 + LOCK_ID_BYTES :]


def result(ok: bool, reason: str = "") -> bytes:
    return bytes([RESULT, int(ok)]) + reason.encode("ascii", "replace")[:MAX_REASON]


def decode_result(data: bytes) -> tuple[bool, str]:
    if len(data) < 2 or data[0] != RESULT or data[1] > 1:
        raise Refused("malformed", "not a result")
    return bool(data[1]), data[2:].decode("ascii", "replace")
