"""A simulated palm-vein module on a pseudo-terminal, speaking "EF AA" from the module's side.

Any client of the real module (hw.palm, or another written for these modules) opens
`sim.path` as its serial port and works unchanged. place(palm, quality…) holds a palm
over the camera; each captured frame takes the next quality (the last one stays).

The matcher is the fingerprint simulator's model (hw.sim_fingerprint): a palm is a
stable random vein-feature vector, a good frame sees all of it with noise; frames held
too far, too near, off-centre or moving give no features, only a NOTE with the palm
state, as the real module's do. Enrolment merges several good frames.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hw import palm as pm
from hw.sim_fingerprint import Features, identity_vector, pack_char, quantise, unpack_char, z_score
from hw.sim_flash import Flash
from hw.uart import Faults, ModuleSide

log = logging.getLogger(__name__)

DIMS = 256  # vein features per palm
NOISE = (1.3, 0.35)  # a good frame's noise sigma: lognormal (median, spread)
MAX_NOISE = 2.2  # a blurrier frame is reported as moving and not used
MATCH_Z = 5.5  # verify/duplicate threshold: FAR ~2e-8 a comparison
MERGE_Z = 4.0  # enrolment frames must be of one palm
FEATURE_MAGIC = b"SP"
ADULT_CM, CHILD_CM = 20.0, 10.0  # where a palm is best held (L-15)
STATUS_IDLE, STATUS_BUSY = 0, 1  # GET_STATUS's byte (2 error and 3 invalid never happen here)
CAPTURES = (pm.VERIFY, pm.ENROLL_SINGLE)  # the commands that keep the module busy

QUALITIES = ("good", "far", "near", "off-centre", "moving", "none")
STATE_OF = {
    "good": pm.STATE_NORMAL,
    "far": pm.STATE_TOO_FAR,
    "near": pm.STATE_TOO_NEAR,
    "moving": pm.STATE_MOVING,
    "none": pm.STATE_NO_PALM,
}
OFF_CENTRE = (pm.STATE_TOO_UP, pm.STATE_TOO_DOWN, pm.STATE_TOO_LEFT, pm.STATE_TOO_RIGHT)
_ABORTED, _TIMEOUT, _UNPOWERED = "aborted", "timeout", "unpowered"


@dataclass
class User:
    name: str
    admin: bool
    features: Features


def quality_at(distance_cm: float, *, child: bool = False) -> str:
    """How a palm held at distance_cm looks: good within its working range (L-15)."""
    best = CHILD_CM if child else ADULT_CM
    if distance_cm < 0.6 * best:
        return "near"
    if distance_cm > 1.5 * best:
        return "far"
    return "good"


class PalmSimulator:
    """A palm-vein module: a user store, capture with palm-state notes, abort by RESET."""

    def __init__(
        self,
        *,
        capacity: int = 100,
        seed: int = 0,
        frame_s: float = 0.02,
        noise: tuple[float, float] = NOISE,
        enroll_frames: int = 3,
        verify_frames: int = 2,
        match_z: float = MATCH_Z,
        module_id: str = "SIMPALM-0001",
        flash: Path | None = None,
    ) -> None:
        self.capacity, self.seed, self.frame_s, self.noise = capacity, seed, frame_s, noise
        self.enroll_frames, self.verify_frames, self.match_z = enroll_frames, verify_frames, match_z
        self.module_id = module_id
        self.port = ModuleSide()
        self.path = self.port.path
        self.faults = Faults(pm.SYNC, seed)
        self.flash = Flash(flash)
        self.users: dict[int, User] = {  # flash: survives unplugging and restarts
            uid: User(rec["name"], rec["admin"], f)
            for uid, rec in self.flash.load().items()
            if (f := unpack_char(bytes.fromhex(rec["features"]), magic=FEATURE_MAGIC))
        }
        self.stats: Counter[str] = Counter()
        self.powered = True
        # Each showing of a palm draws its frames from a stream of its own, so the frames a
        # host's command sees do not depend on how many came before (hw/sim_fingerprint.py)
        self._placements = 0
        self._rng = random.Random(f"palm-captures:{seed}:0")
        self._sample_rng = random.Random(f"palm-samples:{seed}")
        self._palms: dict[str, list[float]] = {}
        self._placement: list[tuple[str, str]] = []
        self._world = threading.Lock()
        self._gen = 0  # power cycles: a task of an earlier one says nothing
        self._abort = threading.Event()
        self._working = threading.Event()  # a command is being carried out: GET_STATUS says busy
        self._line = threading.Lock()  # both threads answer: one frame at a time on the wire
        self._commands: queue.Queue[pm.Frame] = queue.Queue()
        self._parser = pm.FrameParser()
        self._last_state: int | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._read_loop, name="sim-palm-rx", daemon=True),
            threading.Thread(target=self._work_loop, name="sim-palm", daemon=True),
        ]

    def start(self) -> PalmSimulator:
        for t in self._threads:
            t.start()
        self._note(bytes([pm.NID_READY]))
        return self

    def close(self) -> None:
        self._stop.set()
        self._abort.set()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=1)
        self.port.close()

    def __enter__(self) -> PalmSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the world ---------------------------------------------------------------------
    def place(
        self, palm: object, *qualities: str, distance_cm: float | None = None, child: bool = False
    ) -> None:
        """Hold a palm over the camera: good, far, near, off-centre, moving or none per
        frame (the last one stays); or at distance_cm, judged by an adult's or a child's
        working range."""
        if distance_cm is not None:
            qualities = (quality_at(distance_cm, child=child),)
        qualities = qualities or ("good",)
        for q in qualities:
            if q not in QUALITIES:
                raise ValueError(f"quality {q!r}: one of {', '.join(QUALITIES)}")
        with self._world:
            self._placement = [(str(palm), q) for q in qualities]
            self._placements += 1
            self._rng = random.Random(f"palm-captures:{self.seed}:{self._placements}")

    def lift(self) -> None:
        with self._world:
            self._placement = []

    def identity(self, palm: object) -> list[float]:
        key = str(palm)
        if key not in self._palms:
            self._palms[key] = identity_vector(f"palm:{self.seed}:{key}", DIMS)
        return self._palms[key]

    def _next_frame(self) -> tuple[str, str] | None:
        with self._world:
            if not self._placement:
                return None
            frame = self._placement[0]
            if len(self._placement) > 1:
                self._placement.pop(0)
            return frame

    def _extract(self, palm: str, rng: random.Random | None = None) -> Features | None:
        """A frame's features; None when it came out too blurred to use."""
        rng = rng or self._rng
        median, spread = self.noise
        noise = median * math.exp(rng.gauss(0.0, spread))
        if noise > MAX_NOISE:
            return None
        values = tuple(x + rng.gauss(0.0, noise) for x in self.identity(palm))
        return quantise(Features(values, (1,) * DIMS))

    def sample(self, palm: object) -> Features:
        """One usable frame's features, off the line with its own random stream: for measuring."""
        while True:
            features = self._extract(str(palm), self._sample_rng)
            if features is not None:
                return features

    # -- faults and power --------------------------------------------------------------
    def inject(self, fault: str, count: int | None = None) -> None:
        """garbage | truncate | bad-checksum | silent: the next count frames, or until cleared."""
        self.faults.inject(fault, count)

    def clear_faults(self) -> None:
        self.faults.clear()

    def unplug(self) -> None:
        """Power lost: the current task dies silently, nothing is heard or said; users kept."""
        self.powered = False
        self._gen += 1
        self._abort.set()

    def replug(self) -> None:
        self._gen += 1
        self._parser = pm.FrameParser()
        while not self._commands.empty():
            self._commands.get_nowait()
        self._abort.clear()
        self.powered = True
        self._note(bytes([pm.NID_READY]))

    # -- the line ----------------------------------------------------------------------
    def _send(self, msg_id: int, data: bytes, gen: int | None = None) -> None:
        if not self.powered or (gen is not None and gen != self._gen):
            return
        wire = self.faults.apply(pm.encode(pm.Frame(msg_id, data)))
        if wire:
            with self._line:
                self.port.write(wire)

    def _note(self, data: bytes, gen: int | None = None) -> None:
        self._send(pm.NOTE, data, gen)

    def _reply(self, command: int, result: int, data: bytes = b"", gen: int | None = None) -> None:
        if command in CAPTURES:
            self._working.clear()  # before the reply: a host asking on hearing it sees standby
        self._send(pm.REPLY, bytes([command, result]) + data, gen)

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(0.05)
            if not data or not self.powered:
                continue  # unplugged: whatever the host sends is lost
            for frame in self._parser.feed(data):
                if frame.msg_id == pm.GET_STATUS:
                    # answered at once, not queued behind a capture: "busy" must be seeable
                    self.stats["GET_STATUS"] += 1
                    self._reply(pm.GET_STATUS, pm.MR_SUCCESS, bytes([self.status]))
                    continue
                if frame.msg_id == pm.RESET:
                    self._abort.set()  # stops a capture at its next frame
                self._commands.put(frame)

    @property
    def status(self) -> int:
        """GET_STATUS's answer: 0 standby, 1 busy (a capture under way)."""
        return STATUS_BUSY if self._working.is_set() else STATUS_IDLE

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._commands.get(timeout=0.05)
            except queue.Empty:
                continue
            gen = self._gen
            self.stats[pm.COMMAND_NAMES.get(frame.msg_id, hex(frame.msg_id))] += 1
            if frame.msg_id in CAPTURES:
                self._working.set()
            try:
                self._handle(frame, gen)
            except Exception:  # a bug here must not kill the module: answer an error
                log.exception("simulated palm module: command failed")
                self._reply(frame.msg_id, pm.MR_FAILED4_UNKNOWNREASON, gen=gen)
            finally:
                self._working.clear()

    def _handle(self, frame: pm.Frame, gen: int) -> None:
        mid, data = frame.msg_id, frame.data
        if mid == pm.RESET:
            self._abort.clear()
            self._reply(mid, pm.MR_SUCCESS, gen=gen)
        elif mid == pm.VERIFY:
            self._verify(data, gen)
        elif mid == pm.ENROLL_SINGLE:
            self._enroll(data, gen)
        elif mid == pm.DELUSER:
            self._delete(data, gen)
        elif mid == pm.DELALL:
            self.users.clear()
            self._save_flash()
            self._reply(mid, pm.MR_SUCCESS, gen=gen)
        elif mid == pm.MODULE_ID:
            self._reply(mid, pm.MR_SUCCESS, self.module_id.encode("ascii").ljust(32, b"\0"), gen)
        elif mid == pm.GET_PALM_FEATURE:
            self._get_feature(data, gen)
        elif mid == pm.ENROLL_PALM_FEATURE:
            self._put_feature(data, gen)
        elif mid not in (pm.REPLY, pm.NOTE, pm.IMAGE):
            self._reply(mid, pm.MR_REJECTED, gen=gen)  # a command this module does not know

    # -- capture -----------------------------------------------------------------------
    def _capture(self, deadline: float, gen: int) -> tuple[str, Features] | str:
        """Frames until a good one (its palm and features), or why none came."""
        while True:
            if gen != self._gen or self._stop.is_set():
                return _UNPOWERED
            if self._abort.is_set():
                return _ABORTED
            if time.monotonic() >= deadline:
                return _TIMEOUT
            self._abort.wait(self.frame_s)
            frame = self._next_frame()
            palm, quality = frame if frame else ("", "none")
            if quality == "good":
                features = self._extract(palm)
                if features is not None:
                    self._last_state = pm.STATE_NORMAL
                    return palm, features
                quality = "moving"  # blurred
            state = STATE_OF[quality] if quality in STATE_OF else self._rng.choice(OFF_CENTRE)
            if state != self._last_state:  # a note per change, not per frame
                self._note(pm.palm_state_note(state), gen)
            self._last_state = state

    def _best(self, probe: Features) -> tuple[int, float] | None:
        best = max(
            ((uid, z_score(probe, u.features)) for uid, u in self.users.items()),
            key=lambda pair: pair[1],
            default=None,
        )
        return best if best is not None and best[1] >= self.match_z else None

    def _verify(self, data: bytes, gen: int) -> None:
        if len(data) < 2:
            self._reply(pm.VERIFY, pm.MR_FAILED4_INVALIDPARAM, gen=gen)
            return
        deadline = time.monotonic() + max(1, data[1])
        self._last_state = None
        for _ in range(self.verify_frames):
            got = self._capture(deadline, gen)
            if isinstance(got, str):
                self._end_capture(pm.VERIFY, got, gen)
                return
            hit = self._best(got[1])
            if hit is not None:
                user = self.users[hit[0]]
                answer = (
                    struct.pack(">H", hit[0]) + pm.pack_name(user.name) + bytes([user.admin, 2])
                )
                self._reply(pm.VERIFY, pm.MR_SUCCESS, answer, gen)
                return
        self._reply(pm.VERIFY, pm.MR_FAILED4_UNKNOWNUSER, gen=gen)

    def _enroll(self, data: bytes, gen: int) -> None:
        if len(data) < 1 + pm.NAME_SIZE + 2:
            self._reply(pm.ENROLL_SINGLE, pm.MR_FAILED4_INVALIDPARAM, gen=gen)
            return
        admin, name = bool(data[0]), pm.unpack_name(data[1 : 1 + pm.NAME_SIZE])
        timeout = data[1 + pm.NAME_SIZE + 1]
        if len(self.users) >= self.capacity:
            self._reply(pm.ENROLL_SINGLE, pm.MR_FAILED4_MAXUSER, gen=gen)
            return
        deadline = time.monotonic() + max(1, timeout)
        self._last_state = None
        frames: list[Features] = []
        while len(frames) < self.enroll_frames:
            got = self._capture(deadline, gen)
            if isinstance(got, str):
                self._end_capture(pm.ENROLL_SINGLE, got, gen)
                return
            features = got[1]
            if frames and z_score(frames[0], features) < MERGE_Z:
                frames = []  # another palm came into view: start again with it
            frames.append(features)
            self._note(pm.palm_state_note(pm.STATE_NORMAL), gen)  # progress: one more merged
        merged = quantise(
            Features(
                tuple(sum(v) / len(frames) for v in zip(*(f.values for f in frames))), (1,) * DIMS
            )
        )
        if self._best(merged) is not None:
            self._reply(pm.ENROLL_SINGLE, pm.MR_FAILED4_ENROLLED, gen=gen)
            return
        uid = self._free_id()
        self.users[uid] = User(name, admin, merged)
        self._save_flash()
        self._reply(
            pm.ENROLL_SINGLE,
            pm.MR_SUCCESS,
            struct.pack(">HBB", uid, 0, pm.ENROLL_PALM_FINISHED),
            gen,
        )

    def _end_capture(self, command: int, why: str, gen: int) -> None:
        if why == _ABORTED:
            self._reply(command, pm.MR_ABORTED, gen=gen)
        elif why == _TIMEOUT:
            self._reply(command, pm.MR_FAILED4_TIMEOUT, gen=gen)
        # unpowered: a dead module says nothing

    def _free_id(self) -> int:
        return next(uid for uid in range(1, self.capacity + 2) if uid not in self.users)

    # -- the store ---------------------------------------------------------------------
    def _save_flash(self) -> None:
        self.flash.save(
            {
                uid: {
                    "name": u.name,
                    "admin": u.admin,
                    "features": pack_char(u.features, magic=FEATURE_MAGIC, size=0).hex(),
                }
                for uid, u in self.users.items()
            }
        )

    def _delete(self, data: bytes, gen: int) -> None:
        uid = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 0
        if self.users.pop(uid, None) is None:
            self._reply(pm.DELUSER, pm.MR_FAILED4_UNKNOWNUSER, gen=gen)
        else:
            self._save_flash()
            self._reply(pm.DELUSER, pm.MR_SUCCESS, gen=gen)

    def _get_feature(self, data: bytes, gen: int) -> None:
        uid = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 0
        user = self.users.get(uid)
        if user is None:
            self._reply(pm.GET_PALM_FEATURE, pm.MR_FAILED4_UNKNOWNUSER, gen=gen)
            return
        blob = pack_char(user.features, magic=FEATURE_MAGIC, size=0)
        self._reply(
            pm.GET_PALM_FEATURE, pm.MR_SUCCESS, struct.pack(">HH", uid, len(blob)) + blob, gen
        )

    def _put_feature(self, data: bytes, gen: int) -> None:
        mid = pm.ENROLL_PALM_FEATURE
        if len(data) < 4:
            self._reply(mid, pm.MR_FAILED4_INVALIDPARAM, gen=gen)
            return
        uid, size = struct.unpack(">HH", data[:4])
        features = (
            unpack_char(data[4:], magic=FEATURE_MAGIC, dims=DIMS) if len(data) == 4 + size else None
        )
        if features is None or uid > self.capacity or uid in self.users:
            self._reply(mid, pm.MR_FAILED4_INVALIDPARAM, gen=gen)
        elif len(self.users) >= self.capacity:
            self._reply(mid, pm.MR_FAILED4_MAXUSER, gen=gen)
        else:
            uid = uid or self._free_id()
            self.users[uid] = User("", False, features)
            self._save_flash()
            self._reply(mid, pm.MR_SUCCESS, struct.pack(">H", uid), gen)
