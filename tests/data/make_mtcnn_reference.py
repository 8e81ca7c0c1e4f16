"""Make the MTCNN reference numbers the parity tests compare against. Run by hand, rarely.

TensorFlow is not a project dependency, so this runs in a scratch venv outside the repo:

    python3 -m venv /tmp/tfref
    /tmp/tfref/bin/pip install tensorflow-cpu mtcnn==1.0.0 pillow==13.0.0 numpy
    /tmp/tfref/bin/python tests/data/make_mtcnn_reference.py [../shared/faces]

Writes, next to this script (numbers only, never pixels of a photo):
- mtcnn_reference.npz: seeded random inputs (uint8 pixels, NCHW) and the Keras outputs of
  P-Net, R-Net and O-Net for them;
- mtcnn_pipeline_reference.npz: mtcnn.MTCNN's faces on every photo under <faces>/dev, keyed
  by relative path, plus a digest of the decoded pixels so a test can tell a different
  decoder from a detector bug.

The photo loader below is shared with the tests so both sides see the same pixels.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
NET_REFERENCE = HERE / "mtcnn_reference.npz"
PIPELINE_REFERENCE = HERE / "mtcnn_pipeline_reference.npz"
LONG_SIDE = 640
SEED = 20240611
# the pipeline reference runs with the Detector's thresholds; mtcnn 1.0.0's own O-Net default
# is 0.8, so it is passed explicitly
PIPELINE_MIN_FACE = 20
PIPELINE_THRESHOLDS = (0.6, 0.7, 0.7)


def load_photo(path: Path) -> np.ndarray:
    """RGB uint8, EXIF orientation applied, long side scaled to 640 px."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        scale = LONG_SIDE / max(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        return np.asarray(image.resize(size, Image.Resampling.BILINEAR))


def pixels_digest(rgb: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()[:16]


def photo_paths(faces: Path) -> list[Path]:
    return sorted(p for p in (faces / "dev").rglob("*") if p.suffix.lower() in {".jpg", ".png"})


def random_inputs(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """Half plain noise, half smooth blobs (closer to real images), uint8 NCHW."""
    noise = rng.integers(0, 256, size=(n, 3, height, width), dtype=np.uint8)
    coarse = rng.integers(0, 256, size=(n, 3, height // 6 + 2, width // 6 + 2)).astype(float)
    smooth = coarse.repeat(6, axis=2).repeat(6, axis=3)[:, :, :height, :width]
    half = n // 2
    noise[half:] = smooth[half:].astype(np.uint8)
    return noise


def keras_outputs(model, pixels: np.ndarray) -> list[np.ndarray]:
    normalised = (pixels.astype(np.float32).transpose(0, 2, 3, 1) - 127.5) / 128
    return [np.asarray(o) for o in model(normalised)]


def nchw(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2))


def make_net_reference() -> None:
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    rng = np.random.default_rng(SEED)
    pnet, rnet, onet = StagePNet().model, StageRNet().model, StageONet().model
    arrays: dict[str, np.ndarray] = {}
    for name, (height, width) in {"pnet_a": (37, 50), "pnet_b": (64, 48)}.items():
        pixels = random_inputs(rng, 2, height, width)
        regression, probability = keras_outputs(pnet, pixels)
        arrays |= {
            f"{name}_input": pixels,
            f"{name}_regression": nchw(regression),
            f"{name}_probability": nchw(probability),
        }
    pixels = random_inputs(rng, 16, 24, 24)
    regression, probability = keras_outputs(rnet, pixels)
    arrays |= {"rnet_input": pixels, "rnet_regression": regression, "rnet_probability": probability}
    pixels = random_inputs(rng, 12, 48, 48)
    regression, landmarks, probability = keras_outputs(onet, pixels)
    arrays |= {
        "onet_input": pixels,
        "onet_regression": regression,
        "onet_landmarks": landmarks,
        "onet_probability": probability,
    }
    np.savez_compressed(NET_REFERENCE, **arrays)
    print(f"wrote {NET_REFERENCE} ({NET_REFERENCE.stat().st_size} bytes)")


def make_pipeline_reference(faces: Path) -> None:
    from mtcnn import MTCNN

    detector = MTCNN()
    names, digests, counts, boxes, scores, landmarks = [], [], [], [], [], []
    for path in photo_paths(faces):
        rgb = load_photo(path)
        found = detector.detect_faces(
            rgb,
            box_format="xyxy",
            output_type="numpy",
            min_face_size=PIPELINE_MIN_FACE,
            threshold_pnet=PIPELINE_THRESHOLDS[0],
            threshold_rnet=PIPELINE_THRESHOLDS[1],
            threshold_onet=PIPELINE_THRESHOLDS[2],
        )
        found = np.asarray(found, dtype=np.float64).reshape(-1, 16)
        names.append(str(path.relative_to(faces)))
        digests.append(pixels_digest(rgb))
        counts.append(len(found))
        # columns: image id, x1, y1, x2, y2, score, x of 5 points, y of 5 points
        boxes.append(found[:, 1:5])
        scores.append(found[:, 5])
        landmarks.append(np.stack([found[:, 6:11], found[:, 11:16]], axis=-1))
        print(f"{names[-1]}: {len(found)} face(s)")
    np.savez_compressed(
        PIPELINE_REFERENCE,
        paths=np.asarray(names),
        digests=np.asarray(digests),
        counts=np.asarray(counts),
        boxes=np.concatenate(boxes),
        scores=np.concatenate(scores),
        landmarks=np.concatenate(landmarks),
        min_face=np.asarray(PIPELINE_MIN_FACE),
        thresholds=np.asarray(PIPELINE_THRESHOLDS),
    )
    print(f"wrote {PIPELINE_REFERENCE} ({PIPELINE_REFERENCE.stat().st_size} bytes)")


if __name__ == "__main__":
    make_net_reference()
    shared_faces = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "faces"
    if shared_faces.is_dir():
        make_pipeline_reference(shared_faces)
    else:
        print(f"{shared_faces} not found: pipeline reference not made")
