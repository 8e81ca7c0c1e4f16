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
import random
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from itertools import compress
from operator import mul
from pathlib import Path

from hw import fingerprint as fp
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
CHAR_SIZE = 640  # bytes of a char file (5 data packets of 128)

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


class FingerprintSimulator:
    """An R503-class module: 200 template slots, two char buffers, an image buffer, a ring LED."""

    def __init__(
        self,
        *,
        capacity: int = 200,
        seed: int = 0,
        address: int = fp.DEFAULT_ADDRESS,
        password: int = 0,
        require_password: bool = False,
        packet_size: int = 128,
        match_z: float = MATCH_Z,
        good: tuple[tuple[float, float], tuple[float, float]] | None = None,
        flash: Path | None = None,
    ) -> None:
        """good overrides the "good" quality's (noise (median, spread), coverage range);
        flash is a file that keeps the template library across restarts."""
        self.capacity, self.seed, self.address = capacity, seed, address
        self.password, self.require_password = password, require_password
        self.packet_size, self.match_z = packet_size, match_z
        self.qualities = {**QUALITIES, **({"good": good} if good else {})}
        self.port = ModuleSide()
        self.path = self.port.path
        self.faults = Faults(fp.HEADER, seed)
        self.flash = Flash(flash)
        self.library: dict[int, Features] = {  # flash: survives unplugging and restarts
            page: f
            for page, rec in self.flash.load().items()
            if (f := unpack_char(bytes.fromhex(rec.get("char", "")))) is not None
        }
        self.led: tuple[int, int, int, int] | None = None
        self.stats: Counter[str] = Counter()
        self.powered = True
        self._rng = random.Random(f"captures:{seed}")
        self._sample_rng = random.Random(f"samples:{seed}")
        self._fingers: dict[str, list[float]] = {}
        self._placement: list[tuple[str, str]] = []
        self._lifted_unseen = False  # a finger went since the last image: it must show
        self._world = threading.Lock()
        self._power_on_state()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-fingerprint", daemon=True)

    def _power_on_state(self) -> None:
        self.parser = fp.PacketParser(self.address)
        self.image: Image | None = None
        self.buffers: dict[int, Features | None] = {1: None, 2: None}
        self._verified = False
        self._download: tuple[int, bytearray] | None = None

    def start(self) -> FingerprintSimulator:
        self._thread.start()
        self._announce()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)
        self.port.close()

    def __enter__(self) -> FingerprintSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the world ---------------------------------------------------------------------
    def place(self, finger: object, *qualities: str) -> None:
        """Put a finger on the sensor. Each GenImg takes the next quality; the last one stays.

        Qualities: good (natural variation), shifted, partial, dry, none (lifted).
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
        return None if quality == NONE else self._image(finger, quality, self._rng)

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
        v, rng = self.identity(image.finger), rng or self._rng
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

    # -- faults and power --------------------------------------------------------------
    def inject(self, fault: str, count: int | None = None) -> None:
        """garbage | truncate | bad-checksum | silent: the next count answers, or until cleared."""
        self.faults.inject(fault, count)

    def clear_faults(self) -> None:
        self.faults.clear()

    def unplug(self) -> None:
        """The module loses power: it hears nothing and says nothing; RAM is lost, flash kept."""
        self.powered = False

    def replug(self) -> None:
        self._power_on_state()
        self.powered = True
        self._announce()

    def _announce(self) -> None:
        self.port.write(bytes([fp.READY_BYTE]))

    # -- the line ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(0.05)
            if not data or not self.powered:
                continue  # unplugged: whatever the host sends is lost
            for packet in self.parser.feed(data):  # only those for our address
                try:
                    self._handle(packet)
                except Exception:  # a bug here must not kill the module: answer an error
                    log.exception("simulated fingerprint module: command failed")
                    self._ack(fp.PACKET_ERROR)

    def _send(self, pid: int, payload: bytes) -> None:
        wire = self.faults.apply(fp.encode(fp.Packet(pid, payload, self.address)))
        if wire:
            self.port.write(wire)

    def _ack(self, code: int, data: bytes = b"") -> None:
        self._send(fp.PID_ACK, bytes([code]) + data)

    def _handle(self, packet: fp.Packet) -> None:
        if packet.pid in (fp.PID_DATA, fp.PID_END):
            self._receive_data(packet)
            return
        if packet.pid != fp.PID_COMMAND or not packet.payload:
            return
        self._download = None  # a command ends an unfinished download
        instruction, args = packet.payload[0], packet.payload[1:]
        self.stats[fp.COMMAND_NAMES.get(instruction, hex(instruction))] += 1
        if (
            self.require_password
            and not self._verified
            and instruction not in (fp.VFY_PWD, fp.HANDSHAKE)
        ):
            self._ack(fp.PASSWORD_FIRST)
            return
        handler = self._handlers().get(instruction)
        if handler is None:
            self._ack(fp.PACKET_ERROR)
            return
        try:
            handler(args)
        except (struct.error, IndexError):
            self._ack(fp.PACKET_ERROR)  # arguments too short

    def _handlers(self) -> dict:
        return {
            fp.HANDSHAKE: lambda a: self._ack(fp.READY),
            fp.VFY_PWD: self._vfy_pwd,
            fp.READ_SYS_PARA: self._read_sys_para,
            fp.SOFT_RESET: self._soft_reset,
            fp.GEN_IMG: self._gen_img,
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
            fp.TEMPLATE_NUM: lambda a: self._ack(fp.OK, struct.pack(">H", len(self.library))),
            fp.READ_INDEX_TABLE: self._index_table,
            fp.AURA_LED_CONFIG: self._led,
        }

    # -- commands ----------------------------------------------------------------------
    def _vfy_pwd(self, args: bytes) -> None:
        self._verified = struct.unpack(">I", args[:4])[0] == self.password
        self._ack(fp.OK if self._verified else fp.WRONG_PASSWORD)

    def _read_sys_para(self, args: bytes) -> None:
        size_code = fp.PACKET_SIZES.index(self.packet_size)
        params = struct.pack(
            ">HHHHIHH", 0, 0, self.capacity, 3, self.address, size_code, fp.DEFAULT_BAUD // 9600
        )
        self._ack(fp.OK, params)

    def _soft_reset(self, args: bytes) -> None:
        self._ack(fp.OK)
        self._power_on_state()
        self._announce()

    def _gen_img(self, args: bytes) -> None:
        self.image = self._next_image()
        self._ack(fp.OK if self.image else fp.NO_FINGER)

    def _img2tz(self, args: bytes) -> None:
        buffer_id = args[0]
        if buffer_id not in self.buffers:
            self._ack(fp.INVALID_REGISTER)
        elif self.image is None:
            self._ack(fp.NO_VALID_IMAGE)
        elif self._usable(self.image) != fp.OK:
            self._ack(self._usable(self.image))
        else:
            self.buffers[buffer_id] = self._extract(self.image)
            self._ack(fp.OK)

    def _match(self, args: bytes) -> None:
        a, b = self.buffers[1], self.buffers[2]
        if a is None or b is None:
            self._ack(fp.NO_VALID_IMAGE)
            return
        score = self.score(a, b)
        self._ack(
            fp.OK if score >= self.match_z * SCORE_SCALE else fp.NO_MATCH, struct.pack(">H", score)
        )

    def _search(self, args: bytes) -> None:
        buffer_id, start, count = struct.unpack(">BHH", args[:5])
        probe = self.buffers.get(buffer_id)
        if probe is None:
            self._ack(fp.NO_VALID_IMAGE)
            return
        if start >= self.capacity:
            self._ack(fp.BAD_LOCATION)
            return
        best, best_score = None, -1
        for page in range(start, min(self.capacity, start + count)):
            template = self.library.get(page)
            if template is not None:
                score = self.score(probe, template)
                if score > best_score:
                    best, best_score = page, score
        if best is None or best_score < self.match_z * SCORE_SCALE:
            self._ack(fp.NOT_FOUND, struct.pack(">HH", 0, 0))
        else:
            self._ack(fp.OK, struct.pack(">HH", best, best_score))

    def _reg_model(self, args: bytes) -> None:
        a, b = self.buffers[1], self.buffers[2]
        if a is None or b is None:
            self._ack(fp.NO_VALID_IMAGE)
        elif z_score(a, b) < MERGE_Z:
            self._ack(fp.MERGE_MISMATCH)
        else:
            self.buffers[1] = self.buffers[2] = quantise(merge(a, b))
            self._ack(fp.OK)

    def _store(self, args: bytes) -> None:
        buffer_id, page = struct.unpack(">BH", args[:3])
        features = self.buffers.get(buffer_id)
        if page >= self.capacity:
            self._ack(fp.BAD_LOCATION)
        elif features is None:
            self._ack(fp.NO_VALID_IMAGE)
        else:
            self.library[page] = features
            self._save_flash()
            self._ack(fp.OK)

    def _load_char(self, args: bytes) -> None:
        buffer_id, page = struct.unpack(">BH", args[:3])
        if page >= self.capacity or buffer_id not in self.buffers:
            self._ack(fp.BAD_LOCATION)
        elif page not in self.library:
            self._ack(fp.TEMPLATE_READ_ERROR)
        else:
            self.buffers[buffer_id] = self.library[page]
            self._ack(fp.OK)

    def _up_char(self, args: bytes) -> None:
        features = self.buffers.get(args[0])
        if features is None:
            self._ack(fp.UPLOAD_FEATURE_FAILED)
            return
        self._ack(fp.OK)
        data, size = pack_char(features), self.packet_size
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        for i, chunk in enumerate(chunks):
            self._send(fp.PID_END if i == len(chunks) - 1 else fp.PID_DATA, chunk)

    def _down_char(self, args: bytes) -> None:
        if args[0] not in self.buffers:
            self._ack(fp.INVALID_REGISTER)
            return
        self._download = (args[0], bytearray())
        self._ack(fp.OK)

    def _receive_data(self, packet: fp.Packet) -> None:
        if self._download is None:
            return  # data nobody asked for
        buffer_id, data = self._download
        data += packet.payload
        if packet.pid == fp.PID_END:
            self._download = None
            # a template that fails the integrity check leaves the buffer empty: the next
            # Store or Search says "no valid image/feature in the buffer"
            self.buffers[buffer_id] = unpack_char(bytes(data))
            self.stats["DownChar bad" if self.buffers[buffer_id] is None else "DownChar ok"] += 1
        elif len(data) > 4 * CHAR_SIZE:
            self._download = None
            self.buffers[buffer_id] = None

    def _delete(self, args: bytes) -> None:
        page, count = struct.unpack(">HH", args[:4])
        if count == 0 or page + count > self.capacity:
            self._ack(fp.DELETE_FAILED)
            return
        for p in range(page, page + count):
            self.library.pop(p, None)
        self._save_flash()
        self._ack(fp.OK)

    def _empty(self, args: bytes) -> None:
        self.library.clear()
        self._save_flash()
        self._ack(fp.OK)

    def _save_flash(self) -> None:
        self.flash.save({page: {"char": pack_char(f).hex()} for page, f in self.library.items()})

    def _index_table(self, args: bytes) -> None:
        base, table = args[0] * 256, bytearray(32)
        for page in self.library:
            if base <= page < base + 256:
                table[(page - base) // 8] |= 1 << ((page - base) % 8)
        self._ack(fp.OK, bytes(table))

    def _led(self, args: bytes) -> None:
        control, speed, colour, count = args[:4]
        if not 1 <= control <= 6:
            self._ack(fp.INVALID_REGISTER)
            return
        self.led = (control, speed, colour, count)
        self._ack(fp.OK)
