"""Fit box_from_mtcnn's constants (services/face/chip.py) on the dev photos.

For every face dlib's frontal detector finds (upsampling once) in ../shared/faces/dev
(EXIF-rotated, long side 640), dlib's 68-point predictor gives the five points MTCNN
reports: eye centres (mean of points 36-41 and 42-47), nose tip (30), mouth corners
(48, 54). The box is then written in the face's own frame (origin halfway between the
eye and mouth midpoints, unit the eye-to-mouth distance) and the constants are least-
squares fits over the faces. Needs dlib (the test-only reference):

    .venv/bin/python -m tests.data.fit_face_box
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SHARED = Path(__file__).resolve().parents[3] / "shared"
DEV_PHOTOS = SHARED / "faces" / "dev"
LONG_SIDE = 640


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the face_recognition_models package is not installed")
    return Path(spec.submodule_search_locations[0]) / "models"


def load_photo(path: Path) -> np.ndarray:
    """RGB uint8, EXIF orientation applied, long side scaled to 640 (as the tests use it)."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        ratio = LONG_SIDE / max(image.size)
        size = (round(image.width * ratio), round(image.height * ratio))
        return np.asarray(image.resize(size, Image.Resampling.BILINEAR))


def dev_photo_paths() -> list[Path]:
    return sorted(p for p in DEV_PHOTOS.glob("*/*.jpg"))


def mtcnn_points_from_68(parts: np.ndarray) -> np.ndarray:
    """MTCNN's five points from dlib's 68: eye centres, nose tip, mouth corners (image left
    eye first, as MTCNN orders them)."""
    return np.array(
        [
            parts[36:42].mean(axis=0),
            parts[42:48].mean(axis=0),
            parts[30],
            parts[48],
            parts[54],
        ]
    )


def collect(paths: list[Path]):
    """Per detected face: (photo path, detector box (l, t, r, b), the five MTCNN-like points)."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor68 = dlib.shape_predictor(str(models_dir() / "shape_predictor_68_face_landmarks.dat"))
    faces = []
    for path in paths:
        rgb = load_photo(path)
        for rect in detector(rgb, 1):
            shape = predictor68(rgb, rect)
            parts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            faces.append((path, box, mtcnn_points_from_68(parts)))
    return faces


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin, down axis (eye midpoint to mouth midpoint) and across axis (down turned)."""
    eyes = (points[0] + points[1]) / 2
    mouth = (points[3] + points[4]) / 2
    down = mouth - eyes
    across = np.array([-down[1], down[0]])
    return (eyes + mouth) / 2, down, across


def fit(faces) -> dict[str, float]:
    boxes = np.array([box for _, box, _ in faces], dtype=np.float64)
    rows_centre, rows_size, targets_centre, targets_size = [], [], [], []
    for box, (_, _, points) in zip(boxes, faces):
        origin, down, across = face_frame(points)
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        offset = centre - origin
        # centre = origin + a*down + b*across: one equation per coordinate.
        rows_centre += [[down[0], across[0]], [down[1], across[1]]]
        targets_centre += [offset[0], offset[1]]
        eye_distance = np.linalg.norm(points[1] - points[0])
        rows_size.append([np.linalg.norm(down), eye_distance])
        targets_size.append(((box[2] - box[0]) + (box[3] - box[1])) / 2)
    (down_shift, across_shift), *_ = np.linalg.lstsq(rows_centre, targets_centre, rcond=None)
    (per_down, per_eyes), *_ = np.linalg.lstsq(rows_size, targets_size, rcond=None)
    return {
        "CENTRE_ALONG_DOWN": float(down_shift),
        "CENTRE_ALONG_ACROSS": float(across_shift),
        "SIZE_PER_EYE_TO_MOUTH": float(per_down),
        "SIZE_PER_EYE_TO_EYE": float(per_eyes),
    }


def main() -> int:
    if not DEV_PHOTOS.is_dir():
        print(f"no dev photos at {DEV_PHOTOS}", file=sys.stderr)
        return 1
    faces = collect(dev_photo_paths())
    print(f"{len(faces)} faces")
    for name, value in fit(faces).items():
        print(f"{name} = {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
