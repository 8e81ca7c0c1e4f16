"""The lock's Bluetooth LE link (issue 16): chunking, the transport interface, and the
in-process radio that stands for the air in tests and on the simulated board.

A peripheral has one write characteristic (the phone's chunks come in) and one notify
characteristic (the lock's go out). Before the MTU exchange an ATT write or notification
carries 20 bytes, and phones negotiate what they like, so every message is cut into
chunks here, each led by one byte: bit 7 set on the last chunk, bits 0-6 its index.
BlueZ's long writes would cover the phone's side only; notifications need this anyway.

Transports (a `Radio`): InProcessRadio below, and BlueZ over D-Bus (hw/bluez.py). Either
calls the `Peripheral` it is given when a phone connects, writes or leaves, and sends
what the peripheral notifies.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Protocol

from proto.phonekey import MAX_MESSAGE

ATT_MTU_MIN = 23  # every link starts there: 20 bytes of payload per write or notification
ATT_HEADER = 3
LAST = 0x80
MAX_CHUNKS = 0x80  # the index has seven bits

# The lock's GATT service and its two characteristics (random UUIDs of our own).
SERVICE_UUID = "5a1e0001-2c4e-4f7b-9d3a-6c0b8e2f1a47"
WRITE_UUID = "5a1e0002-2c4e-4f7b-9d3a-6c0b8e2f1a47"  # phone -> lock: write, write-without-resp.
NOTIFY_UUID = "5a1e0003-2c4e-4f7b-9d3a-6c0b8e2f1a47"  # lock -> phone: notify


class FrameError(ValueError):
    """Chunks that make no message: a stable reason (`empty`, `out-of-order`, `oversized`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def chunks(message: bytes, mtu: int = ATT_MTU_MIN) -> list[bytes]:
    """A message cut for a link of this MTU: each chunk its header byte and a payload."""
    size = max(1, mtu - ATT_HEADER - 1)
    parts = [message[i : i + size] for i in range(0, len(message), size)] or [b""]
    if len(parts) > MAX_CHUNKS:
        raise FrameError("oversized", f"{len(message)} bytes need more than {MAX_CHUNKS} chunks")
    return [bytes([i | (LAST if i == len(parts) - 1 else 0)]) + p for i, p in enumerate(parts)]


class Reassembler:
    """One link's chunks back into messages. A chunk of index 0 always starts a new one,
    so a phone that gave up midway is not stuck behind its own half message."""

    def __init__(self, limit: int = MAX_MESSAGE) -> None:
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> bytes | None:
        """The message this chunk completes, or None while more are to come."""
        if not chunk:
            raise FrameError("empty", "a write with no bytes")
        index, last = chunk[0] & ~LAST, bool(chunk[0] & LAST)
        if index == 0:
            self._parts, self._size = [], 0
        elif index != len(self._parts):
            expected = len(self._parts)
            self._parts, self._size = [], 0
            raise FrameError("out-of-order", f"chunk {index} where {expected} was due")
        self._parts.append(chunk[1:])
        self._size += len(chunk) - 1
        if self._size > self.limit:
            self._parts, self._size = [], 0
            raise FrameError("oversized", f"more than {self.limit} bytes")
        if not last:
            return None
        message = b"".join(self._parts)
        self._parts, self._size = [], 0
        return message


class Peripheral(Protocol):
    """What the lock does with its link (services/ble/relay.py); `conn` names one phone."""

    def connected(self, conn: str) -> None: ...

    def written(self, conn: str, chunk: bytes, mtu: int) -> None: ...

    def disconnected(self, conn: str) -> None: ...


@dataclass(frozen=True)
class RadioState:
    """What `status` and the app's Home show: absent (no adapter), off, on, advertising,
    connected (a phone is linked)."""

    state: str
    transport: str
    detail: str = ""


class Radio(Protocol):
    """A transport: it calls the peripheral and carries its notifications."""

    def start(self, peripheral: Peripheral) -> None: ...

    def notify(self, conn: str, chunk: bytes) -> None: ...

    def state(self) -> RadioState: ...

    def close(self) -> None: ...


class Central(Protocol):
    """The phone's side of a link (ops/phone.py speaks the protocol over it)."""

    mtu: int

    def send(self, chunks: list[bytes]) -> None: ...

    def receive(self, timeout: float) -> bytes | None: ...

    def close(self) -> None: ...


@dataclass
class _Phone:
    inbox: queue.SimpleQueue[bytes] = field(default_factory=queue.SimpleQueue)


class InProcessRadio:
    """The air between phones and the lock inside one process: a write reaches the
    peripheral at once, in the writer's thread, and what it notifies lands in that phone's
    inbox. Phones may come and go; the radio always advertises while it runs."""

    def __init__(self, mtu: int = ATT_MTU_MIN) -> None:
        self.mtu = mtu
        self._peripheral: Peripheral | None = None
        self._phones: dict[str, _Phone] = {}
        self._lock = threading.Lock()

    def start(self, peripheral: Peripheral) -> None:
        self._peripheral = peripheral

    def connect(self, conn: str) -> InProcessCentral:
        """A phone links up (a name already linked is the same phone again)."""
        with self._lock:
            fresh = conn not in self._phones
            phone = self._phones.setdefault(conn, _Phone())
        if fresh and self._peripheral is not None:
            self._peripheral.connected(conn)
        return InProcessCentral(self, conn, phone, self.mtu)

    def write(self, conn: str, chunk: bytes) -> None:
        if conn not in self._phones:
            self.connect(conn)
        if self._peripheral is not None:
            self._peripheral.written(conn, chunk, self.mtu)

    def disconnect(self, conn: str) -> None:
        with self._lock:
            gone = self._phones.pop(conn, None)
        if gone is not None and self._peripheral is not None:
            self._peripheral.disconnected(conn)

    def notify(self, conn: str, chunk: bytes) -> None:
        phone = self._phones.get(conn)
        if phone is not None:  # a phone that left hears nothing
            phone.inbox.put(chunk)

    def take(self, conn: str) -> list[bytes]:
        """What was notified to this phone and not yet read."""
        phone, taken = self._phones.get(conn), []
        while phone is not None and not phone.inbox.empty():
            taken.append(phone.inbox.get_nowait())
        return taken

    def state(self) -> RadioState:
        linked = len(self._phones)
        if linked:
            return RadioState("connected", "sim", f"{linked} phone(s)")
        return RadioState("advertising" if self._peripheral else "on", "sim")

    def close(self) -> None:
        for conn in list(self._phones):
            self.disconnect(conn)
        self._peripheral = None


class InProcessCentral:
    """A phone on the in-process radio."""

    def __init__(self, radio: InProcessRadio, conn: str, phone: _Phone, mtu: int) -> None:
        self.radio, self.conn, self._phone, self.mtu = radio, conn, phone, mtu

    def send(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.radio.write(self.conn, chunk)

    def receive(self, timeout: float) -> bytes | None:
        try:
            return self._phone.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.radio.disconnect(self.conn)
