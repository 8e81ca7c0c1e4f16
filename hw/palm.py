"""The palm-vein module's UART protocol (the "EF AA" framing of smart-lock palm/face modules).

A frame: sync word EF AA, a message id, a 2-byte data size, the data, and one parity byte
= XOR of the message id, the size bytes and the data. Multi-byte fields are big-endian.
The host sends a command (its message id); the module answers each with a REPLY (00:
the command's id, a result code, data) and, while it captures, sends NOTEs (01: palm
state). A NOTE READY also comes unasked, once the module has powered up.

Data layouts follow the face/palm module family (verify: power-down flag and timeout;
enrol: admin, 32-byte name, direction, timeout). Where the vendor manual was not at hand
they are ours and marked so: the palm states "moving" (15), MODULE_ID's reply (ASCII id),
and the palm-feature messages (user id, 2-byte size, feature bytes).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hw.uart import FrameScanner, ReadDeadline, Uart, UartError

SYNC = b"\xef\xaa"
DEFAULT_BAUD = 115200
MAX_DATA = 4096  # larger sizes are taken for a corrupt header (images do not go over this link)

# message ids: module to host
REPLY, NOTE, IMAGE = 0x00, 0x01, 0x02
# message ids: host to module (commands)
RESET, GET_STATUS, VERIFY, ENROLL_SINGLE = 0x10, 0x11, 0x12, 0x1D
DELUSER, DELALL, MODULE_ID = 0x20, 0x21, 0xAC
ENROLL_PALM_FEATURE, GET_PALM_FEATURE = 0xF9, 0xFA

COMMAND_NAMES = {
    RESET: "RESET", GET_STATUS: "GET_STATUS", VERIFY: "VERIFY", ENROLL_SINGLE: "ENROLL_SINGLE",
    DELUSER: "DELUSER", DELALL: "DELALL", MODULE_ID: "MODULE_ID",
    ENROLL_PALM_FEATURE: "ENROLL_PALM_FEATURE", GET_PALM_FEATURE: "GET_PALM_FEATURE",
}  # fmt: skip

# result codes: the second byte of a REPLY's data
MR_SUCCESS, MR_REJECTED, MR_ABORTED, MR_FAILED4_CAMERA = 0, 1, 2, 4
MR_FAILED4_UNKNOWNREASON, MR_FAILED4_INVALIDPARAM, MR_FAILED4_NOMEMORY = 5, 6, 7
MR_FAILED4_UNKNOWNUSER, MR_FAILED4_MAXUSER, MR_FAILED4_ENROLLED = 8, 9, 10
MR_FAILED4_LIVENESSCHECK, MR_FAILED4_TIMEOUT, MR_FAILED4_AUTHORIZATION = 12, 13, 14
MR_FAILED4_READ_FILE, MR_FAILED4_WRITE_FILE, MR_FAILED4_NO_ENCRYPT = 19, 20, 21

RESULT_REASONS = {
    MR_SUCCESS: "ok",
    MR_REJECTED: "the module rejected the command (busy or not allowed now)",
    MR_ABORTED: "aborted (by RESET)",
    MR_FAILED4_CAMERA: "camera failed to open",
    MR_FAILED4_UNKNOWNREASON: "unknown error in the module",
    MR_FAILED4_INVALIDPARAM: "invalid parameter",
    MR_FAILED4_NOMEMORY: "not enough memory",
    MR_FAILED4_UNKNOWNUSER: "unknown user: palm not recognised, or no such user",
    MR_FAILED4_MAXUSER: "user store full",
    MR_FAILED4_ENROLLED: "palm already enrolled (duplicate)",
    MR_FAILED4_LIVENESSCHECK: "liveness check failed",
    MR_FAILED4_TIMEOUT: "timed out without a usable palm capture",
    MR_FAILED4_AUTHORIZATION: "authorisation (encryption chip) failed",
    MR_FAILED4_READ_FILE: "reading the module's storage failed",
    MR_FAILED4_WRITE_FILE: "writing the module's storage failed",
    MR_FAILED4_NO_ENCRYPT: "the link must be encrypted first",
}

# note ids: the first byte of a NOTE's data
NID_READY, NID_PALM_STATE, NID_UNKNOWN_ERROR = 0x00, 0x01, 0x02
# palm states (a NID_PALM_STATE note's first 2 bytes, signed)
STATE_NORMAL, STATE_NO_PALM, STATE_TOO_UP, STATE_TOO_DOWN = 0, 1, 2, 3
STATE_TOO_LEFT, STATE_TOO_RIGHT, STATE_TOO_FAR, STATE_TOO_NEAR = 4, 5, 6, 7
STATE_MOVING = 15  # ours: see the module docstring
STATE_PROMPTS = {
    STATE_NORMAL: "ok",
    STATE_NO_PALM: "no palm",
    STATE_TOO_UP: "off-centre",
    STATE_TOO_DOWN: "off-centre",
    STATE_TOO_LEFT: "off-centre",
    STATE_TOO_RIGHT: "off-centre",
    STATE_TOO_FAR: "too far",
    STATE_TOO_NEAR: "too near",
    STATE_MOVING: "moving",
}
ENROLL_PALM_FINISHED = 2  # a REPLY to ENROLL_SINGLE: enroll_state
NAME_SIZE = 32


def result_reason(code: int) -> str:
    return RESULT_REASONS.get(code, f"unknown result code {code}")


# -- errors -------------------------------------------------------------------------------
class PalmError(Exception):
    """Anything the palm module or the line to it did wrong."""


class PalmCodecError(PalmError, ValueError):
    """Bytes that are not a well-formed frame (decode() of one frame only)."""


class PalmLinkError(PalmError):
    """No usable answer: the port failed, or what came back was corrupt."""


class PalmTimeout(PalmLinkError):
    """Nothing at all came back in time: module unplugged, unpowered or hung."""


class PalmResultError(PalmError):
    """The module answered the command with a result other than success."""

    def __init__(self, command: str, code: int, notes: list[Note] | None = None) -> None:
        self.command, self.code, self.reason = command, code, result_reason(code)
        self.notes = notes or []
        super().__init__(f"{command}: {self.reason} ({code})")

    @property
    def failed_verification(self) -> bool:
        """A palm seen and refused, which counts towards the lockout (L-20)."""
        return self.command == "VERIFY" and self.code == MR_FAILED4_UNKNOWNUSER


# -- codec --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    msg_id: int
    data: bytes


def parity(msg_id: int, data: bytes) -> int:
    p = msg_id ^ (len(data) >> 8) ^ (len(data) & 0xFF)
    for b in data:
        p ^= b
    return p


def encode(frame: Frame) -> bytes:
    if not 0 <= frame.msg_id <= 0xFF:
        raise PalmCodecError(f"message id {frame.msg_id}")
    if len(frame.data) > MAX_DATA:
        raise PalmCodecError(f"{len(frame.data)} bytes of data > {MAX_DATA}")
    head = SYNC + struct.pack(">BH", frame.msg_id, len(frame.data))
    return head + frame.data + bytes([parity(frame.msg_id, frame.data)])


def _length_or_reason(header: bytes) -> int | str:
    size = (header[3] << 8) | header[4]
    return 6 + size if size <= MAX_DATA else "bad size"


def _parity_reason(frame: bytes) -> str | None:
    return None if parity(frame[2], frame[5:-1]) == frame[-1] else "bad parity"


def decode(data: bytes) -> Frame:
    """Exactly one frame, or PalmCodecError saying what is wrong with it."""
    if len(data) < 6 or data[:2] != SYNC:
        raise PalmCodecError("not a frame: too short or no EF AA sync word")
    length = _length_or_reason(data[:5])
    if isinstance(length, str):
        raise PalmCodecError(length)
    if len(data) != length:
        raise PalmCodecError(f"size field says {length} bytes, got {len(data)}")
    reason = _parity_reason(data)
    if reason:
        raise PalmCodecError(reason)
    return Frame(data[2], data[5:-1])


class FrameParser(FrameScanner[Frame]):
    """Frames out of the byte stream from (or to) a module; see FrameScanner for resync.

    The parity is one byte: a corrupt frame passes it once in 256. The resync rules make
    a half frame give way to a whole one after it, which is what that weakness would
    otherwise cost most.
    """

    sync = SYNC
    header_len = 5

    def frame_length(self, header: bytes) -> int | str:
        return _length_or_reason(header)

    def check(self, frame: bytes) -> str | None:
        return _parity_reason(frame)

    def decode_frame(self, frame: bytes) -> Frame:
        return Frame(frame[2], frame[5:-1])


# -- messages -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    command: int
    result: int
    data: bytes


@dataclass(frozen=True)
class Note:
    nid: int
    data: bytes

    @property
    def state(self) -> int | None:
        if self.nid != NID_PALM_STATE or len(self.data) < 2:
            return None
        return struct.unpack(">h", self.data[:2])[0]

    @property
    def prompt(self) -> str:
        """What the lock should ask of the person (L-15), or the note's kind."""
        if self.nid == NID_READY:
            return "ready"
        state = self.state
        if state is None:
            return f"note {self.nid}"
        return STATE_PROMPTS.get(state, f"palm state {state}")


def parse_reply(frame: Frame) -> Reply:
    if frame.msg_id != REPLY or len(frame.data) < 2:
        raise PalmCodecError("not a reply")
    return Reply(frame.data[0], frame.data[1], frame.data[2:])


def parse_note(frame: Frame) -> Note:
    if frame.msg_id != NOTE or len(frame.data) < 1:
        raise PalmCodecError("not a note")
    return Note(frame.data[0], frame.data[1:])


def palm_state_note(state: int, box: tuple[int, int, int, int] = (0, 0, 0, 0)) -> bytes:
    """A NOTE's data for a palm state: state, then left/top/right/bottom and yaw/pitch/roll."""
    return bytes([NID_PALM_STATE]) + struct.pack(">8h", state, *box, 0, 0, 0)


def pack_name(name: str) -> bytes:
    raw = name.encode("utf-8")[:NAME_SIZE]
    return raw.ljust(NAME_SIZE, b"\0")


def unpack_name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


# -- driver -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PalmUser:
    user_id: int
    name: str
    admin: bool


NoteHandler = Callable[[Note], None]


class Palm:
    """Commands to one palm-vein module; each waits at most its timeout for the REPLY.

    Capturing commands (VERIFY, ENROLL_SINGLE) carry a timeout to the module; the host
    waits that long plus `margin_s`. Notes seen during a command go to on_note (the
    lock's prompts) and are kept in `notes`.
    """

    def __init__(self, uart: Uart, *, timeout_s: float = 1.0, margin_s: float = 1.0) -> None:
        self.uart, self.timeout_s, self.margin_s = uart, timeout_s, margin_s
        self.parser = FrameParser()
        self.notes: list[Note] = []
        self._queue: list[Frame] = []

    @classmethod
    def open(cls, port: str, baudrate: int = DEFAULT_BAUD, **kwargs: float) -> Palm:
        return cls(Uart(port, baudrate), **kwargs)

    def close(self) -> None:
        self.uart.close()

    def __enter__(self) -> Palm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the exchange ------------------------------------------------------------------
    def command(
        self,
        msg_id: int,
        data: bytes = b"",
        *,
        timeout_s: float | None = None,
        on_note: NoteHandler | None = None,
        cancel: threading.Event | None = None,
    ) -> bytes:
        """Send one command; the REPLY's data after the result when it succeeded.

        Setting cancel (from another thread: the person pressed back) sends RESET; the
        module then ends the command with MR_ABORTED, raised as PalmResultError.
        """
        name = COMMAND_NAMES.get(msg_id, f"command 0x{msg_id:02X}")
        try:
            self.uart.reset_input()
        except UartError as e:
            raise PalmLinkError(f"{name}: {e}") from e
        self.parser.reset()
        self._queue, self.notes = [], []
        try:
            self.uart.write(encode(Frame(msg_id, data)))
        except UartError as e:
            raise PalmLinkError(f"{name}: {e}") from e
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        reply = self._reply(name, msg_id, deadline, on_note, cancel)
        if reply.result != MR_SUCCESS:
            raise PalmResultError(name, reply.result, self.notes)
        return reply.data

    def _reply(
        self,
        name: str,
        msg_id: int,
        deadline: float,
        on_note: NoteHandler | None,
        cancel: threading.Event | None,
    ) -> Reply:
        cancelled, last_byte, wait = False, time.monotonic(), ReadDeadline(deadline)
        while True:
            if cancel is not None and cancel.is_set() and not cancelled:
                cancelled = True
                try:
                    self.uart.write(encode(Frame(RESET, b"")))
                except UartError as e:
                    raise PalmLinkError(f"{name}: {e}") from e
            while self._queue:
                frame = self._queue.pop(0)
                if frame.msg_id == NOTE and frame.data:
                    note = parse_note(frame)
                    self.notes.append(note)
                    if on_note is not None:
                        on_note(note)
                elif frame.msg_id == REPLY and len(frame.data) >= 2 and frame.data[0] == msg_id:
                    return parse_reply(frame)
                # anything else (a late reply to another command, an image) is not ours
            remaining = wait.left()
            if remaining is None:
                raise self._no_answer(name)
            if cancel is not None and not cancelled:
                remaining = min(remaining, 0.05)  # look at cancel often enough
            try:
                last_byte = self.parser.read_from(self.uart, self._queue, remaining, last_byte)
            except UartError as e:
                raise PalmLinkError(f"{name}: {e}") from e

    def _no_answer(self, name: str) -> PalmLinkError:
        corrupt = self.parser.corruption()
        if corrupt is not None:
            return PalmLinkError(f"{name}: the module's reply was corrupt ({corrupt})")
        heard = f" (heard {len(self.notes)} notes, no reply)" if self.notes else ""
        return PalmTimeout(
            f"{name}: no reply from the palm module at {self.uart.port}{heard}"
            f" (unplugged, unpowered or hung?)"
        )

    def wait_ready(self, timeout_s: float = 2.0) -> None:
        """Wait for the NOTE READY a module sends after power-up. One that was up before
        the port was opened said so to no one (opening flushes the input): ping it with
        status() instead."""
        wait = ReadDeadline(time.monotonic() + timeout_s)
        while True:
            while self._queue:
                frame = self._queue.pop(0)
                if frame.msg_id == NOTE and frame.data[:1] == bytes([NID_READY]):
                    return
            remaining = wait.left()
            if remaining is None:
                raise PalmTimeout(f"the palm module at {self.uart.port} did not say it was ready")
            try:
                data = self.uart.read(remaining)
            except UartError as e:
                raise PalmLinkError(str(e)) from e
            self._queue.extend(self.parser.feed(data))

    # -- commands ----------------------------------------------------------------------
    def status(self) -> int:
        """GET_STATUS: 0 standby, 1 busy, 2 error, 3 invalid. Also a ping."""
        return self.command(GET_STATUS)[:1][0]

    def reset(self) -> None:
        """Abort whatever the module is doing (a capture) and return it to standby."""
        self.command(RESET)

    def verify(
        self,
        *,
        timeout_s: int = 10,
        on_note: NoteHandler | None = None,
        cancel: threading.Event | None = None,
    ) -> PalmUser:
        """Identify the palm in front of the module; PalmResultError when it cannot."""
        timeout_s = max(1, min(255, int(timeout_s)))
        data = self.command(
            VERIFY,
            bytes([0, timeout_s]),
            timeout_s=timeout_s + self.margin_s,
            on_note=on_note,
            cancel=cancel,
        )
        if len(data) < 2 + NAME_SIZE + 1:
            raise PalmLinkError(f"VERIFY: a reply of {len(data)} bytes")
        user_id = struct.unpack(">H", data[:2])[0]
        return PalmUser(user_id, unpack_name(data[2 : 2 + NAME_SIZE]), bool(data[2 + NAME_SIZE]))

    def enroll(
        self,
        *,
        name: str = "",
        admin: bool = False,
        timeout_s: int = 10,
        on_note: NoteHandler | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        """Capture, merge and store a palm: the new user id. A palm that matches an
        enrolled one is refused with MR_FAILED4_ENROLLED (L-5), a full store with
        MR_FAILED4_MAXUSER (L-3)."""
        timeout_s = max(1, min(255, int(timeout_s)))
        request = bytes([int(admin)]) + pack_name(name) + bytes([0, timeout_s])
        data = self.command(
            ENROLL_SINGLE,
            request,
            timeout_s=timeout_s + self.margin_s,
            on_note=on_note,
            cancel=cancel,
        )
        return struct.unpack(">H", data[:2])[0]

    def delete_user(self, user_id: int) -> None:
        self.command(DELUSER, struct.pack(">H", user_id))

    def delete_all(self) -> None:
        self.command(DELALL)

    def module_id(self) -> str:
        return self.command(MODULE_ID).split(b"\0", 1)[0].decode("ascii", "replace")

    def get_feature(self, user_id: int) -> bytes:
        """A user's palm feature, for mirroring it (sealed, L-10) on the host."""
        data = self.command(
            GET_PALM_FEATURE, struct.pack(">H", user_id), timeout_s=self.timeout_s * 2
        )
        if len(data) < 4:
            raise PalmLinkError(f"GET_PALM_FEATURE: a reply of {len(data)} bytes")
        size = struct.unpack(">H", data[2:4])[0]
        feature = data[4 : 4 + size]
        if len(feature) != size:
            raise PalmLinkError(f"GET_PALM_FEATURE: {len(feature)} of {size} feature bytes")
        return feature

    def enroll_feature(self, feature: bytes, user_id: int = 0) -> int:
        """Store a feature read earlier; user_id 0 lets the module pick. The new user id."""
        request = struct.pack(">HH", user_id, len(feature)) + feature
        data = self.command(ENROLL_PALM_FEATURE, request, timeout_s=self.timeout_s * 2)
        return struct.unpack(">H", data[:2])[0]
