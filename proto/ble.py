"""Bluetooth keys (issue 16, L-32, L-34): the ble service's relay to policy, its state,
the simulated radio, and the owner's requests about phone keys.

The ble service relays bytes: it asks policy for a challenge and hands policy the phone's
answer untouched (proto/phonekey.py is their format); policy parses, verifies and decides.
"""

from __future__ import annotations

from dataclasses import field

from proto.owner import pin_shape
from proto.schema import Message, one_of, secret

RADIO_STATES = ("absent", "off", "on", "advertising", "connected")


class BleChallenge(Message, family="policy", event="ble_challenge"):
    """A phone asked the ble service for a challenge: policy makes a fresh nonce."""


class BleNonce(Message, family="policy", event="ble_nonce"):
    """Policy's challenge: its lock id and a nonce, single use, answered within
    expires_s or refused."""

    lock_id: bytes
    nonce: bytes
    expires_s: float


class BleAnswer(Message, family="policy", event="ble_answer"):
    """A phone's answer, as the ble service reassembled it, not parsed: policy's to read.
    Answered with policy.decision (an unlock) or ctl.done."""

    answer: bytes


class BleState(Message, family="ble", event="state"):
    """The radio's state, on each change and every few seconds (Home's Bluetooth)."""

    state: str = one_of(*RADIO_STATES)
    transport: str = ""
    detail: str = ""


class BleSim(Message, family="ble", event="sim"):
    """The simulated air (tools only): a phone named conn connects, writes these chunks,
    or leaves. The answer holds what the lock notified that phone meanwhile."""

    action: str = one_of("write", "connect", "disconnect")
    conn: str = "phone"
    writes: list[bytes] = field(default_factory=list)


class BleSimReply(Message, family="ble", event="sim_reply"):
    notified: list[bytes]
    mtu: int = 23
    state: str = ""


class PhoneKeySet(Message, family="owner", event="phone_key_set"):
    """Registers the owner's phone key (hex, 32 bytes of Ed25519): only while pairing mode
    is open or within its window after a claim (someone is at the lock), and with the app
    PIN, counted as remote unlock's. Answered with PhoneKey."""

    public_key: str
    pin: str = secret(check=pin_shape)


class PhoneKey(Message, family="owner", event="phone_key"):
    """What the owner's phone keeps: the lock's id for its grants, and the secret its
    offline visitor codes are made from (proto/offline_codes.py), never logged."""

    lock_id: str
    owner_key: str
    code_secret: str = secret()


class PhoneRevoke(Message, family="owner", event="phone_revoke"):
    """Refuse a visitor grant (its id, 16 hex digits) or every grant of a visitor key (64
    hex digits) from now on, even inside their windows."""

    target: str
