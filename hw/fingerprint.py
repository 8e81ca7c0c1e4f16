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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict, Unpack

from hw.uart import FrameScanner, ReadDeadline, Uart, UartError

HEADER = b"\xef\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF
DEFAULT_BAUD = 57600
PID_COMMAND, PID_DATA, PID_ACK, PID_END = 0x01, 0x02, 0x07, 0x08
PACKET_IDS = (PID_COMMAND, PID_DATA, PID_ACK, PID_END)
MAX_PAYLOAD = 256  # the largest data packet size the modules offer (system parameter 3)
PACKET_SIZES = (32, 64, 128, 256)  # system parameter "packet size" 0..3
READY_BYTE = 0x55  # sent once, alone, by an R503 when it is ready after power-up

# instruction codes: the first byte of a command's payload (R503 manual V1.2.1, section V)
GEN_IMG, IMG2TZ, MATCH, SEARCH, REG_MODEL, STORE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
LOAD_CHAR, UP_CHAR, DOWN_CHAR, UP_IMAGE, DOWN_IMAGE = 0x07, 0x08, 0x09, 0x0A, 0x0B
DELET_CHAR, EMPTY, SET_SYS_PARA, READ_SYS_PARA, VFY_PWD = 0x0C, 0x0D, 0x0E, 0x0F, 0x13
SET_PWD, GET_RANDOM_CODE, SET_ADDER, READ_INF_PAGE, PORT_CONTROL = 0x12, 0x14, 0x15, 0x16, 0x17
WRITE_NOTEPAD, READ_NOTEPAD, HIGH_SPEED_SEARCH, TEMPLATE_NUM = 0x18, 0x19, 0x1B, 0x1D
READ_INDEX_TABLE, GET_IMAGE_EX, CANCEL, AUTO_ENROLL, AUTO_IDENTIFY = 0x1F, 0x28, 0x30, 0x31, 0x32
AURA_LED_CONFIG, CHECK_SENSOR, GET_ALG_VER, GET_FW_VER = 0x35, 0x36, 0x39, 0x3A
READ_PROD_INFO, SOFT_RESET, HANDSHAKE = 0x3C, 0x3D, 0x40
GET_ECHO = 0x53  # not in the R503 manual: the R30x/AS608 echo, answered 0x55 (Adafruit's check)

COMMAND_NAMES = {
    GEN_IMG: "GenImg", IMG2TZ: "Img2Tz", MATCH: "Match", SEARCH: "Search",
    REG_MODEL: "RegModel", STORE: "Store", LOAD_CHAR: "LoadChar", UP_CHAR: "UpChar",
    DOWN_CHAR: "DownChar", UP_IMAGE: "UpImage", DOWN_IMAGE: "DownImage",
    DELET_CHAR: "DeletChar", EMPTY: "Empty", SET_SYS_PARA: "SetSysPara",
    READ_SYS_PARA: "ReadSysPara", SET_PWD: "SetPwd", VFY_PWD: "VfyPwd",
    GET_RANDOM_CODE: "GetRandomCode", SET_ADDER: "SetAdder", READ_INF_PAGE: "ReadINFpage",
    PORT_CONTROL: "Control", WRITE_NOTEPAD: "WriteNotepad", READ_NOTEPAD: "ReadNotepad",
    HIGH_SPEED_SEARCH: "HighSpeedSearch", TEMPLATE_NUM: "TemplateNum",
    READ_INDEX_TABLE: "ReadIndexTable", GET_IMAGE_EX: "GetImageEx", CANCEL: "Cancel",
    AUTO_ENROLL: "AutoEnroll", AUTO_IDENTIFY: "AutoIdentify", AURA_LED_CONFIG: "AuraLedConfig",
    CHECK_SENSOR: "CheckSensor", GET_ALG_VER: "GetAlgVer", GET_FW_VER: "GetFwVer",
    READ_PROD_INFO: "ReadProdInfo", SOFT_RESET: "SoftReset", HANDSHAKE: "HandShake",
    GET_ECHO: "GetEcho",
}  # fmt: skip

# bytes after the confirmation code in each instruction's acknowledgement: fixed by the
# manual whatever the code, so a client may read the whole packet by its length
ACK_DATA_LENGTHS = {
    MATCH: 2, SEARCH: 4, HIGH_SPEED_SEARCH: 4, READ_SYS_PARA: 16, TEMPLATE_NUM: 2,
    READ_INDEX_TABLE: 32, GET_RANDOM_CODE: 4, READ_NOTEPAD: 32, GET_ALG_VER: 32,
    GET_FW_VER: 32, READ_PROD_INFO: 46, AUTO_ENROLL: 2, AUTO_IDENTIFY: 5,
}  # fmt: skip

# SetSysPara's parameter numbers, and what they may be set to
PARAM_BAUD, PARAM_SECURITY, PARAM_PACKET_SIZE = 4, 5, 6
BAUD_FACTORS = (1, 2, 4, 6, 12)  # baud = 9600 * N, as the manual lists them
SECURITY_LEVELS = (1, 2, 3, 4, 5)

# the system status register (ReadSysPara), bit by bit
STATUS_BUSY, STATUS_PASS, STATUS_PWD, STATUS_IMAGE = 0x1, 0x2, 0x4, 0x8

# AutoEnroll's and AutoIdentify's steps, as their staged acknowledgements name them
ENROLL_CAPTURE_STEPS = (0x01, 0x03, 0x05, 0x07, 0x09, 0x11)  # the manual's codes, as written
ENROLL_EXTRACT_STEPS = (0x02, 0x04, 0x06, 0x08, 0x10, 0x12)
ENROLL_DUPLICATE_CHECK, ENROLL_MERGE, ENROLL_STORE = 0x0D, 0x0E, 0x0F
ENROLL_AUTO_ID = 0xC8  # an AutoEnroll location from here up: the first free slot
IDENTIFY_CAPTURE, IDENTIFY_EXTRACT, IDENTIFY_SEARCH = 0x01, 0x02, 0x03
NOTEPAD_PAGES, NOTEPAD_PAGE_SIZE = 16, 32
INFO_PAGE_SIZE = 512
TEMPLATE_SIZE = 1536  # bytes of a template through UpChar/DownChar (R503 manual)

# confirmation codes: the first byte of an acknowledgement's payload
OK, PACKET_ERROR, NO_FINGER, CAPTURE_FAILED = 0x00, 0x01, 0x02, 0x03
TOO_DISORDERLY, TOO_FEW_FEATURES, NO_MATCH, NOT_FOUND = 0x06, 0x07, 0x08, 0x09
MERGE_MISMATCH, BAD_LOCATION, TEMPLATE_READ_ERROR = 0x0A, 0x0B, 0x0C
UPLOAD_FEATURE_FAILED, CANNOT_RECEIVE, UPLOAD_IMAGE_FAILED = 0x0D, 0x0E, 0x0F
DELETE_FAILED, EMPTY_FAILED, WRONG_PASSWORD, NO_VALID_IMAGE = 0x10, 0x11, 0x13, 0x15
FLASH_ERROR, INVALID_REGISTER, BAD_REGISTER_VALUE, BAD_NOTEPAD_PAGE = 0x18, 0x1A, 0x1B, 0x1C
LIBRARY_FULL, WRONG_ADDRESS, PASSWORD_FIRST, TEMPLATE_EMPTY = 0x1F, 0x20, 0x21, 0x22
LIBRARY_EMPTY, TIMED_OUT, ALREADY_EXISTS, SENSOR_ERROR = 0x24, 0x26, 0x27, 0x29
UNSUPPORTED, HARDWARE_ERROR, EXECUTION_FAILED = 0xFC, 0xFD, 0xFE
READY = 0x55  # GetEcho's answer and the byte sent alone after power-up: the module works

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
    BAD_REGISTER_VALUE: "incorrect configuration of the register",
    BAD_NOTEPAD_PAGE: "wrong notepad page number",
    LIBRARY_FULL: "the fingerprint library is full",
    WRONG_ADDRESS: "wrong module address",
    PASSWORD_FIRST: "the password must be verified first",
    TEMPLATE_EMPTY: "the template slot is taken (or empty)",
    LIBRARY_EMPTY: "the fingerprint library is empty",
    TIMED_OUT: "timed out waiting for a finger",
    ALREADY_EXISTS: "the fingerprint is already enrolled",
    SENSOR_ERROR: "sensor hardware error",
    UNSUPPORTED: "unsupported command",
    HARDWARE_ERROR: "hardware error",
    EXECUTION_FAILED: "command execution failed",
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


@dataclass(frozen=True)
class ProductInfo:
    """ReadProdInfo's 46 bytes: strings are ASCII padded with 0x00, numbers big-endian."""

    module_type: str
    batch: str
    serial: str
    hardware_version: tuple[int, int]
    sensor_type: str
    image_width: int
    image_height: int
    template_size: int
    library_size: int

    LAYOUT = ">16s4s8sBB8sHHHH"

    @classmethod
    def unpack(cls, data: bytes) -> ProductInfo:
        module, batch, serial_, hw_main, hw_sub, sensor, w, h, tsize, total = struct.unpack(
            cls.LAYOUT, data[:46]
        )

        def text(b: bytes) -> str:
            return b.rstrip(b"\0").decode("ascii", "replace")

        return cls(
            text(module), text(batch), text(serial_), (hw_main, hw_sub), text(sensor),
            w, h, tsize, total,
        )  # fmt: skip

    def pack(self) -> bytes:
        return struct.pack(
            self.LAYOUT,
            self.module_type.encode(), self.batch.encode(), self.serial.encode(),
            *self.hardware_version, self.sensor_type.encode(), self.image_width,
            self.image_height, self.template_size, self.library_size,
        )  # fmt: skip


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
        last_byte, wait = time.monotonic(), ReadDeadline(deadline)
        while True:
            while self._queue:
                packet = self._queue.pop(0)
                if packet.pid in pids:  # not, say, our own command echoed by a loopback
                    return packet
            remaining = wait.left()
            if remaining is None:
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

    def _receive_data(self, name: str, timeout_s: float | None) -> bytes:
        """The data packets that follow an acknowledgement, up to the last one."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        data = bytearray()
        while True:
            packet = self._receive(f"{name} data", deadline, (PID_DATA, PID_END))
            data += packet.payload
            if packet.pid == PID_END:
                return bytes(data)

    def _send_data(self, name: str, data: bytes) -> None:
        """Data packets of the module's packet size, the last one marked: not acknowledged."""
        chunks = [data[i : i + self.packet_size] for i in range(0, len(data), self.packet_size)]
        for i, chunk in enumerate(chunks):
            pid = PID_END if i == len(chunks) - 1 else PID_DATA
            self._send(Packet(pid, chunk, self.address), f"{name} data")

    def _staged(
        self,
        instruction: int,
        args: bytes,
        final_step: int,
        on_step: Callable[[int, bytes], None] | None,
        timeout_s: float,
    ) -> tuple[int, bytes]:
        """AutoEnroll/AutoIdentify: acknowledgements step by step, until the last step's or
        an error's. Each step's ack must come within timeout_s of the one before."""
        name = COMMAND_NAMES[instruction]
        code, rest = self.command(instruction, args, ok=tuple(range(256)), timeout_s=timeout_s)
        while code == OK and rest[:1] != bytes([final_step]):
            if on_step is not None:
                on_step(rest[0] if rest else 0, rest[1:])
            ack = self._receive(name, time.monotonic() + timeout_s, (PID_ACK,))
            code, rest = ack.payload[0], ack.payload[1:]
        return code, rest

    # -- system ------------------------------------------------------------------------
    def handshake(self) -> None:
        """HandShake (40h): OK when the module works and takes commands."""
        self.command(HANDSHAKE)

    def echo(self) -> None:
        """GetEcho (53h), the older modules' handshake: answered READY (55h)."""
        self.command(GET_ECHO, ok=(READY,))

    def check_sensor(self) -> None:
        """OK, or FingerprintAckError(SENSOR_ERROR) when the sensor is broken."""
        self.command(CHECK_SENSOR)

    def verify_password(self, password: int = 0) -> None:
        self.command(VFY_PWD, struct.pack(">I", password))

    def set_password(self, password: int) -> None:
        """Kept in the module's flash: from its next power-up, VfyPwd must come first."""
        self.command(SET_PWD, struct.pack(">I", password))

    def set_address(self, address: int) -> None:
        """The module answers from its new address at once; so does this driver."""
        name = COMMAND_NAMES[SET_ADDER]
        self._start()
        self._send(
            Packet(PID_COMMAND, bytes([SET_ADDER]) + struct.pack(">I", address), self.address), name
        )
        self.address = self.parser.address = address
        ack = self._receive(name, time.monotonic() + self.timeout_s, (PID_ACK,))
        if not ack.payload or ack.payload[0] != OK:
            raise FingerprintAckError(name, ack.payload[0] if ack.payload else PACKET_ERROR)

    def set_sys_para(self, parameter: int, value: int) -> None:
        self.command(SET_SYS_PARA, bytes([parameter, value]))
        self._params = None

    def set_baudrate(self, baudrate: int) -> None:
        """Kept in flash; the module uses it from its next power-up (R503 manual)."""
        if baudrate % 9600 or baudrate // 9600 not in BAUD_FACTORS:
            raise ValueError(f"baud rate {baudrate}: 9600 times one of {BAUD_FACTORS}")
        self.set_sys_para(PARAM_BAUD, baudrate // 9600)

    def set_security_level(self, level: int) -> None:
        self.set_sys_para(PARAM_SECURITY, level)

    def set_packet_size(self, size: int) -> None:
        """Data packets of this size each way from now on."""
        if size not in PACKET_SIZES:
            raise ValueError(f"packet size {size}: one of {PACKET_SIZES}")
        self.set_sys_para(PARAM_PACKET_SIZE, PACKET_SIZES.index(size))
        self.packet_size = size

    def random_code(self) -> int:
        _, data = self.command(GET_RANDOM_CODE)
        return int(struct.unpack(">I", data[:4])[0])

    def _version(self, instruction: int) -> str:
        _, data = self.command(instruction)
        return data[:32].rstrip(b"\0").decode("ascii", "replace")

    def algorithm_version(self) -> str:
        return self._version(GET_ALG_VER)

    def firmware_version(self) -> str:
        return self._version(GET_FW_VER)

    def product_info(self) -> ProductInfo:
        _, data = self.command(READ_PROD_INFO)
        if len(data) < 46:
            raise FingerprintLinkError(f"ReadProdInfo: {len(data)} bytes of product information")
        return ProductInfo.unpack(data)

    def read_info_page(self) -> bytes:
        self.command(READ_INF_PAGE)
        return self._receive_data("ReadINFpage", None)

    def write_notepad(self, page: int, data: bytes) -> None:
        """One 32-byte page of the module's flash notepad, written whole (shorter is padded)."""
        if len(data) > NOTEPAD_PAGE_SIZE:
            raise ValueError(f"{len(data)} bytes: a notepad page holds {NOTEPAD_PAGE_SIZE}")
        self.command(WRITE_NOTEPAD, bytes([page]) + data.ljust(NOTEPAD_PAGE_SIZE, b"\0"))

    def read_notepad(self, page: int) -> bytes:
        _, data = self.command(READ_NOTEPAD, bytes([page]))
        return data[:NOTEPAD_PAGE_SIZE]

    def cancel(self) -> None:
        """Ends a running AutoEnroll or AutoIdentify."""
        self.command(CANCEL)

    def sys_params(self, *, refresh: bool = False) -> SysParams:
        if self._params is None or refresh:
            _, data = self.command(READ_SYS_PARA)
            if len(data) < 16:
                raise FingerprintLinkError(f"ReadSysPara: {len(data)} bytes of parameters")
            status, sid, size, level, addr, psize, baud = struct.unpack(">HHHHIHH", data[:16])
            self._params = SysParams(
                status, sid, size, level, addr, PACKET_SIZES[min(psize, 3)], baud * 9600
            )
            self.packet_size = self._params.packet_size  # what the module sends, we send
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

    def get_image_ex(self) -> None:
        """As GenImg, but a poor image is refused (TOO_FEW_FEATURES) rather than taken."""
        self.command(GET_IMAGE_EX)

    def up_image(self, *, timeout_s: float | None = None) -> bytes:
        """The image buffer: two pixels a byte, the high nibble first (R503: 192 x 192)."""
        self.command(UP_IMAGE, timeout_s=timeout_s)
        return self._receive_data("UpImage", timeout_s)

    def down_image(self, image: bytes) -> None:
        self.command(DOWN_IMAGE)
        self._send_data("DownImage", image)

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

    def auto_enroll(
        self,
        page_id: int = ENROLL_AUTO_ID,
        *,
        overwrite: bool = False,
        allow_duplicate: bool = False,
        report_steps: bool = True,
        lift_between: bool = True,
        on_step: Callable[[int, bytes], None] | None = None,
        step_timeout_s: float = 15.0,
    ) -> int:
        """Six captures, merged and stored by the module alone: the slot it was stored in.
        on_step(step, rest) hears each staged acknowledgement as it comes."""
        config = bytes([page_id, overwrite, allow_duplicate, report_steps, lift_between])
        code, rest = self._staged(AUTO_ENROLL, config, ENROLL_STORE, on_step, step_timeout_s)
        if code != OK:
            raise FingerprintAckError("AutoEnroll", code)
        return rest[1] if len(rest) > 1 else page_id

    def auto_identify(
        self,
        *,
        security_level: int = 3,
        start: int = 0,
        end: int | None = None,
        report_steps: bool = True,
        tries: int = 1,
        on_step: Callable[[int, bytes], None] | None = None,
        step_timeout_s: float = 15.0,
    ) -> SearchHit | None:
        """Capture, extract and search by the module alone: the hit, or None if not found.
        end is the last slot searched (inclusive); tries 0 means until a finger is found."""
        if end is None:
            end = min(255, self.sys_params().library_size - 1)
        config = bytes([security_level, start, end, report_steps, tries])
        code, rest = self._staged(AUTO_IDENTIFY, config, IDENTIFY_SEARCH, on_step, step_timeout_s)
        if code == NOT_FOUND:
            return None
        if code != OK:
            raise FingerprintAckError("AutoIdentify", code)
        page_id, score = struct.unpack(">HH", rest[1:5])
        return SearchHit(page_id, score)

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
        return self._receive_data("UpChar", timeout_s)

    def down_char(self, buffer_id: int, data: bytes) -> None:
        """Send a template into a char buffer. The module does not acknowledge the data
        packets: a bad template shows when it is stored or matched."""
        if not data:
            raise ValueError("an empty template")
        self.command(DOWN_CHAR, bytes([buffer_id]))
        self._send_data("DownChar", data)

    def read_template(self, page_id: int) -> bytes:
        """A stored template, for mirroring it (sealed, L-10) on the host."""
        self.load_char(1, page_id)
        return self.up_char(1)

    def write_template(self, page_id: int, template: bytes) -> None:
        self.down_char(1, template)
        self.store(1, page_id)
