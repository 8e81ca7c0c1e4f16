"""One frame to face descriptors: MTCNN detection, dlib's 5 points inside a box built from
MTCNN's, dlib's chip, the ResNet descriptor. All on onnxruntime and numpy.

The route through dlib's own shape predictor and chip keeps descriptors within L2 ~0.03
of dlib's (services/face/chip.py), so dlib's published accuracy carries over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from services.face.arcface import ArcFaceEmbedder
from services.face.chip import box_from_mtcnn, face_chip
from services.face.detect import Detector, Face, session_options
from services.face.gallery import DIMS
from services.face.models.build import Models
from services.face.track import iou

FULL_FRAME_EVERY = 10  # a third of a second at the camera's 30 frames a second
SAME_FACE_IOU = 0.5  # a face of the whole frame's search overlapping the followed one is it


@dataclass(frozen=True, eq=False)
class Described:
    face: Face  # the detection: box, score, MTCNN's five points
    points: np.ndarray  # (5, 2) dlib's five points (eye corners, base of the nose)
    descriptor: np.ndarray  # (128,) float32, compared by Euclidean distance
    chip: np.ndarray | None = None  # dlib's 150x150 chip (the tracker compares them)


class Embedder:
    """dlib's face ResNet converted to ONNX: 150x150 RGB chips in, 128-D descriptors out."""

    def __init__(self, model: bytes, threads: int = 1) -> None:
        self.session = ort.InferenceSession(
            model, session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: chips.astype(np.float32)})[0]


class Pipeline:
    def __init__(
        self, models: Models, *, min_face: int = 40, threads: int = 1, embedder: str = "dlib"
    ) -> None:
        self.detector = Detector(models.pnet, models.rnet, models.onet, min_face, threads)
        self.predictor = models.predictor
        self.embed = Embedder(models.resnet, threads)
        # an InsightFace-style model instead of dlib's ResNet (services/face/arcface.py)
        self.arcface = None if embedder == "dlib" else ArcFaceEmbedder(embedder, threads)
        self.dims = DIMS if self.arcface is None else self.arcface.dims

    def detect(self, rgb: np.ndarray) -> list[Face]:
        return self.detector.detect(rgb)

    def finder(self, full_every: int = FULL_FRAME_EVERY) -> FaceFinder:
        """A detector for consecutive frames of one camera (see FaceFinder)."""
        return FaceFinder(self.detector, full_every)

    def describe(self, rgb: np.ndarray, faces: list[Face]) -> list[Described]:
        """Descriptors of the given faces of this frame, in one batch."""
        if not faces:
            return []
        if self.arcface is not None:
            embeddings = self.arcface(rgb, faces)
            return [Described(f, f.landmarks, e) for f, e in zip(faces, embeddings)]
        points = [self.predictor.predict(rgb, box_from_mtcnn(f.landmarks)) for f in faces]
        chips = np.stack([face_chip(rgb, p) for p in points])
        descriptors = self.embed(chips)
        return [Described(f, p, d, c) for f, p, d, c in zip(faces, points, descriptors, chips)]

    def __call__(self, rgb: np.ndarray) -> list[Described]:
        return self.describe(rgb, self.detect(rgb))


class FaceFinder:
    """Faces in consecutive frames of one camera. Once a face is seen, the next frame is
    searched only where it was (Detector.detect's `near`: a tenth of the work). The whole
    frame is searched when no face was seen in the last frame and when the search where
    it was finds none (it moved or changed size too much, or left); and every
    `full_every`th frame, so that a nearer face elsewhere is taken up within a third of a
    second. The followed face keeps its own detection on those frames too: its points
    come from one route along a track (the whole frame's route places them differently
    by a few hundredths of an eye distance, which the tracker would see as motion).
    A cut to another picture in the same place is found where the face was, like any
    face: telling it from a continuation is the tracker's work (services/face/track.py:
    descriptors, appearance, pose)."""

    def __init__(self, detector: Detector, full_every: int = FULL_FRAME_EVERY) -> None:
        self.detector, self.full_every = detector, full_every
        self.near: tuple[float, float, float, float] | None = None  # the last frame's face
        self.since_full = 0
        self.full_frames = 0  # frames searched whole (for the time figures)

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        faces: list[Face] = []
        if self.near is not None:
            faces = self.detector.detect(rgb, self.near)
            self.since_full += 1
            if faces and self.since_full >= self.full_every:
                faces = faces[:1] + self._others(rgb, faces[0])
        if not faces:
            faces = self._whole(rgb)
        face = largest(faces)
        self.near = None if face is None else face.box
        return faces

    def lost(self) -> None:
        """The next frame is searched whole."""
        self.near = None

    def _whole(self, rgb: np.ndarray) -> list[Face]:
        self.since_full, self.full_frames = 0, self.full_frames + 1
        return self.detector.detect(rgb)

    def _others(self, rgb: np.ndarray, followed: Face) -> list[Face]:
        """The faces of the whole frame other than the followed one."""
        return [f for f in self._whole(rgb) if iou(f.box, followed.box) < SAME_FACE_IOU]


def largest(faces: list[Face]) -> Face | None:
    """The face nearest the lock: the biggest box."""
    return max(faces, key=lambda f: f.width * f.height, default=None)
