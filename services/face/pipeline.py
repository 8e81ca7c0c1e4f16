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


def largest(faces: list[Face]) -> Face | None:
    """The face nearest the lock: the biggest box."""
    return max(faces, key=lambda f: f.width * f.height, default=None)
