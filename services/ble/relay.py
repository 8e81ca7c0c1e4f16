"""The lock's side of the phone-key protocol in the ble process: it only relays.

Chunks from a phone are put back together (hw/ble.py); a whole message is either a HELLO,
for which policy is asked for a challenge, or an ANSWER, which goes to policy untouched.
Policy's word comes back to the phone as a RESULT. The relay reads no more of a message
than its first byte and checks no signature: what an action needs beyond this process's
word is policy's to check (DESIGN.md), so a hijacked ble process cannot open the door.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Callable

from hw.ble import FrameError, Reassembler, chunks
from proto import phonekey
from proto.ble import BleAnswer, BleChallenge, BleNonce
from proto.control import Done
from proto.policy import Decision
from proto.schema import Message
from proto.wire import Envelope

Ask = Callable[[Message], "Envelope[Message] | None"]  # a request to policy; None: no answer
Notify = Callable[[str, bytes], None]  # one chunk to one phone


class Relay:
    """One reassembler per linked phone, and counts of what came and how it ended."""

    def __init__(self, ask: Ask, notify: Notify) -> None:
        self.ask, self.notify = ask, notify
        self.counts: Counter[str] = Counter()
        self._links: dict[str, Reassembler] = {}
        self._lock = threading.Lock()  # the BlueZ transport writes from several threads

    def connected(self, conn: str) -> None:
        with self._lock:
            self._links[conn] = Reassembler()
            self.counts["connections"] += 1

    def disconnected(self, conn: str) -> None:
        with self._lock:
            self._links.pop(conn, None)

    def written(self, conn: str, chunk: bytes, mtu: int) -> None:
        try:
            with self._lock:
                message = self._links.setdefault(conn, Reassembler()).feed(chunk)
        except FrameError as e:
            self._send(conn, self._refused(e.reason), mtu)
            return
        if message is not None:
            self._send(conn, self._handle(message), mtu)

    def _send(self, conn: str, message: bytes, mtu: int) -> None:
        for chunk in chunks(message, mtu):
            self.notify(conn, chunk)

    def _handle(self, message: bytes) -> bytes:
        kind = message[:1]
        if kind == bytes([phonekey.HELLO]):
            return self._challenge(message)
        if kind == bytes([phonekey.ANSWER]):
            return self._relay_answer(message)
        return self._refused("unknown-type")

    def _challenge(self, message: bytes) -> bytes:
        if message != phonekey.hello():
            return self._refused("version" if len(message) == 2 else "malformed")
        reply = self.ask(BleChallenge())
        if reply is None or not isinstance(reply.body, BleNonce):
            return self._refused("no-answer" if reply is None else _reason(reply.body))
        self._count("challenges")
        return phonekey.challenge(reply.body.lock_id, reply.body.nonce)

    def _relay_answer(self, message: bytes) -> bytes:
        """Policy parses it; only its length is ours to bound (the chunks already are)."""
        reply = self.ask(BleAnswer(answer=message))
        if reply is None:
            return self._refused("no-answer")
        ok, reason = _verdict(reply.body)
        self._count("done" if ok else f"refused:{reason}")
        return phonekey.result(ok, reason)

    def _refused(self, reason: str) -> bytes:
        self._count(f"refused:{reason}")
        return phonekey.result(False, reason)

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1


def _verdict(body: Message) -> tuple[bool, str]:
    if isinstance(body, Decision):
        return body.granted, body.reason
    if isinstance(body, Done):
        return body.ok, body.reason
    return False, "unexpected"


def _reason(body: Message) -> str:
    return body.reason if isinstance(body, Done) and body.reason else "refused"
