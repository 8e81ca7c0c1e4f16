"""The fingerprint module's UART protocol (ZhianTec/GROW: R307, R503, AS608): codec and driver.

A packet: EF 01, a 4-byte address, a packet id, a 2-byte length (payload + 2), the
payload, a 2-byte checksum = sum of packet id, length bytes and payload, mod 2**16.
Multi-byte fields are big-endian. The host sends command packets (id 01) and the module
answers each with an acknowledgement (07) whose first byte is a confirmation code;
templates travel as data packets (02, the last one 08).
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import TypedDict, Unpack

from hw.uart import FrameScanner, Uart, UartError

HEADER = b"\xef\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF
DEFAULT_BAUD = 57600
PID_COMMAND, PID_DATA, PID_ACK, PID_END = 0x01, 0x02, 0x07, 0x08
PACKET_IDS = (PID_COMMAND, PID_DATA, PID_ACK, PID_END)
MAX_PAYLOAD = 256  # the largest data packet size the modules offer (system parameter 3)
PACKET_SIZES = (32, 64, 128, 256)  # system parameter "packet size" 0..3
READY_BYTE = 0x55  # sent once, alone, by an R503 when it is ready after power-up

# instruction codes: the first byte of a command's payload
GEN_IMG, IMG2TZ, MATCH, SEARCH, REG_MODEL, STORE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
LOAD_CHAR, UP_CHAR, DOWN_CHAR, UP_IMAGE, DOWN_IMAGE = 0x07, 0x08, 0x09, 0x0A, 0x0B
DELET_CHAR, EMPTY, SET_SYS_PARA, READ_SYS_PARA, VFY_PWD = 0x0C, 0x0D, 0x0E, 0x0F, 0x13
HIGH_SPEED_SEARCH, TEMPLATE_NUM, READ_INDEX_TABLE = 0x1B, 0x1D, 0x1F
AURA_LED_CONFIG, SOFT_RESET, HANDSHAKE = 0x35, 0x3D, 0x53

COMMAND_NAMES = {
    GEN_IMG: "GenImg", IMG2TZ: "Img2Tz", MATCH: "Match", SEARCH: "Search",
    REG_MODEL: "RegModel", STORE: "Store", LOAD_CHAR: "LoadChar", UP_CHAR: "UpChar",
    DOWN_CHAR: "DownChar", UP_IMAGE: "UpImage", DOWN_IMAGE: "DownImage",
    DELET_CHAR: "DeletChar", EMPTY: "Empty", SET_SYS_PARA: "SetSysPara",
    READ_SYS_PARA: "ReadSysPara", VFY_PWD: "VfyPwd", HIGH_SPEED_SEARCH: "HighSpeedSearch",
    TEMPLATE_NUM: "TemplateNum", READ_INDEX_TABLE: "ReadIndexTable",
    AURA_LED_CONFIG: "AuraLedConfig", SOFT_RESET: "SoftReset", HANDSHAKE: "Handshake",
}  # fmt: skip

# confirmation codes: the first byte of an acknowledgement's payload
OK, PACKET_ERROR, NO_FINGER, CAPTURE_FAILED = 0x00, 0x01, 0x02, 0x03
TOO_DISORDERLY, TOO_FEW_FEATURES, NO_MATCH, NOT_FOUND = 0x06, 0x07, 0x08, 0x09
MERGE_MISMATCH, BAD_LOCATION, TEMPLATE_READ_ERROR = 0x0A, 0x0B, 0x0C
UPLOAD_FEATURE_FAILED, CANNOT_RECEIVE, UPLOAD_IMAGE_FAILED = 0x0D, 0x0E, 0x0F
DELETE_FAILED, EMPTY_FAILED, WRONG_PASSWORD, NO_VALID_IMAGE = 0x10, 0x11, 0x13, 0x15
FLASH_ERROR, INVALID_REGISTER, WRONG_ADDRESS, PASSWORD_FIRST = 0x18, 0x1A, 0x20, 0x21
READY = 0x55  # the handshake's answer: the module works

ACK_REASONS = {
    OK: "ok",
    PACKET_ERROR: "packet receive error",
    NO_FINGER: "no finger on the sensor",
    CAPTURE_FAILED: "image capture failed",
    TOO_DISORDERLY: "image too disorderly to extract features",
    TOO_FEW_FEATURES: "too few features (partial or poor placement)",
    NO_MATCH: "fingerprints do not match",
    NOT_FOUND: "no matching template in the library",
    MERGE_MISMATCH: "captures do not belong to the same finger (merge failed)",
    BAD_LOCATION: "template location out of range",
    TEMPLATE_READ_ERROR: "error reading the template (empty or invalid slot)",
    UPLOAD_FEATURE_FAILED: "feature upload failed",
    CANNOT_RECEIVE: "module cannot receive the following data packets",
    UPLOAD_IMAGE_FAILED: "image upload failed",
    DELETE_FAILED: "deleting the template failed",
    EMPTY_FAILED: "clearing the library failed",
    WRONG_PASSWORD: "wrong password",
    NO_VALID_IMAGE: "no valid image (or feature) in the buffer",
    FLASH_ERROR: "flash write error",
    INVALID_REGISTER: "invalid register number",
    WRONG_ADDRESS: "wrong module address",
    PASSWORD_FIRST: "the password must be verified first",
    READY: "module ready",
}
# the outcomes that are a finger refused, as opposed to a capture to retry or a fault:
# only these count towards the lockout (L-20)
VERIFICATION_FAILURES = frozenset({NO_MATCH, NOT_FOUND})

# AuraLedConfig (R503 ring LED)
LED_BREATHING, LED_FLASHING, LED_ON, LED_OFF, LED_GRADUAL_ON, LED_GRADUAL_OFF = 1, 2, 3, 4, 5, 6
LED_RED, LED_BLUE, LED_PURPLE, LED_GREEN, LED_YELLOW, LED_CYAN, LED_WHITE = 1, 2, 3, 4, 5, 6, 7


def ack_reason(code: int) -> str:
    return ACK_REASONS.get(code, f"unknown confirmation code 0x{code:02X}")


# -- errors -------------------------------------------------------------------------------
class FingerprintError(Exception):
    """Anything the fingerprint module or the line to it did wrong."""


class FingerprintCodecError(FingerprintError, ValueError):
    """Bytes that are not a well-formed packet (decode() of one packet only)."""


class FingerprintLinkError(FingerprintError):
    """No usable answer: the port failed, or what came back was corrupt."""


class FingerprintTimeout(FingerprintLinkError):
    """Nothing at all came back in time: module unplugged, unpowered, or hung."""


class FingerprintAckError(FingerprintError):
    """The module answered, with a confirmation code other than the one asked for."""

    def __init__(self, command: str, code: int) -> None:
        self.command, self.code, self.reason = command, code, ack_reason(code)
        super().__init__(f"{command}: {self.reason} (0x{code:02X})")

    @property
    def failed_verification(self) -> bool:
        return self.code in VERIFICATION_FAILURES


class FingerprintDuplicate(FingerprintError):
    """The finger being enrolled matches a stored template already (L-5)."""

    def __init__(self, page_id: int, score: int) -> None:
        self.page_id, self.score = page_id, score
        super().__init__(f"finger already enrolled (slot {page_id}, score {score})")


# -- codec --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Packet:
    pid: int
    payload: bytes
    address: int = DEFAULT_ADDRESS


def checksum(pid: int, length: int, payload: bytes) -> int:
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode(packet: Packet) -> bytes:
    if packet.pid not in PACKET_IDS:
        raise FingerprintCodecError(f"packet id 0x{packet.pid:02X}")
    if len(packet.payload) > MAX_PAYLOAD:
        raise FingerprintCodecError(f"payload of {len(packet.payload)} bytes > {MAX_PAYLOAD}")
    if not 0 <= packet.address <= 0xFFFFFFFF:
        raise FingerprintCodecError(f"address {packet.address}")
    length = len(packet.payload) + 2
    head = HEADER + struct.pack(">IBH", packet.address, packet.pid, length)
    return head + packet.payload + struct.pack(">H", checksum(packet.pid, length, packet.payload))


def _length_or_reason(header: bytes) -> int | str:
    pid, length = header[6], (header[7] << 8) | header[8]
    if pid not in PACKET_IDS:
        return "bad packet id"
    if not 2 <= length <= MAX_PAYLOAD + 2:
        return "bad length"
    return 9 + length


def _checksum_reason(frame: bytes) -> str | None:
    pid, length = frame[6], (frame[7] << 8) | frame[8]
    want = checksum(pid, length, frame[9:-2])
    return None if want == (frame[-2] << 8) | frame[-1] else "bad checksum"


def _unpack(frame: bytes) -> Packet:
    return Packet(frame[6], frame[9:-2], int.from_bytes(frame[2:6], "big"))


def decode(data: bytes) -> Packet:
    """Exactly one packet, or FingerprintCodecError saying what is wrong with it."""
    if len(data) < 11 or data[:2] != HEADER:
        raise FingerprintCodecError("not a packet: too short or no EF 01 header")
    length = _length_or_reason(data[:9])
    if isinstance(length, str):
        raise FingerprintCodecError(length)
    if len(data) != length:
        raise FingerprintCodecError(f"length field says {length} bytes, got {len(data)}")
    reason = _checksum_reason(data)
    if reason:
        raise FingerprintCodecError(reason)
    return _unpack(data)


class PacketParser(FrameScanner[Packet]):
    """Packets out of the byte stream from (or to) a module; see FrameScanner for resync.

    Given the module's address, packets for any other are rejected: besides ignoring
    other modules, this stops a stray EF 01 just before a real packet from passing for
    one (its address would be made of the real header's bytes).
    """

    sync = HEADER
    header_len = 9

    def __init__(self, address: int | None = None) -> None:
        super().__init__()
        self.address = address

    def frame_length(self, header: bytes) -> int | str:
        if self.address is not None and int.from_bytes(header[2:6], "big") != self.address:
            return "other address"
        return _length_or_reason(header)

    def check(self, frame: bytes) -> str | None:
        return _checksum_reason(frame)

    def decode_frame(self, frame: bytes) -> Packet:
        return _unpack(frame)


# -- driver -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchHit:
    page_id: int
    score: int


@dataclass(frozen=True)
class SysParams:
    status: int
    system_id: int
    library_size: int
    security_level: int
    address: int
    packet_size: int  # bytes per data packet
    baudrate: int


class FingerprintOptions(TypedDict, total=False):
    """Fingerprint's keyword arguments, as open() passes them on."""

    address: int
    timeout_s: float
    packet_size: int


class Fingerprint:
    """Commands to one fingerprint module; each waits at most its timeout for the answer.

    Before every command the input is flushed and the parser reset, so that a late or
    half answer to an earlier, timed-out command cannot be taken for this one's.
    """

    def __init__(
        self,
        uart: Uart,
        *,
        address: int = DEFAULT_ADDRESS,
        timeout_s: float = 1.0,
        packet_size: int = 128,
    ) -> None:
        if packet_size not in PACKET_SIZES:
            raise ValueError(f"packet size {packet_size}: one of {PACKET_SIZES}")
        self.uart, self.address, self.timeout_s = uart, address, timeout_s
        self.packet_size = packet_size
        self.parser = PacketParser(address)
        self._params: SysParams | None = None
        self._queue: list[Packet] = []

    @classmethod
    def open(
        cls, port: str, baudrate: int = DEFAULT_BAUD, **options: Unpack[FingerprintOptions]
    ) -> Fingerprint:
        return cls(Uart(port, baudrate), **options)

    def close(self) -> None:
        self.uart.close()

    def __enter__(self) -> Fingerprint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the exchange ------------------------------------------------------------------
    def command(
        self,
        instruction: int,
        args: bytes = b"",
        *,
        ok: tuple[int, ...] = (OK,),
        timeout_s: float | None = None,
    ) -> tuple[int, bytes]:
        """Send one command; (confirmation code, the rest of the answer) when the code is in ok."""
        name = COMMAND_NAMES.get(instruction, f"command 0x{instruction:02X}")
        self._start()
        self._send(Packet(PID_COMMAND, bytes([instruction]) + args, self.address), name)
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        ack = self._receive(name, deadline, (PID_ACK,))
        if not ack.payload:
            raise FingerprintLinkError(f"{name}: empty acknowledgement")
        code = ack.payload[0]
        if code not in ok:
            raise FingerprintAckError(name, code)
        return code, ack.payload[1:]

    def _start(self) -> None:
        try:
            self.uart.reset_input()
        except UartError as e:
            raise FingerprintLinkError(str(e)) from e
        self.parser.reset()
        self._queue = []

    def _send(self, packet: Packet, name: str) -> None:
        try:
            self.uart.write(encode(packet))
        except UartError as e:
            raise FingerprintLinkError(f"{name}: {e}") from e

    def _receive(self, name: str, deadline: float, pids: tuple[int, ...]) -> Packet:
        last_byte = time.monotonic()
        while True:
            while self._queue:
                packet = self._queue.pop(0)
                if packet.pid in pids:  # not, say, our own command echoed by a loopback
                    return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._no_answer(name)
            try:
                last_byte = self.parser.read_from(self.uart, self._queue, remaining, last_byte)
            except UartError as e:
                raise FingerprintLinkError(f"{name}: {e}") from e

    def _no_answer(self, name: str) -> FingerprintLinkError:
        corrupt = self.parser.corruption()
        if corrupt is not None:
            return FingerprintLinkError(f"{name}: the module's answer was corrupt ({corrupt})")
        return FingerprintTimeout(
            f"{name}: no answer from the fingerprint module at {self.uart.port}"
            f" (unplugged, unpowered or hung?)"
        )

    # -- system ------------------------------------------------------------------------
    def handshake(self) -> None:
        """The module answers READY when it works (some clones answer OK)."""
        self.command(HANDSHAKE, ok=(READY, OK))

    def verify_password(self, password: int = 0) -> None:
        self.command(VFY_PWD, struct.pack(">I", password))

    def sys_params(self, *, refresh: bool = False) -> SysParams:
        if self._params is None or refresh:
            _, data = self.command(READ_SYS_PARA)
            if len(data) < 16:
                raise FingerprintLinkError(f"ReadSysPara: {len(data)} bytes of parameters")
            status, sid, size, level, addr, psize, baud = struct.unpack(">HHHHIHH", data[:16])
            self._params = SysParams(
                status, sid, size, level, addr, PACKET_SIZES[min(psize, 3)], baud * 9600
            )
        return self._params

    def template_count(self) -> int:
        _, data = self.command(TEMPLATE_NUM)
        return struct.unpack(">H", data[:2])[0]

    def read_index_table(self, page: int = 0) -> set[int]:
        """The used template slots among page*256 … page*256+255 (bit 0 of byte 0 is slot 0)."""
        _, data = self.command(READ_INDEX_TABLE, bytes([page]))
        base = page * 256
        return {
            base + i * 8 + b for i, byte in enumerate(data[:32]) for b in range(8) if byte >> b & 1
        }

    def used_slots(self) -> set[int]:
        size = self.sys_params().library_size
        return set().union(*(self.read_index_table(p) for p in range((size + 255) // 256)))

    def aura_led(
        self, control: int, *, speed: int = 0x80, colour: int = LED_BLUE, count: int = 0
    ) -> None:
        self.command(AURA_LED_CONFIG, bytes([control, speed, colour, count]))

    # -- capture -------------------------------------------------------------------------
    def gen_img(self) -> None:
        self.command(GEN_IMG)

    def img2tz(self, buffer_id: int) -> None:
        self.command(IMG2TZ, bytes([buffer_id]))

    def capture(self, buffer_id: int, *, wait_s: float = 0.0, poll_s: float = 0.05) -> None:
        """An image, then its features into a char buffer; waits up to wait_s for a finger."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.gen_img()
                break
            except FingerprintAckError as e:
                if e.code != NO_FINGER or time.monotonic() >= deadline:
                    raise
                time.sleep(poll_s)
        self.img2tz(buffer_id)

    # -- matching and the library --------------------------------------------------------
    def match(self) -> int:
        """Compare char buffers 1 and 2: the score, or FingerprintAckError(NO_MATCH)."""
        _, data = self.command(MATCH)
        return struct.unpack(">H", data[:2])[0]

    def search(
        self, buffer_id: int = 1, start: int = 0, count: int | None = None
    ) -> SearchHit | None:
        """The best template matching a char buffer, None when there is none."""
        if count is None:
            count = self.sys_params().library_size - start
        code, data = self.command(
            SEARCH, struct.pack(">BHH", buffer_id, start, count), ok=(OK, NOT_FOUND)
        )
        if code == NOT_FOUND:
            return None
        page_id, score = struct.unpack(">HH", data[:4])
        return SearchHit(page_id, score)

    def reg_model(self) -> None:
        self.command(REG_MODEL)

    def store(self, buffer_id: int, page_id: int) -> None:
        self.command(STORE, struct.pack(">BH", buffer_id, page_id))

    def enroll_buffers(self, page_id: int, *, check_duplicate: bool = True) -> None:
        """Merge char buffers 1 and 2 into a template and store it at page_id.

        With check_duplicate, both captures are searched first: a finger that is already
        enrolled under any slot raises FingerprintDuplicate and nothing is stored (L-5).
        """
        if check_duplicate:
            for buffer_id in (1, 2):
                hit = self.search(buffer_id)
                if hit is not None:
                    raise FingerprintDuplicate(hit.page_id, hit.score)
        self.reg_model()
        self.store(1, page_id)

    def delete(self, page_id: int, count: int = 1) -> None:
        self.command(DELET_CHAR, struct.pack(">HH", page_id, count))

    def empty(self) -> None:
        self.command(EMPTY)

    # -- templates to and from the host --------------------------------------------------
    def load_char(self, buffer_id: int, page_id: int) -> None:
        self.command(LOAD_CHAR, struct.pack(">BH", buffer_id, page_id))

    def up_char(self, buffer_id: int, *, timeout_s: float | None = None) -> bytes:
        """A char buffer's content, as the module's data packets bring it."""
        self.command(UP_CHAR, bytes([buffer_id]), timeout_s=timeout_s)
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        data = bytearray()
        while True:
            packet = self._receive("UpChar data", deadline, (PID_DATA, PID_END))
            data += packet.payload
            if packet.pid == PID_END:
                return bytes(data)

    def down_char(self, buffer_id: int, data: bytes) -> None:
        """Send a template into a char buffer. The module does not acknowledge the data
        packets: a bad template shows when it is stored or matched."""
        if not data:
            raise ValueError("an empty template")
        self.command(DOWN_CHAR, bytes([buffer_id]))
        chunks = [data[i : i + self.packet_size] for i in range(0, len(data), self.packet_size)]
        for i, chunk in enumerate(chunks):
            pid = PID_END if i == len(chunks) - 1 else PID_DATA
            self._send(Packet(pid, chunk, self.address), "DownChar data")

    def read_template(self, page_id: int) -> bytes:
        """A stored template, for mirroring it (sealed, L-10) on the host."""
        self.load_char(1, page_id)
        return self.up_char(1)

    def write_template(self, page_id: int, template: bytes) -> None:
        self.down_char(1, template)
        self.store(1, page_id)
