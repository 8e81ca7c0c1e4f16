"""Face accuracy and speed on real photos: our pipeline beside dlib's, same photos, same process.

The protocol is ../shared/faces/README.md's: every pair of photos of one person is a
genuine pair, of two people an impostor pair; TAR and FAR at the lock's threshold, ROC
AUC, and failures to detect apart. dlib (the dlib-bin wheel) is the reference; it is a
test-only dependency, so without it only our side is reported.
"""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hw.camera import load_photo
from services.face.models import build
from services.face.models.resnet import weights_path
from services.face.pipeline import Pipeline, largest

Describer = Callable[[np.ndarray], np.ndarray | None]


def photos(root: Path) -> dict[str, list[Path]]:
    """Person folder: photos (the dev set's pNN folders; _group is not one person)."""
    return {
        d.name: sorted(d.glob("*.jpg"))
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith("_")
    }


def ours(models_dir: Path, min_face: int = 40) -> Describer:
    pipeline = Pipeline(build.ensure(models_dir), min_face=min_face)

    def describe(rgb: np.ndarray) -> np.ndarray | None:
        face = largest(pipeline.detect(rgb))
        return None if face is None else pipeline.describe(rgb, [face])[0].descriptor

    return describe


def dlib_reference() -> Describer | None:
    try:
        import dlib
    except ImportError:
        return None
    folder = weights_path().parent
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(weights_path()))

    def describe(rgb: np.ndarray) -> np.ndarray | None:
        boxes = detector(rgb, 1)
        if not boxes:
            return None
        box = max(boxes, key=lambda b: b.area())
        chip = dlib.get_face_chip(rgb, predictor(rgb, box), size=150, padding=0.25)
        return np.asarray(net.compute_face_descriptor(chip), np.float32)

    return describe


def evaluate(describe: Describer, people: dict[str, list[Path]], threshold: float) -> dict:
    described: dict[str, list[np.ndarray]] = {}
    missed, times = [], []
    for person, paths in people.items():
        for path in paths:
            rgb = load_photo(path)
            started = time.perf_counter()
            d = describe(rgb)
            times.append(time.perf_counter() - started)
            if d is None:
                missed.append(f"{person}/{path.name}")
            else:
                described.setdefault(person, []).append(d)
    genuine = [
        float(np.linalg.norm(a - b))
        for ds in described.values()
        for a, b in itertools.combinations(ds, 2)
    ]
    impostor = [
        float(np.linalg.norm(a - b))
        for (_, xs), (_, ys) in itertools.combinations(described.items(), 2)
        for a in xs
        for b in ys
    ]
    return {
        "photos": sum(len(p) for p in people.values()),
        "failed_to_detect": missed,
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "threshold": threshold,
        "tar": float(np.mean(np.array(genuine) <= threshold)) if genuine else None,
        "far": float(np.mean(np.array(impostor) <= threshold)) if impostor else None,
        "false_accepts": int(np.sum(np.array(impostor) <= threshold)),
        "roc_auc": roc_auc(genuine, impostor),
        "median_ms_per_photo": statistics.median(times) * 1000,
        "closest_impostor": min(impostor, default=None),
        "farthest_genuine": max(genuine, default=None),
    }


def roc_auc(genuine: list[float], impostor: list[float]) -> float | None:
    """P(a genuine pair is closer than an impostor pair), ties counting half."""
    if not genuine or not impostor:
        return None
    g, i = np.asarray(genuine)[:, None], np.asarray(impostor)[None, :]
    return float(np.mean((g < i) + 0.5 * (g == i)))


def compare(root: Path, models_dir: Path, threshold: float) -> dict[str, Any]:
    people = photos(root)
    report: dict[str, dict[str, Any] | str] = {
        "ours": evaluate(ours(models_dir), people, threshold)
    }
    reference = dlib_reference()
    report["dlib"] = (
        evaluate(reference, people, threshold) if reference else "dlib is not installed"
    )
    return report
