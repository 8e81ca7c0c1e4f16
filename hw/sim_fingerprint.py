"""A simulated R503-class fingerprint module on a pseudo-terminal, speaking from the module's side.

Any client of the real module (hw.fingerprint, or another written for these modules)
opens `sim.path` as its serial port and works unchanged. The world is the simulator's
methods: place(finger, quality…) puts a finger on the sensor, inject() breaks the line.

The matcher is a model, not an algorithm: a finger is a stable random feature vector
(from its id and the seed); a capture sees a contiguous part of it (the placement) with
noise (how dry, smudged or moved it was). Scores are z-scores of the correlation over
the seen overlap, so an impostor's score does not grow with the overlap and the
threshold means the same false-accept rate whatever was seen. The parameters below were
chosen so that the measured rates land near the vendor's (FAR ≤ 0.001 %, FRR ≤ 1 %).
"""

from __future__ import annotations

import logging
import math
import os
import random
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import compress
from operator import mul
from pathlib import Path
from typing import Any

from hw import fingerprint as fp
from hw.sim_finger_auto import AutoCommands
from hw.sim_finger_image import R503_IMAGE_SIZE, ImageMemory, image_bytes, pack_nibbles, render
from hw.sim_flash import Flash
from hw.uart import Faults, ModuleSide

log = logging.getLogger(__name__)

DIMS = 512  # features per finger
MIN_OVERLAP = 64  # fewer dims seen by both sides: no comparison possible (score 0)
MIN_COVERAGE = 0.35  # less of the finger seen: "too few features"
MAX_NOISE = 1.6  # noisier image: "too disorderly"
SCORE_SCALE = 20  # score = z * SCORE_SCALE, as the module reports a 16-bit score
MATCH_Z = 5.5  # search/match threshold (security level 3): FAR ~2e-8 a comparison
MERGE_Z = 4.0  # RegModel: the two captures must be of one finger
QUANT = 28.0  # int8 quantisation of feature values in a char file
CHAR_MAGIC = b"SF"
CHAR_SIZE = fp.TEMPLATE_SIZE  # bytes of a char file through UpChar/DownChar, as the R503's

# per quality: (noise sigma as lognormal (median, spread), coverage range)
QUALITIES = {
    "good": ((0.7, 0.4), (0.40, 1.0)),  # a person's natural variation, misses included
    "shifted": ((0.7, 0.4), (0.40, 0.55)),  # off to one side: less overlap, mostly usable
    "partial": ((0.7, 0.4), (0.15, 0.30)),  # tip only: too few features
    "dry": ((2.2, 0.10), (0.6, 1.0)),  # broken ridges: too disorderly
}
NONE = "none"


# -- the feature model (shared with the palm simulator) ------------------------------------
def identity_vector(key: str, dims: int = DIMS) -> list[float]:
    rng = random.Random(key)
    return [rng.gauss(0.0, 1.0) for _ in range(dims)]


@dataclass(frozen=True)
class Features:
    """Feature values (0 where not seen) and which were seen (1/0)."""

    values: tuple[float, ...]
    seen: tuple[int, ...]

    @property
    def coverage(self) -> float:
        return sum(self.seen) / len(self.seen)


def z_score(a: Features, b: Features) -> float:
    """Correlation over the dims both saw, times sqrt(overlap): ~N(0,1) for two strangers."""
    n = sum(map(mul, a.seen, b.seen))
    if n < MIN_OVERLAP:
        return 0.0
    dot = sum(map(mul, a.values, b.values))  # unseen dims are 0 on one side at least
    na = sum(compress(map(mul, a.values, a.values), b.seen))
    nb = sum(compress(map(mul, b.values, b.values), a.seen))
    if na <= 0 or nb <= 0:
        return 0.0
    return dot / math.sqrt(na * nb) * math.sqrt(n)


def merge(a: Features, b: Features) -> Features:
    values = tuple(
        (x + y) / 2 if sa and sb else (x if sa else y)
        for x, y, sa, sb in zip(a.values, b.values, a.seen, b.seen)
    )
    return Features(values, tuple(sa | sb for sa, sb in zip(a.seen, b.seen)))


def quantise(f: Features) -> Features:
    """As stored in flash and in a char file: what the library holds is what uploads."""
    q = tuple(
        max(-127, min(127, round(v * QUANT))) / QUANT if s else 0.0
        for v, s in zip(f.values, f.seen)
    )
    return Features(q, f.seen)


def pack_char(f: Features, *, magic: bytes = CHAR_MAGIC, size: int = CHAR_SIZE) -> bytes:
    """A char file: magic, version, dims, seen bits, int8 values, a 16-bit sum; padded to size."""
    bits = bytearray(len(f.seen) // 8)
    for i, s in enumerate(f.seen):
        bits[i // 8] |= s << (i % 8)
    values = bytes(max(-127, min(127, round(v * QUANT))) & 0xFF for v in f.values)
    body = magic + struct.pack(">BH", 1, len(f.values)) + bytes(bits) + values
    body += struct.pack(">H", sum(body) & 0xFFFF)
    return body.ljust(size, b"\0")


def unpack_char(data: bytes, *, magic: bytes = CHAR_MAGIC, dims: int = DIMS) -> Features | None:
    """None when the bytes are no char file of ours (as a real module's integrity check)."""
    head = 5
    if len(data) < head or data[:2] != magic:
        return None
    version, n = struct.unpack(">BH", data[2:5])
    end = head + dims // 8 + dims
    if version != 1 or n != dims or len(data) < end + 2:
        return None
    if struct.unpack(">H", data[end : end + 2])[0] != sum(data[:end]) & 0xFFFF:
        return None
    bits = data[head : head + dims // 8]
    seen = tuple(bits[i // 8] >> (i % 8) & 1 for i in range(dims))
    raw = data[head + dims // 8 : end]
    values = tuple((b - 256 if b > 127 else b) / QUANT if s else 0.0 for b, s in zip(raw, seen))
    return Features(values, seen)


# -- the module ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    finger: str
    noise: float
    start: int
    width: int


FOREIGN_IMAGE = Image("", math.inf, 0, 0)  # downloaded, not rendered here: no features to read


@dataclass(frozen=True)
class Timing:
    """How long the module takes. The defaults answer at once, for fast tests; R503_TIMING
    is the part's own (its manual: image < 0.2 s, features < 0.5 s)."""

    capture_s: float = 0.0  # GenImg, GetImageEx and each automatic capture
    extract_s: float = 0.0  # Img2Tz and each automatic feature extraction
    finger_wait_s: float = 10.0  # AutoEnroll/AutoIdentify give up without a finger this long
    poll_s: float = 0.02  # how often the automatic commands look for a finger


R503_TIMING = Timing(capture_s=0.2, extract_s=0.5)


@dataclass
class Settings:
    """What the module keeps in flash besides templates: password, address, system
    parameters and the 16-page notepad. The baud rate is used from the next power-up."""

    password: int = 0
    address: int = fp.DEFAULT_ADDRESS
    baud_factor: int = fp.DEFAULT_BAUD // 9600
    security_level: int = 3
    packet_size: int = 128
    notepad: list[bytes] = field(
        default_factory=lambda: [bytes(fp.NOTEPAD_PAGE_SIZE)] * fp.NOTEPAD_PAGES
    )

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "notepad": [p.hex() for p in self.notepad]}

    @classmethod
    def from_record(cls, rec: dict[str, Any], default: Settings) -> Settings:
        try:
            return cls(
                int(rec["password"]), int(rec["address"]), int(rec["baud_factor"]),
                int(rec["security_level"]), int(rec["packet_size"]),
                [bytes.fromhex(p) for p in rec["notepad"]],
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            log.error("simulated fingerprint flash: settings unreadable (%s), factory ones", e)
            return default


CHAR_BUFFERS = range(1, 7)  # CharBuffer1..6
LEVEL_STEP_Z = 0.5  # each security level away from 3 moves the match threshold this much

# the argument bytes each instruction needs: fewer is a packet error, not a crash
ARGUMENT_LENGTHS = {
    fp.IMG2TZ: 1, fp.SEARCH: 5, fp.HIGH_SPEED_SEARCH: 5, fp.STORE: 3, fp.LOAD_CHAR: 3,
    fp.UP_CHAR: 1, fp.DOWN_CHAR: 1, fp.DELET_CHAR: 4, fp.SET_SYS_PARA: 2, fp.SET_PWD: 4,
    fp.VFY_PWD: 4, fp.SET_ADDER: 4, fp.WRITE_NOTEPAD: 1 + fp.NOTEPAD_PAGE_SIZE,
    fp.READ_NOTEPAD: 1, fp.READ_INDEX_TABLE: 1, fp.AUTO_ENROLL: 5, fp.AUTO_IDENTIFY: 5,
    fp.AURA_LED_CONFIG: 4,
}  # fmt: skip
# answered before the password is verified (they tell nothing of the library), and while
# an automatic command runs
ALWAYS_ANSWERED = (fp.VFY_PWD, fp.HANDSHAKE, fp.GET_ECHO)
WHILE_BUSY = (fp.CANCEL, fp.READ_SYS_PARA, fp.HANDSHAKE, fp.GET_ECHO)

ALGORITHM_VERSION = "lockmesh-sim z-score 1"
FIRMWARE_VERSION = "lockmesh-sim R503 1"


class FingerprintSimulator(AutoCommands):
    """An R503-class module: 200 template slots, six char buffers, an image buffer, a ring
    LED, a notepad; the R503 manual's instruction set (hw/README.md has the table)."""

    def __init__(
        self,
        *,
        capacity: int = 200,
        seed: int = 0,
        address: int = fp.DEFAULT_ADDRESS,
        password: int = 0,
        require_password: bool | None = None,
        packet_size: int = 128,
        match_z: float = MATCH_Z,
        good: tuple[tuple[float, float], tuple[float, float]] | None = None,
        timing: Timing = Timing(),
        image_size: tuple[int, int] = R503_IMAGE_SIZE,
        flash: Path | None = None,
    ) -> None:
        """address, password and packet_size are the factory settings, used when the flash
        holds none; require_password forces VfyPwd first even for the default password.
        good overrides the "good" quality's (noise (median, spread), coverage range);
        flash is a file that keeps the library and settings across restarts."""
        self.capacity, self.seed, self.match_z = capacity, seed, match_z
        self.timing, self.image_size = timing, image_size
        self._force_password = bool(require_password)
        self.qualities = {**QUALITIES, **({"good": good} if good else {})}
        self.port = ModuleSide()
        self.path = self.port.path
        self.faults = Faults(fp.HEADER, seed)
        self.flash = Flash(flash)  # the library, as it always was
        self.system_flash = Flash(flash and flash.with_name(f"{flash.stem}-system{flash.suffix}"))
        factory = Settings(password=password, address=address, packet_size=packet_size)
        kept = self.system_flash.load().get(0)
        self.settings = factory if kept is None else Settings.from_record(kept, factory)
        self.library: dict[int, Features] = {  # flash: survives unplugging and restarts
            page: f
            for page, rec in self.flash.load().items()
            if (f := unpack_char(bytes.fromhex(rec.get("char", "")))) is not None
        }
        self.led: tuple[int, int, int, int] | None = None
        self.sensor_ok = True  # False: CheckSensor says 29h, captures fail
        self.stats: Counter[str] = Counter()
        self.powered = True
        self._rng = random.Random(f"captures:{seed}")
        # Each placement draws its images and features from a stream of its own: what a
        # host captures first does not depend on how many images its polling took before
        # (a test's captures were a different draw on a busier machine).
        self._placements = 0
        self._placement_rng = random.Random(f"placement:{seed}:0")
        self._sample_rng = random.Random(f"samples:{seed}")
        self._fingers: dict[str, list[float]] = {}
        self._placement: list[tuple[str, str]] = []
        self._lifted_unseen = False  # a finger went since the last image: it must show
        self._world = threading.Lock()
        self._line = threading.Lock()  # one packet at a time on the wire
        self._images = ImageMemory()
        self._instruction = 0  # the command being answered: its ack's fixed length
        self._foreign = b""  # a downloaded image this simulator did not render
        self._init_auto()
        self._power_on_state()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-fingerprint", daemon=True)

    def _power_on_state(self) -> None:
        self.baud = 9600 * self.settings.baud_factor  # as kept in flash at power-up
        self.parser = fp.PacketParser(self.address)
        self.image: Image | None = None
        self.buffers: dict[int, Features | None] = dict.fromkeys(CHAR_BUFFERS)
        self._verified = False
        self._matched = False
        self._download: tuple[str, int, bytearray] | None = None

    @property
    def address(self) -> int:
        return self.settings.address

    @property
    def password(self) -> int:
        return self.settings.password

    @property
    def packet_size(self) -> int:
        return self.settings.packet_size

    def threshold(self, level: int | None = None) -> float:
        """The match score needed at a security level (3: match_z), by default the module's."""
        level = self.settings.security_level if level is None else level
        return (self.match_z + (level - 3) * LEVEL_STEP_Z) * SCORE_SCALE

    @property
    def status(self) -> int:
        """The system status register, as ReadSysPara reports it."""
        return (
            (fp.STATUS_BUSY if self.busy else 0)
            | (fp.STATUS_PASS if self._matched else 0)
            | (fp.STATUS_PWD if self._verified else 0)
            | (fp.STATUS_IMAGE if self.image is not None else 0)
        )

    def start(self) -> FingerprintSimulator:
        self._thread.start()
        self._announce()
        return self

    def close(self) -> None:
        self._stop.set()
        self._cancel_auto()
        if self._thread.is_alive():
            self._thread.join(timeout=1)
        self.port.close()

    def __enter__(self) -> FingerprintSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the world ---------------------------------------------------------------------
    def place(self, finger: object, *qualities: str) -> None:
        """Put a finger on the sensor. Each image taken takes the next quality; the last one
        stays. Qualities: good (natural variation), shifted, partial, dry, none (lifted).

        A finger lifted and put back before the sensor took an image is seen gone for one
        image first: a hand is never back faster than the host polls (10 Hz), and a host
        that saw no gap would take the new placement for the old one.
        """
        qualities = qualities or ("good",)
        for q in qualities:
            if q not in self.qualities and q != NONE:
                raise ValueError(f"quality {q!r}: one of {', '.join([*self.qualities, NONE])}")
        with self._world:
            gap = [("", NONE)] if self._lifted_unseen else []
            self._placement = gap + [(str(finger), q) for q in qualities]
            self._lifted_unseen = False
            self._placements += 1
            self._placement_rng = random.Random(f"placement:{self.seed}:{self._placements}")

    def lift(self) -> None:
        with self._world:
            self._lifted_unseen = self._lifted_unseen or bool(self._placement)
            self._placement = []

    def identity(self, finger: object) -> list[float]:
        key = str(finger)
        if key not in self._fingers:
            self._fingers[key] = identity_vector(f"finger:{self.seed}:{key}")
        return self._fingers[key]

    def _next_image(self) -> Image | None:
        with self._world:
            if not self._placement:
                self._lifted_unseen = False
                return None
            finger, quality = self._placement[0]
            if len(self._placement) > 1:
                self._placement.pop(0)
        return None if quality == NONE else self._image(finger, quality, self._placement_rng)

    def _image(self, finger: str, quality: str, rng: random.Random) -> Image:
        (median, spread), (lo, hi) = self.qualities[quality]
        noise = median * math.exp(rng.gauss(0.0, spread))
        width = round(rng.uniform(lo, hi) * DIMS)
        return Image(finger, noise, rng.randrange(DIMS), width)

    def _usable(self, image: Image) -> int:
        """Img2Tz's verdict on an image: OK, or why no features come out of it."""
        if image.noise > MAX_NOISE:
            return fp.TOO_DISORDERLY
        if image.width < MIN_COVERAGE * DIMS:
            return fp.TOO_FEW_FEATURES
        return fp.OK

    def _extract(self, image: Image, rng: random.Random | None = None) -> Features:
        v, rng = self.identity(image.finger), rng or self._placement_rng
        seen = [0] * DIMS
        for i in range(image.start, image.start + image.width):
            seen[i % DIMS] = 1
        values = tuple(x + rng.gauss(0.0, image.noise) if s else 0.0 for x, s in zip(v, seen))
        return quantise(Features(values, tuple(seen)))

    def sample(self, finger: object, quality: str = "good") -> Features | None:
        """One capture's features as Img2Tz would extract them (None where it refuses), off
        the line and with its own random stream: for measuring the matcher."""
        image = self._image(str(finger), quality, self._sample_rng)
        return self._extract(image, self._sample_rng) if self._usable(image) == fp.OK else None

    def score(self, a: Features, b: Features) -> int:
        return max(0, min(0xFFFF, round(z_score(a, b) * SCORE_SCALE)))

    def picture(self, image: Image) -> bytes:
        """The image as UpImage sends it (see hw/sim_finger_image.py)."""
        data = pack_nibbles(render(image, DIMS, self.seed, self.image_size))
        self._images.remember(data, image)
        return data

    # -- faults and power --------------------------------------------------------------
    def inject(self, fault: str, count: int | None = None) -> None:
        """garbage | truncate | bad-checksum | silent: the next count answers, or until cleared."""
        self.faults.inject(fault, count)

    def clear_faults(self) -> None:
        self.faults.clear()

    def unplug(self) -> None:
        """The module loses power: it hears nothing and says nothing; RAM is lost, flash kept."""
        self.powered = False
        self._cancel_auto()

    def replug(self) -> None:
        self._power_on_state()
        self.powered = True
        self._announce()

    def _announce(self) -> None:
        self._write(bytes([fp.READY_BYTE]))

    # -- the line ----------------------------------------------------------------------
    def _line_speed_matches(self) -> bool:
        """A host at another baud rate hears noise, and is heard as noise."""
        host = self.port.host_baud()
        return host is None or host == self.baud

    def _write(self, wire: bytes) -> None:
        if not self._line_speed_matches():
            wire = bytes(self._rng.randrange(256) for _ in wire)
        with self._line:
            self.port.write(wire)

    def _run(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(0.05)
            if not data or not self.powered:
                continue  # unplugged: whatever the host sends is lost
            if not self._line_speed_matches():
                self.stats["wrong baud rate"] += 1
                continue
            # only whole packets for our address with a good checksum: anything else gets
            # no answer at all, as the manual says of a wrong address
            for packet in self.parser.feed(data):
                try:
                    self._handle(packet)
                except Exception:  # a bug here must not kill the module: answer an error
                    log.exception("simulated fingerprint module: command failed")
                    self._reply(fp.EXECUTION_FAILED)

    def _send(self, pid: int, payload: bytes) -> None:
        wire = self.faults.apply(fp.encode(fp.Packet(pid, payload, self.address)))
        if wire:
            self._write(wire)

    def _reply(self, code: int, data: bytes = b"", *, to: int | None = None) -> None:
        """The acknowledgement, as long as the manual fixes it for the instruction whatever
        the code: a client may read the whole packet by its length."""
        length = fp.ACK_DATA_LENGTHS.get(self._instruction if to is None else to, 0)
        self._send(fp.PID_ACK, bytes([code]) + data.ljust(length, b"\0")[: max(length, len(data))])

    def _send_data(self, data: bytes) -> None:
        size = self.packet_size
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        for i, chunk in enumerate(chunks):
            self._send(fp.PID_END if i == len(chunks) - 1 else fp.PID_DATA, chunk)

    def _handle(self, packet: fp.Packet) -> None:
        if packet.pid in (fp.PID_DATA, fp.PID_END):
            self._receive_data(packet)
            return
        if packet.pid != fp.PID_COMMAND or not packet.payload:
            return
        instruction, args = packet.payload[0], packet.payload[1:]
        if self.busy and instruction not in WHILE_BUSY:
            self.stats["ignored while busy"] += 1  # one command at a time, Cancel apart
            return
        self._download = None  # a command ends an unfinished download
        self._instruction = instruction
        self.stats[fp.COMMAND_NAMES.get(instruction, hex(instruction))] += 1
        handler = self._handlers().get(instruction)
        if handler is None:
            self._reply(fp.UNSUPPORTED)
        elif self._password_needed() and instruction not in ALWAYS_ANSWERED:
            self._reply(fp.PASSWORD_FIRST)
        elif len(args) < ARGUMENT_LENGTHS.get(instruction, 0):
            self.stats["arguments too short"] += 1
            self._reply(fp.PACKET_ERROR)
        else:
            handler(args)

    def _password_needed(self) -> bool:
        return (self.password != 0 or self._force_password) and not self._verified

    def _handlers(self) -> dict[int, Callable[[bytes], None]]:
        return {
            fp.HANDSHAKE: lambda a: self._reply(fp.OK),
            fp.GET_ECHO: lambda a: self._reply(fp.READY),
            fp.CHECK_SENSOR: lambda a: self._reply(fp.OK if self.sensor_ok else fp.SENSOR_ERROR),
            fp.VFY_PWD: self._vfy_pwd,
            fp.SET_PWD: self._set_pwd,
            fp.SET_ADDER: self._set_adder,
            fp.SET_SYS_PARA: self._set_sys_para,
            fp.READ_SYS_PARA: lambda a: self._reply(fp.OK, self._sys_para()),
            fp.GET_RANDOM_CODE: lambda a: self._reply(fp.OK, os.urandom(4)),
            fp.READ_INF_PAGE: self._read_info_page,
            fp.WRITE_NOTEPAD: self._write_notepad,
            fp.READ_NOTEPAD: self._read_notepad,
            fp.GET_ALG_VER: lambda a: self._reply(fp.OK, ALGORITHM_VERSION.encode()),
            fp.GET_FW_VER: lambda a: self._reply(fp.OK, FIRMWARE_VERSION.encode()),
            fp.READ_PROD_INFO: lambda a: self._reply(fp.OK, self.product_info().pack()),
            fp.SOFT_RESET: self._soft_reset,
            fp.GEN_IMG: self._gen_img,
            fp.GET_IMAGE_EX: self._get_image_ex,
            fp.UP_IMAGE: self._up_image,
            fp.DOWN_IMAGE: self._down_image,
            fp.IMG2TZ: self._img2tz,
            fp.MATCH: self._match,
            fp.SEARCH: self._search,
            fp.HIGH_SPEED_SEARCH: self._search,
            fp.REG_MODEL: self._reg_model,
            fp.STORE: self._store,
            fp.LOAD_CHAR: self._load_char,
            fp.UP_CHAR: self._up_char,
            fp.DOWN_CHAR: self._down_char,
            fp.DELET_CHAR: self._delete,
            fp.EMPTY: self._empty,
            fp.TEMPLATE_NUM: lambda a: self._reply(fp.OK, struct.pack(">H", len(self.library))),
            fp.READ_INDEX_TABLE: self._index_table,
            fp.AURA_LED_CONFIG: self._led,
            fp.CANCEL: self._cancel,
            fp.AUTO_ENROLL: lambda a: self._start_auto(self._auto_enroll, a),
            fp.AUTO_IDENTIFY: lambda a: self._start_auto(self._auto_identify, a),
        }

    # -- system ------------------------------------------------------------------------
    def product_info(self) -> fp.ProductInfo:
        width, height = self.image_size
        return fp.ProductInfo(
            "R503-SIM", "SIM0", f"{self.seed:08d}"[-8:], (1, 0), "SIMCAP",
            width, height, CHAR_SIZE, self.capacity,
        )  # fmt: skip

    def _sys_para(self) -> bytes:
        s = self.settings
        return struct.pack(
            ">HHHHIHH", self.status, 0, self.capacity, s.security_level, s.address,
            fp.PACKET_SIZES.index(s.packet_size), s.baud_factor,
        )  # fmt: skip

    def _vfy_pwd(self, args: bytes) -> None:
        self._verified = struct.unpack(">I", args[:4])[0] == self.password
        self._reply(fp.OK if self._verified else fp.WRONG_PASSWORD)

    def _set_pwd(self, args: bytes) -> None:
        """Kept in flash; this session stays verified, the next power-up asks for it."""
        self.settings.password = struct.unpack(">I", args[:4])[0]
        self._verified = True  # the host that set it knows it
        self._save_flash()
        self._reply(fp.OK)

    def _set_adder(self, args: bytes) -> None:
        """The acknowledgement already comes from the new address (manual: SetAdder)."""
        self.settings.address = struct.unpack(">I", args[:4])[0]
        self.parser.address = self.address
        self._save_flash()
        self._reply(fp.OK)

    def _set_sys_para(self, args: bytes) -> None:
        parameter, value = args[0], args[1]
        s = self.settings
        if parameter == fp.PARAM_BAUD and value in fp.BAUD_FACTORS:
            s.baud_factor = value  # from the next power-up (manual: system parameters)
        elif parameter == fp.PARAM_SECURITY and value in fp.SECURITY_LEVELS:
            s.security_level = value
        elif parameter == fp.PARAM_PACKET_SIZE and value < len(fp.PACKET_SIZES):
            s.packet_size = fp.PACKET_SIZES[value]
        elif parameter in (fp.PARAM_BAUD, fp.PARAM_SECURITY, fp.PARAM_PACKET_SIZE):
            self._reply(fp.BAD_REGISTER_VALUE)
            return
        else:
            self._reply(fp.INVALID_REGISTER)
            return
        self._save_flash()
        self._reply(fp.OK)

    def _read_info_page(self, args: bytes) -> None:
        """512 bytes: ReadSysPara's 16, ReadProdInfo's 46, the algorithm's and firmware's
        version strings (32 each), zeros to the end. Our layout: the manual gives none."""
        page = (
            self._sys_para()
            + self.product_info().pack()
            + ALGORITHM_VERSION.encode().ljust(32, b"\0")
            + FIRMWARE_VERSION.encode().ljust(32, b"\0")
        )
        self._reply(fp.OK)
        self._send_data(page.ljust(fp.INFO_PAGE_SIZE, b"\0"))

    def _write_notepad(self, args: bytes) -> None:
        page = args[0]
        if page >= fp.NOTEPAD_PAGES:
            self._reply(fp.BAD_NOTEPAD_PAGE)
            return
        self.settings.notepad[page] = bytes(args[1 : 1 + fp.NOTEPAD_PAGE_SIZE])
        self._save_flash()
        self._reply(fp.OK)

    def _read_notepad(self, args: bytes) -> None:
        if args[0] >= fp.NOTEPAD_PAGES:
            self._reply(fp.BAD_NOTEPAD_PAGE)
        else:
            self._reply(fp.OK, self.settings.notepad[args[0]])

    def _soft_reset(self, args: bytes) -> None:
        self._reply(fp.OK)
        self._power_on_state()
        self._announce()

    # -- images --------------------------------------------------------------------------
    def _take_image(self) -> Image | int:
        """One image from the sensor, after the part's capture time: or why there is none."""
        self._stop.wait(self.timing.capture_s)
        if not self.sensor_ok:
            return fp.CAPTURE_FAILED
        return self._next_image() or fp.NO_FINGER

    def _gen_img(self, args: bytes) -> None:
        """A poor image is taken too: Img2Tz says why it has no features."""
        got = self._take_image()
        self.image = got if isinstance(got, Image) else None
        self._reply(fp.OK if isinstance(got, Image) else got)

    def _get_image_ex(self, args: bytes) -> None:
        """As GenImg, but a poor image is answered 07h. The buffer never keeps an older image."""
        got = self._take_image()
        self.image = got if isinstance(got, Image) else None
        if isinstance(got, int):
            self._reply(got)
        else:
            self._reply(fp.OK if self._usable(got) == fp.OK else fp.TOO_FEW_FEATURES)

    def _up_image(self, args: bytes) -> None:
        if self.image is None:
            self._reply(fp.UPLOAD_IMAGE_FAILED)
            return
        self._reply(fp.OK)
        if self.image is FOREIGN_IMAGE:
            self._send_data(self._foreign)
        else:
            self._send_data(self.picture(self.image))

    def _down_image(self, args: bytes) -> None:
        self._download = ("image", 0, bytearray())
        self._reply(fp.OK)

    def _img2tz(self, args: bytes) -> None:
        buffer_id = args[0]
        if buffer_id not in self.buffers:
            self._reply(fp.INVALID_REGISTER)
        elif self.image is None:
            self._reply(fp.NO_VALID_IMAGE)
        else:
            self._stop.wait(self.timing.extract_s)
            verdict = self._usable(self.image)
            if verdict == fp.OK:
                self.buffers[buffer_id] = self._extract(self.image)
            self._reply(verdict)

    # -- matching and the library --------------------------------------------------------
    def _match(self, args: bytes) -> None:
        a, b = self.buffers[1], self.buffers[2]
        if a is None or b is None:
            self._reply(fp.NO_VALID_IMAGE)
            return
        score = self.score(a, b)
        self._matched = score >= self.threshold()
        self._reply(fp.OK if self._matched else fp.NO_MATCH, struct.pack(">H", score))

    def best_match(
        self, probe: Features, pages: range, level: int | None = None
    ) -> tuple[int, int] | None:
        """The best template over the threshold among pages: (page, score)."""
        best, best_score = None, -1
        for page in pages:
            template = self.library.get(page)
            if template is not None:
                score = self.score(probe, template)
                if score > best_score:
                    best, best_score = page, score
        if best is None or best_score < self.threshold(level):
            return None
        return best, best_score

    def merge_captures(self, captures: list[Features]) -> Features | None:
        """One template from several captures (AutoEnroll's six), each averaged in where it
        saw; None when one of them is not of the finger the others are."""
        merged, counts = captures[0], list(captures[0].seen)
        for c in captures[1:]:
            if z_score(merged, c) < MERGE_Z:
                return None
            values = tuple(
                (m * n + v) / (n + 1) if s else m
                for m, v, n, s in zip(merged.values, c.values, counts, c.seen)
            )
            counts = [n + s for n, s in zip(counts, c.seen)]
            merged = Features(values, tuple(int(n > 0) for n in counts))
        return quantise(merged)

    def _search(self, args: bytes) -> None:
        buffer_id, start, count = struct.unpack(">BHH", args[:5])
        probe = self.buffers.get(buffer_id)
        if probe is None:
            self._reply(fp.NO_VALID_IMAGE)
            return
        if start >= self.capacity:
            self._reply(fp.BAD_LOCATION)
            return
        hit = self.best_match(probe, range(start, min(self.capacity, start + count)))
        self._matched = hit is not None
        if hit is None:
            self._reply(fp.NOT_FOUND)  # page and score 0, as the manual says
        else:
            self._reply(fp.OK, struct.pack(">HH", *hit))

    def _reg_model(self, args: bytes) -> None:
        a, b = self.buffers[1], self.buffers[2]
        if a is None or b is None:
            self._reply(fp.NO_VALID_IMAGE)
        elif z_score(a, b) < MERGE_Z:
            self._reply(fp.MERGE_MISMATCH)
        else:
            self.buffers[1] = self.buffers[2] = quantise(merge(a, b))
            self._reply(fp.OK)

    def _store(self, args: bytes) -> None:
        buffer_id, page = struct.unpack(">BH", args[:3])
        features = self.buffers.get(buffer_id)
        if page >= self.capacity:
            self._reply(fp.BAD_LOCATION)
        elif features is None:
            self._reply(fp.NO_VALID_IMAGE)
        else:
            self.library[page] = features
            self._save_flash()
            self._reply(fp.OK)

    def _load_char(self, args: bytes) -> None:
        buffer_id, page = struct.unpack(">BH", args[:3])
        if page >= self.capacity or buffer_id not in self.buffers:
            self._reply(fp.BAD_LOCATION)
        elif page not in self.library:
            self._reply(fp.TEMPLATE_READ_ERROR)
        else:
            self.buffers[buffer_id] = self.library[page]
            self._reply(fp.OK)

    def _up_char(self, args: bytes) -> None:
        features = self.buffers.get(args[0])
        if features is None:
            self._reply(fp.UPLOAD_FEATURE_FAILED)
            return
        self._reply(fp.OK)
        self._send_data(pack_char(features))

    def _down_char(self, args: bytes) -> None:
        if args[0] not in self.buffers:
            self._reply(fp.INVALID_REGISTER)
            return
        self._download = ("char", args[0], bytearray())
        self._reply(fp.OK)

    def _receive_data(self, packet: fp.Packet) -> None:
        if self._download is None:
            return  # data nobody asked for
        kind, buffer_id, data = self._download
        data += packet.payload
        limit = 4 * CHAR_SIZE if kind == "char" else image_bytes(self.image_size)
        if packet.pid == fp.PID_END:
            self._download = None
            if kind == "char":
                # a template that fails the integrity check leaves the buffer empty: the
                # next Store or Search says "no valid image/feature in the buffer"
                self.buffers[buffer_id] = unpack_char(bytes(data))
                self.stats[
                    "DownChar bad" if self.buffers[buffer_id] is None else "DownChar ok"
                ] += 1
            else:
                self._take_download(bytes(data))
        elif len(data) > limit:
            self._download = None
            if kind == "char":
                self.buffers[buffer_id] = None
            else:
                self.image = None

    def _take_download(self, data: bytes) -> None:
        if len(data) != image_bytes(self.image_size):
            self.image = None  # not an image of this sensor
            return
        known = self._images.recall(data)
        self.image = known if isinstance(known, Image) else FOREIGN_IMAGE
        self._foreign = data

    def _delete(self, args: bytes) -> None:
        page, count = struct.unpack(">HH", args[:4])
        if count == 0 or page + count > self.capacity:
            self._reply(fp.DELETE_FAILED)
            return
        for p in range(page, page + count):
            self.library.pop(p, None)
        self._save_flash()
        self._reply(fp.OK)

    def _empty(self, args: bytes) -> None:
        self.library.clear()
        self._save_flash()
        self._reply(fp.OK)

    def _save_flash(self) -> None:
        self.flash.save({page: {"char": pack_char(f).hex()} for page, f in self.library.items()})
        self.system_flash.save({0: self.settings.to_record()})

    def _index_table(self, args: bytes) -> None:
        base, table = args[0] * 256, bytearray(32)
        for page in self.library:
            if base <= page < base + 256:
                table[(page - base) // 8] |= 1 << ((page - base) % 8)
        self._reply(fp.OK, bytes(table))

    def _led(self, args: bytes) -> None:
        control, speed, colour, count = args[:4]
        if not 1 <= control <= 6 or not 1 <= colour <= 7:
            self._reply(fp.INVALID_REGISTER)
            return
        self.led = (control, speed, colour, count)
        self._reply(fp.OK)
