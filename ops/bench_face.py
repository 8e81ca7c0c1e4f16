"""`lockmesh bench face`: one 640x480 frame to a match against 50 people, beside dlib.

Both pipelines run in this process on the same frames (real photos letterboxed to
640x480), so the ratio holds on a busy machine. Ours is timed per stage; the dlib
reference (HOG detector, its 5-point predictor and chip, its ResNet) as a whole. The
figures are medians and 99th percentiles over repeated passes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from hw.camera import load_photo
from ops.benchkit import Failed, percentiles, show_line
from ops.face_eval import compare, dlib_reference, photos
from services.face.chip import box_from_mtcnn, face_chip
from services.face.gallery import Gallery
from services.face.models import build
from services.face.pipeline import Pipeline, largest

GALLERY_SIZE = 50


def frame_640x480(path: Path) -> np.ndarray:
    """A photo as the lock's 640x480 camera frames it: scaled to fit, the rest black."""
    rgb = load_photo(path)
    scale = min(640 / rgb.shape[1], 480 / rgb.shape[0], 1.0)
    if scale < 1.0:
        from PIL import Image

        size = (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[: rgb.shape[0], : rgb.shape[1]] = rgb
    return frame


def run(models_dir: Path, root: Path, *, passes: int, min_face: int, threads: int) -> dict:
    if not (root / "dev").is_dir():
        raise Failed(
            f"bench face needs the dev photos of ../shared/faces and found none in "
            f"{root / 'dev'}: stopped (pass --faces DIR)"
        )
    frames = [frame_640x480(p) for ps in photos(root / "dev").values() for p in ps]
    pipeline = Pipeline(build.ensure(models_dir), min_face=min_face, threads=threads)
    gallery = Gallery()
    rng = np.random.default_rng(50)
    for i in range(GALLERY_SIZE):
        gallery.add(f"{i + 1:03d}", 1, rng.normal(0, 0.09, 128).astype(np.float32))
    stages: dict[str, list[float]] = {"detect": [], "align": [], "embed": [], "match": []}
    total: list[float] = []
    for _ in range(passes):
        for frame in frames:
            t0 = time.perf_counter()
            face = largest(pipeline.detect(frame))
            t1 = time.perf_counter()
            if face is None:
                continue
            points = pipeline.predictor.predict(frame, box_from_mtcnn(face.landmarks))
            chip = face_chip(frame, points)
            t2 = time.perf_counter()
            descriptor = pipeline.embed(chip[None])[0]
            t3 = time.perf_counter()
            gallery.nearest(descriptor)
            t4 = time.perf_counter()
            for name, took in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                stages[name].append(took)
            total.append(t4 - t0)
    report: dict[str, Any] = {
        "frames": len(frames),
        "passes": passes,
        "min_face": min_face,
        "threads": threads,
        "ours": {"total": percentiles(total), **{k: percentiles(v) for k, v in stages.items()}},
    }
    reference = dlib_reference()
    if reference is None:
        report["dlib"] = "dlib is not installed (pip install dlib-bin)"
    else:
        times = []
        for frame in frames:
            t0 = time.perf_counter()
            reference(frame)
            times.append(time.perf_counter() - t0)
        report["dlib"] = {"total": percentiles(times)}
        report["speedup_p50"] = (
            report["dlib"]["total"]["p50_ms"] / report["ours"]["total"]["p50_ms"]
        )
    return report


def accuracy(models_dir: Path, root: Path, threshold: float) -> dict:
    return compare(root / "dev", models_dir, threshold)


def show(report: dict[str, Any]) -> None:
    ours = report["ours"]
    print(
        f"bench face: {report['frames']} frames of 640x480 x {report['passes']}, "
        f"min face {report['min_face']} px, {report['threads']} thread(s), match against "
        f"{GALLERY_SIZE} people"
    )
    for name, s in ours.items():
        print(show_line(f"ours {name}", s))
    if isinstance(report["dlib"], dict):
        d = report["dlib"]["total"]
        print(show_line("dlib total", d))
        print(f"  ours is {report['speedup_p50']:.1f}x faster at p50")
    else:
        print(f"  dlib: {report['dlib']}")
    for side, a in report.get("accuracy", {}).items():
        if isinstance(a, dict):
            print(
                f"  {side:<4} accuracy at {a['threshold']}: TAR {a['tar']:.1%} of "
                f"{a['genuine_pairs']}, FAR {a['far']:.2%} ({a['false_accepts']} of "
                f"{a['impostor_pairs']}), AUC {a['roc_auc']:.5f}, "
                f"missed {len(a['failed_to_detect'])} of {a['photos']}"
            )
