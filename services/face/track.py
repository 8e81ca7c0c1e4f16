"""One presentation as a track: the same face followed across consecutive frames (issue 14).

Liveness is proven over a track, never across a cut. Different photos of one person are
different head poses, and a pose change is what the parallax check takes for life; so a
sequence of photos, shown one after another, must not count as one face moving. Between
two frames of one track (measured on the shared video of a talking, turning person at
29.97 fps, and on every pair of photos of one person in ../shared/faces/dev):

- little time passes: at most `max_gap_s` (a camera that lost the face for longer may
  have been shown another picture in the meantime);
- the face moves by a bounded amount per camera frame (its five points, in eye
  distances: at most 0.50 in the video) and the boxes overlap (IoU 0.39 at least);
- it stays the same face: the descriptor moves little (0.41 at most in the video; two
  photos of one person are 0.26-0.64 apart);
- and it looks the same: dlib's face chip, and the scene around the face, correlate with
  the last frame's (normalised cross-correlation, 0.76 and 0.62 at least in the video;
  two photos of one person lined up on each other have medians of 0.51 and 0.26);
- the nose leaves the plane of the eyes and mouth by a bounded amount from one frame to
  the next (0.20 eye distances at most in the video): a head turns gradually, a photo
  swapped for one in another pose jumps;
- and it does not come near those three bounds at once (`surprise`): two photos of one
  person taken alike can each pass one bound, but rarely all three with room to spare.

A frame that breaks any of these starts a new track, and with it the proof of life.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.face.liveness import parallax

PATCH = 24  # appearance patches are PATCH x PATCH grey cells
SUBSAMPLES = 3  # each cell the mean of SUBSAMPLES^2 pixels: one pixel's shift is not a change
FACE_SPAN = 2.2  # the face patch's side, in eye distances
CONTEXT_SPAN = 2.0  # the context patch's side, in face box sides


@dataclass(frozen=True)
class Continuity:
    """The bounds a track's consecutive frames keep (face.track in the settings)."""

    fps: float = 30.0  # the camera's frame rate: motion is bounded per frame period
    max_gap_s: float = 0.25
    max_move: float = 0.6  # eye distances a landmark moves in one frame period
    min_iou: float = 0.3  # boxes of frames one period apart overlap at least this much
    max_descriptor_step: float = 0.45
    min_face_correlation: float = 0.65
    min_context_correlation: float = 0.45
    max_parallax_step: float = 0.25  # eye distances off the plane, from one frame to the next
    # the descriptor step, the chip's decorrelation and the off-plane step, each as a share
    # of its own bound, summed: a live face at 30 fps reached 1.79, never near all three
    # bounds at once; 247 of 280 pairs of photos of one person exceed 2
    max_surprise: float = 2.0

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Continuity:
        return cls(**{k: float(v) for k, v in settings.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, eq=False)
class Observation:
    """One frame's face, as the tracker compares it with the last one."""

    t: float  # capture time, seconds
    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # (5, 2) MTCNN's points
    descriptor: np.ndarray
    face_patch: np.ndarray  # unit-norm, zero-mean PATCH x PATCH grey
    context_patch: np.ndarray
    chip: np.ndarray | None = None  # dlib's chip, for the relief check (liveness.py)

    @classmethod
    def of(
        cls, t: float, rgb: np.ndarray, box: tuple[float, float, float, float],
        landmarks: np.ndarray, descriptor: np.ndarray, chip: np.ndarray | None = None,
    ) -> Observation:  # fmt: skip
        """chip: dlib's face chip when the pipeline cut one (its alignment by dlib's points
        is steadier than MTCNN's five, which jump when a hand or a microphone is near)."""
        points = np.asarray(landmarks, np.float64)
        face = chip_patch(chip) if chip is not None else face_patch(rgb, points)
        return cls(t, box, points, np.asarray(descriptor), face, context_patch(rgb, box), chip)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0])) or 1.0


@dataclass
class Track:
    """Frames of one face, consecutive and continuous; `frames[i].descriptor` is the
    descriptor of frame i (for a decision over a track's frames)."""

    id: int
    frames: list[Observation] = field(default_factory=list)

    @property
    def first(self) -> Observation:
        return self.frames[0]

    @property
    def last(self) -> Observation:
        return self.frames[-1]

    def descriptors(self) -> np.ndarray:
        return np.stack([f.descriptor for f in self.frames])


@dataclass(frozen=True)
class Step:
    """How the newest frame relates to the track's last one; `broken` names why not."""

    track: Track
    broken: str = ""  # "" when the frame continues the track (or starts the first one)


class Tracker:
    """Follows the face nearest the lock: each observation continues the current track or
    starts a new one. `lost()` ends the track (no face in a frame)."""

    def __init__(self, continuity: Continuity, keep: int = 90) -> None:
        self.continuity = continuity
        self.keep = keep  # frames remembered per track (the first is always kept)
        self.track: Track | None = None
        self._ids = itertools.count(1)
        self.breaks: dict[str, int] = {}

    def follow(self, obs: Observation) -> Step:
        track = self.track
        why = "" if track is None else broken(self.continuity, track.last, obs)
        if track is None or why:
            if why:
                self.breaks[why] = self.breaks.get(why, 0) + 1
            track = self.track = Track(next(self._ids))
        track.frames.append(obs)
        if len(track.frames) > self.keep:
            del track.frames[1]  # the first frame stays: it is the liveness reference
        return Step(track, why)

    def lost(self) -> None:
        self.track = None


def broken(c: Continuity, last: Observation, new: Observation) -> str:
    """Why `new` cannot be the same presentation as `last`, or "" when it can."""
    dt = new.t - last.t
    if not 0 < dt <= c.max_gap_s:
        return "gap"
    periods = max(1.0, dt * c.fps)
    if moved(last, new) > c.max_move * periods:
        return "jump"
    if periods < 1.5 and iou(last.box, new.box) < c.min_iou:
        return "jump"
    if float(np.linalg.norm(new.descriptor - last.descriptor)) > c.max_descriptor_step:
        return "another-face"
    if correlation(last.face_patch, new.face_patch) < c.min_face_correlation:
        return "appearance"
    if correlation(last.context_patch, new.context_patch) < c.min_context_correlation:
        return "scene"
    if parallax(last.landmarks, new.landmarks) > c.max_parallax_step * periods:
        return "pose-jump"
    if surprise(c, last, new, periods) > c.max_surprise:
        return "several-changes"
    return ""


def surprise(c: Continuity, last: Observation, new: Observation, periods: float) -> float:
    """How near the frame comes to the descriptor, appearance and pose bounds together."""
    step = float(np.linalg.norm(new.descriptor - last.descriptor)) / c.max_descriptor_step
    unlike = (1 - correlation(last.face_patch, new.face_patch)) / (1 - c.min_face_correlation)
    pose = parallax(last.landmarks, new.landmarks) / (c.max_parallax_step * periods)
    return step + unlike + pose


def moved(a: Observation, b: Observation) -> float:
    """The largest landmark displacement, in eye distances."""
    return float(np.abs(b.landmarks - a.landmarks).max()) / b.eye_distance


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()))


def face_patch(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The face cut upright by its own eyes and mouth: a square of FACE_SPAN eye distances
    round the point halfway between the eyes' and the mouth's midpoints."""
    across = points[1] - points[0]
    eye_distance = float(np.linalg.norm(across)) or 1.0
    across = across / eye_distance
    down = np.array([-across[1], across[0]])
    centre = (points[0] + points[1] + points[3] + points[4]) / 4
    steps = (np.arange(PATCH * SUBSAMPLES) + 0.5) / (PATCH * SUBSAMPLES) - 0.5
    u, v = np.meshgrid(steps, steps)
    half = FACE_SPAN * eye_distance
    xs = centre[0] + half * (u * across[0] + v * down[0])
    ys = centre[1] + half * (u * across[1] + v * down[1])
    return _normalised(_sample(image, xs, ys))


def chip_patch(chip: np.ndarray) -> np.ndarray:
    """dlib's 150x150 chip in grey, PATCH x PATCH cells (its edge trimmed to fit)."""
    cell = chip.shape[0] // PATCH
    edge = (chip.shape[0] - cell * PATCH) // 2
    return _normalised(_cell_sums(chip[edge : edge + cell * PATCH, edge : edge + cell * PATCH]))


def context_patch(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The scene round the face: CONTEXT_SPAN box sides, upright."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = CONTEXT_SPAN * max(box[2] - box[0], box[3] - box[1]) / 2
    steps = (np.arange(PATCH * SUBSAMPLES) + 0.5) / (PATCH * SUBSAMPLES) * 2 - 1
    xs, ys = np.meshgrid(cx + half * steps, cy + half * steps)
    return _normalised(_sample(image, xs, ys))


def _sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Nearest pixels in grey (only the samples are converted), edges repeated beyond
    the frame."""
    h, w = image.shape[:2]
    col = np.clip(np.rint(xs).astype(np.intp), 0, w - 1)
    row = np.clip(np.rint(ys).astype(np.intp), 0, h - 1)
    return _cell_sums(image[row, col])


def _cell_sums(pixels: np.ndarray) -> np.ndarray:
    """PATCH x PATCH cells of grey: each the sum of its pixels' r + g + b, in whole numbers
    for 8- and 16-bit pixels. Sums serve as means: every patch is normalised (_normalised)."""
    small_ints = np.issubdtype(pixels.dtype, np.integer) and pixels.dtype.itemsize <= 2
    cell = pixels.shape[0] // PATCH
    across = cell * (pixels.shape[2] if pixels.ndim == 3 else 1)  # a cell's row, all channels
    rows = np.ascontiguousarray(pixels).reshape(PATCH, cell, PATCH, across)
    return rows.sum(axis=(1, 3), dtype=np.int32 if small_ints else np.float64).astype(np.float32)


def _normalised(patch: np.ndarray) -> np.ndarray:
    centred = patch - patch.mean()
    norm = float(np.linalg.norm(centred))
    return centred / norm if norm > 1e-6 else centred
