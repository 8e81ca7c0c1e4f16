"""An InsightFace-style embedder in place of dlib's ResNet (face.embedder = PATH.onnx).

Such models (ArcFace and its kin) take a 112x112 face aligned by a similarity transform
of the five MTCNN points onto InsightFace's reference points, as NCHW RGB scaled to
[-1, 1], and give an embedding compared after L2 normalisation. None ships with the lock:
the owner brings the model and sets face.threshold for it (the Euclidean distance of
normalised embeddings; dlib's 0.5 does not carry over).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from PIL import Image

from services.face.detect import Face, session_options

SIZE = 112
# InsightFace's reference points for a 112x112 crop: eyes, nose tip, mouth corners
REFERENCE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]]
)  # fmt: skip


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity (scale, rotation, shift) taking src onto dst."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mean_s, mean_d = src.mean(0), dst.mean(0)
    s, d = src - mean_s, dst - mean_d
    a = (s * d).sum() / (s * s).sum()  # scale·cos
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / (s * s).sum()  # scale·sin
    m = np.array([[a, -b], [b, a]])
    return np.hstack([m, (mean_d - m @ mean_s)[:, None]])


def aligned(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 crop the model expects, cut from the frame."""
    forward = np.vstack([similarity(landmarks, REFERENCE), [0, 0, 1]])
    inverse = np.linalg.inv(forward)[:2].reshape(-1)  # PIL maps output pixels to input
    crop = Image.fromarray(rgb).transform(
        (SIZE, SIZE), Image.Transform.AFFINE, tuple(inverse), Image.Resampling.BILINEAR
    )
    return np.asarray(crop)


class ArcFaceEmbedder:
    def __init__(self, path: str, threads: int = 1) -> None:
        self.session = ort.InferenceSession(
            path, session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        blank = np.zeros((1, 3, SIZE, SIZE), np.float32)  # the embedding's size, once
        self.dims = int(np.asarray(self.session.run(None, {self.input: blank})[0]).size)

    def __call__(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        crops = np.stack([aligned(rgb, f.landmarks) for f in faces]).astype(np.float32)
        batch = ((crops - 127.5) / 127.5).transpose(0, 3, 1, 2)
        out = np.asarray(self.session.run(None, {self.input: batch})[0], np.float32)
        out = out.reshape(len(faces), -1)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
