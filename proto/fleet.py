"""The fleet: a building manager's console pushes visitor codes to many doors over MQTT
(issue 17), and this is its wire format, shared by the console, policy and the bench's
simulated doors.

The broker is not trusted. Each door holds its own fleet key (32 random bytes the owner
gives it with `lockmesh fleet join`, and the manager's console holds in its keys file);
a push is sealed with ChaCha20-Poly1305 under a subkey of it, the header (version, serial,
id, time, operation) bound as associated data, so the broker can neither read the visitor
code nor forge, alter, move to another door or re-date a push. Policy opens it, refuses
one older or newer than MAX_AGE_S by its time, and remembers ids, so a replay is answered
with the first outcome and never done again. The door's acknowledgement carries an HMAC
under another subkey, over the outcome and its audit head, so the broker cannot fake one.

The bridge relays both untouched (proto/owner.py FleetPush, FleetAck): it holds no key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
MAX_PUSH = 2048  # bytes of a push on the wire: a sealed visitor code is about 300
MAX_ID = 64
MAX_AGE_S = 120.0  # a push dated further from the door's clock is refused "stale"
# visitor_add: a visitor code (L-9); audit_head: nothing done, the signed answer carries
# the door's audit head, so the console shows heads the broker cannot fake
OPERATIONS = ("visitor_add", "audit_head")
HEADER = ("v", "serial", "id", "at", "op")
PUSH_FIELDS = frozenset({*HEADER, "nonce", "box"})
VISITOR_FIELDS = frozenset({"label", "code", "start", "end", "uses"})
MAX_LABEL = 32
MAX_CODE = 20  # digits: L-19's longest entry; policy applies L-4's rules besides


class Refused(ValueError):
    """A push not taken: reason is a short code (counted), the message a sentence."""

    def __init__(self, reason: str, detail: str, *, sealed: bool = False) -> None:
        super().__init__(detail)
        self.reason, self.sealed = reason, sealed


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_from_hex(text: str) -> bytes:
    """A fleet key as written in a keys file or given to a door; Refused if not one."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise Refused("bad-key", "a fleet key is 64 hex digits") from None
    if len(key) != KEY_BYTES:
        raise Refused("bad-key", "a fleet key is 64 hex digits")
    return key


def _subkey(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"lockmesh-fleet/" + purpose, hashlib.sha256).digest()


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Visitor:
    """A visitor code, as policy's VisitorAdd takes it (L-9)."""

    label: str
    code: str
    start: float | None = None
    end: float | None = None
    uses: int | None = None


@dataclass(frozen=True)
class Push:
    serial: str
    id: str
    at: float
    op: str
    visitor: Visitor | None  # None for audit_head


# -- sealing and opening a push ----------------------------------------------------------------
def seal(key: bytes, serial: str, ident: str, at: float, visitor: Visitor | None) -> bytes:
    """The console's push to one door: a visitor code, or (None) a request for its head."""
    op = "audit_head" if visitor is None else "visitor_add"
    header = {"v": VERSION, "serial": serial, "id": ident, "at": at, "op": op}
    nonce = secrets.token_bytes(NONCE_BYTES)
    body = _canonical({} if visitor is None else {
        "label": visitor.label, "code": visitor.code, "start": visitor.start,
        "end": visitor.end, "uses": visitor.uses,
    })  # fmt: skip
    box = ChaCha20Poly1305(_subkey(key, b"seal")).encrypt(nonce, body, _canonical(header))
    return _canonical(
        {**header, "nonce": base64.b64encode(nonce).decode(), "box": base64.b64encode(box).decode()}
    )


def header(payload: bytes) -> dict[str, Any]:
    """A push's clear header, checked for shape only (nothing in it is trusted yet)."""
    if len(payload) > MAX_PUSH:
        raise Refused("too-long", f"a push is at most {MAX_PUSH} bytes, not {len(payload)}")
    try:
        fields = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused("not-json", "a push is a JSON object") from None
    if not isinstance(fields, dict):
        raise Refused("not-json", "a push is a JSON object")
    if set(fields) != PUSH_FIELDS:
        names = ", ".join(sorted(PUSH_FIELDS))
        raise Refused("bad-field", f"a push has exactly the fields {names}")
    if fields["v"] != VERSION or isinstance(fields["v"], bool):
        raise Refused("bad-version", f"this door speaks version {VERSION}")
    for name in ("serial", "id", "op", "nonce", "box"):
        if not isinstance(fields[name], str) or not fields[name]:
            raise Refused("bad-field", f"{name} is a non-empty string")
    if len(fields["id"]) > MAX_ID:
        raise Refused("bad-field", f"id is at most {MAX_ID} characters")
    at = fields["at"]
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise Refused("bad-field", "at is a time in seconds since 1970")
    if fields["op"] not in OPERATIONS:
        raise Refused("bad-op", f"op is one of {', '.join(OPERATIONS)}")
    return fields


def open_push(key: bytes, serial: str, payload: bytes, now: float | None) -> Push:
    """A push to this door (serial), opened and checked; Refused says why not. The caller
    still refuses an id it has seen (a replay). Refusals up to the seal (Refused.sealed
    False) may be anyone's junk on the broker; those after it are the key holder's."""
    fields = header(payload)
    try:
        nonce = base64.b64decode(fields["nonce"], validate=True)
        box = base64.b64decode(fields["box"], validate=True)
    except (binascii.Error, ValueError):
        raise Refused("bad-field", "nonce and box are base64") from None
    if len(nonce) != NONCE_BYTES:
        raise Refused("bad-field", f"nonce is {NONCE_BYTES} bytes")
    aad = _canonical({name: fields[name] for name in HEADER})
    try:
        body = ChaCha20Poly1305(_subkey(key, b"seal")).decrypt(nonce, box, aad)
    except InvalidTag:
        raise Refused("bad-seal", "not sealed with this door's fleet key, or altered") from None
    if fields["serial"] != serial:  # one key given to two doors: a push moved between them
        raise Refused("wrong-serial", "this push is for another door", sealed=True)
    if now is None:  # the push's time cannot be checked: an old one could pass
        raise Refused("time-unknown", "this door has lost the time", sealed=True)
    age = now - float(fields["at"])
    if abs(age) > MAX_AGE_S:
        raise Refused("stale", f"sent {age:.0f} s from this door's clock; taken within "
                               f"{MAX_AGE_S:g} s", sealed=True)  # fmt: skip
    if fields["op"] == "audit_head":
        if body != b"{}":
            raise _bad_body("a request for the audit head carries nothing")
        return Push(serial, fields["id"], float(fields["at"]), "audit_head", None)
    return Push(serial, fields["id"], float(fields["at"]), fields["op"], _visitor(body))


def _bad_body(detail: str) -> Refused:
    return Refused("bad-body", detail, sealed=True)


def _visitor(body: bytes) -> Visitor:
    """The sealed body, read as strictly as a message on the bus: the key holder may be
    careless too."""
    try:
        fields = json.loads(body)
    except ValueError:
        raise _bad_body("the sealed body is not JSON") from None
    if not isinstance(fields, dict) or set(fields) != VISITOR_FIELDS:
        raise _bad_body(f"a visitor has the fields {', '.join(sorted(VISITOR_FIELDS))}")
    label, code, uses = fields["label"], fields["code"], fields["uses"]
    if not (isinstance(label, str) and 0 < len(label) <= MAX_LABEL and label.isprintable()):
        raise _bad_body(f"label is 1 to {MAX_LABEL} printable characters")
    if not (isinstance(code, str) and code.isascii() and code.isdigit() and len(code) <= MAX_CODE):
        raise _bad_body(f"code is 1 to {MAX_CODE} ASCII digits")
    if uses is not None and (isinstance(uses, bool) or not isinstance(uses, int) or uses < 1):
        raise _bad_body("uses is a whole number of 1 or more, or null")
    window: list[float | None] = []
    for name in ("start", "end"):
        value = fields[name]
        if value is None:
            window.append(None)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad_body(f"{name} is a time in seconds since 1970, or null")
        elif not math.isfinite(value):
            raise _bad_body(f"{name} is a finite time")
        else:
            window.append(float(value))
    return Visitor(label, code, window[0], window[1], uses)


# -- the door's acknowledgement -------------------------------------------------------------------
@dataclass(frozen=True)
class Ack:
    serial: str
    id: str | None
    ok: bool
    reason: str
    again: bool  # a push with this id was answered before: this is its first outcome
    head: dict[str, Any] | None  # the door's audit head after the push (count, last)
    signed: bool  # the MAC checked out with the door's fleet key


def _mac(key: bytes, fields: dict[str, Any]) -> str:
    return hmac.new(_subkey(key, b"ack"), _canonical(fields), hashlib.sha256).hexdigest()


def make_ack(
    key: bytes | None,
    serial: str,
    ident: str | None,
    ok: bool,
    reason: str,
    *,
    again: bool = False,
    head: dict[str, Any] | None = None,
) -> bytes:
    """The door's answer; signed when the door has a key (else the console shows it as
    unverified: a door with no key, or a refusal anyone on the broker could have made)."""
    fields: dict[str, Any] = {"v": VERSION, "serial": serial, "id": ident, "ok": ok,
                              "reason": reason, "again": again, "head": head}  # fmt: skip
    mac = _mac(key, fields) if key else ""
    return _canonical({**fields, "mac": mac})


def read_ack(key: bytes | None, payload: bytes) -> Ack:
    """A door's answer as the console reads it; Refused when it is not one at all."""
    try:
        fields = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused("not-json", "an ack is a JSON object") from None
    names = {"v", "serial", "id", "ok", "reason", "again", "head", "mac"}
    if not isinstance(fields, dict) or set(fields) != names:
        raise Refused("bad-field", "not an ack")
    mac = fields.pop("mac")
    signed = False
    if key is not None and isinstance(mac, str) and mac:
        want = _mac(key, fields)
        signed = hmac.compare_digest(want, mac)
    ident, head = fields["id"], fields["head"]
    return Ack(
        serial=str(fields["serial"]),
        id=ident if isinstance(ident, str) else None,
        ok=fields["ok"] is True,
        reason=str(fields["reason"]),
        again=fields["again"] is True,
        head=head if isinstance(head, dict) else None,
        signed=signed,
    )
