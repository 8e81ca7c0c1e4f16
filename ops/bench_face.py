"""`lockmesh bench face`: one 640x480 frame to a match against 50 people, beside dlib.

Equal work on both sides (issue 14):
- the same frames (the dev photos letterboxed to 640x480, and blank frames as an empty
  doorstep), every frame timed on both sides, a frame without a face included;
- the same smallest face: dlib's HOG finds faces down to 80 px, 40 px when the frame is
  upsampled once; our MTCNN is given that same minimum;
- the same steps: detect, the largest face's 5 points and chip, its descriptor, the
  nearest of 50 people;
- both warmed up on the first frames before timing, and taking turns frame by frame (in
  alternating order) so load on the machine falls on both;
- both pinned: the process is bound to `threads` CPUs, onnxruntime gets that many
  threads, and OpenMP/BLAS are told the same before dlib loads.
Ours is also timed per stage. Figures are medians; benchkit gives a 99th percentile only
from its minimum of samples on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hw.camera import load_photo
from ops.benchkit import Failed, percentiles, show_line
from ops.face_eval import compare, dlib_reference, photos
from services.face.chip import box_from_mtcnn, face_chip
from services.face.gallery import Gallery
from services.face.models import build
from services.face.pipeline import Pipeline, largest

GALLERY_SIZE = 50
HOG_WINDOW = 80  # px: dlib's frontal detector's smallest face without upsampling
BLANK_FRAMES = 6  # an empty doorstep: no face, timed on both sides too
WARM_UP = 5  # frames each side runs before anything is timed

Timed = Callable[[np.ndarray], dict[str, float]]  # a frame -> the seconds of its stages


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


def blank_frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(480)
    return [rng.integers(60, 90, (480, 640, 3), dtype=np.uint8) for _ in range(count)]


def upsampling_for(min_face: int) -> tuple[int, int]:
    """dlib's upsampling count whose smallest face is at most min_face, and that size."""
    upsample = 0
    while HOG_WINDOW >> upsample > min_face and upsample < 2:
        upsample += 1
    return upsample, HOG_WINDOW >> upsample


def pin(threads: int) -> list[int]:
    """Bind this process to `threads` of its CPUs; OpenMP and BLAS told the same."""
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    return cpus


def gallery_of_50() -> Gallery:
    gallery = Gallery()
    rng = np.random.default_rng(50)
    for i in range(GALLERY_SIZE):
        gallery.add(f"{i + 1:03d}", 1, rng.normal(0, 0.09, 128).astype(np.float32))
    return gallery


def ours_timed(pipeline: Pipeline, gallery: Gallery) -> Timed:
    def run(frame: np.ndarray) -> dict[str, float]:
        t0 = time.perf_counter()
        face = largest(pipeline.detect(frame))
        t1 = time.perf_counter()
        if face is None:
            return {"detect": t1 - t0, "total": t1 - t0}
        points = pipeline.predictor.predict(frame, box_from_mtcnn(face.landmarks))
        chip = face_chip(frame, points)
        t2 = time.perf_counter()
        descriptor = pipeline.embed(chip[None])[0]
        t3 = time.perf_counter()
        gallery.nearest(descriptor)
        t4 = time.perf_counter()
        return {"detect": t1 - t0, "align": t2 - t1, "embed": t3 - t2, "match": t4 - t3,
                "total": t4 - t0}  # fmt: skip

    return run


def dlib_timed(upsample: int, gallery: Gallery) -> Timed | None:
    describe = dlib_reference(upsample)
    if describe is None:
        return None

    def run(frame: np.ndarray) -> dict[str, float]:
        t0 = time.perf_counter()
        seen = describe(frame)
        if seen is not None:
            gallery.nearest(seen.descriptor)
        return {"total": time.perf_counter() - t0}

    return run


def time_both(frames: list[np.ndarray], sides: dict[str, Timed], passes: int) -> dict:
    """Every frame on every side, in turns (the order alternating frame by frame), after
    WARM_UP untimed frames each. Stage seconds per side, one sample per frame run."""
    for run in sides.values():
        for frame in frames[:WARM_UP]:
            run(frame)
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in sides}
    order = list(sides)
    for k, frame in enumerate(frame for _ in range(passes) for frame in frames):
        for name in order[::-1] if k % 2 else order:
            for stage, took in sides[name](frame).items():
                samples[name].setdefault(stage, []).append(took)
    return samples


def run(models_dir: Path, root: Path, *, passes: int, min_face: int, threads: int) -> dict:
    if not (root / "dev").is_dir():
        raise Failed(
            f"bench face needs the dev photos of ../shared/faces and found none in "
            f"{root / 'dev'}: stopped (pass --faces DIR)"
        )
    cpus = pin(threads)
    upsample, smallest = upsampling_for(min_face)
    faces = [frame_640x480(p) for ps in photos(root / "dev").values() for p in ps]
    frames = faces + blank_frames(BLANK_FRAMES)
    gallery = gallery_of_50()
    pipeline = Pipeline(build.ensure(models_dir), min_face=smallest, threads=threads)
    sides: dict[str, Timed] = {"ours": ours_timed(pipeline, gallery)}
    reference = dlib_timed(upsample, gallery)
    if reference is not None:
        sides["dlib"] = reference
    samples = time_both(frames, sides, passes)
    report: dict[str, Any] = {
        "frames": len(frames),
        "frames_without_a_face": BLANK_FRAMES,
        "passes": passes,
        "min_face": smallest,
        "dlib_upsample": upsample,
        "threads": threads,
        "cpus": cpus,
        "ours": {stage: percentiles(v) for stage, v in samples["ours"].items()},
    }
    if reference is None:
        report["dlib"] = "dlib is not installed (pip install dlib-bin)"
    else:
        report["dlib"] = {"total": percentiles(samples["dlib"]["total"])}
        report["speedup_p50"] = (
            report["dlib"]["total"]["p50_ms"] / report["ours"]["total"]["p50_ms"]
        )
    return report


def accuracy(models_dir: Path, root: Path, threshold: float) -> dict:
    return compare(root / "dev", models_dir, threshold)


def show(report: dict[str, Any]) -> None:
    ours = report["ours"]
    print(
        f"bench face: {report['frames']} frames of 640x480 ({report['frames_without_a_face']}"
        f" without a face) x {report['passes']}, both sides: min face {report['min_face']} px"
        f" (dlib upsampling {report['dlib_upsample']}), {report['threads']} thread(s) on"
        f" CPUs {report['cpus']}, match against {GALLERY_SIZE} people"
    )
    for name, s in ours.items():
        print(show_line(f"ours {name}", s))
    if isinstance(report["dlib"], dict):
        d = report["dlib"]["total"]
        print(show_line("dlib total", d))
        print(f"  ours is {report['speedup_p50']:.1f}x faster at p50, on the same frames")
    else:
        print(f"  dlib: {report['dlib']}")
    for side, a in report.get("accuracy", {}).items():
        if not isinstance(a, dict):
            continue
        print(
            f"  {side:<4} pairs at {a['threshold']}: TAR {a['tar']:.1%} of "
            f"{a['genuine_pairs']}, FAR {a['far']:.2%} ({a['false_accepts']} of "
            f"{a['impostor_pairs']}), AUC {a['roc_auc']:.5f}, "
            f"missed {len(a['failed_to_detect'])} of {a['photos']}"
        )
        h = a["held_out"]
        b = h["b_held_out"]
        print(
            f"  {side:<4} presentations, threshold {h['threshold_chosen_on_a']} chosen on half"
            f" A; held-out half B: {b['accepted']} of {b['genuine_presentations']} genuine"
            f" accepted, {b['false_accepts']} of {b['impostor_presentations']} impostors"
        )
