"""Face accuracy on real photos and video: our pipeline beside dlib's, same images, same process.

Two protocols (../shared/faces/README.md):
- pairs: every pair of photos of one person is a genuine pair, of two people an impostor
  pair; TAR and FAR at the lock's threshold, ROC AUC, failures to detect apart. One
  photo against one photo: what the lock did before issue 14.
- presentations (issue 14): what the lock decides. Each person's photos are split in two
  halves (alternately, by file name). Within a half, a person is enrolled with their
  other photos as separate templates (at most one per enrolment pose) and each photo is
  presented: accepted if its nearest template is within the threshold. Every photo is
  also presented to the gallery of everyone *else* in the half: an impostor, or a
  stranger for the people with too few photos to enrol. The threshold is chosen on half
  A (the middle of the gap between its farthest genuine and its nearest impostor
  presentation, rounded down to 0.01) and reported on half B, which chose nothing.
- video: the shared video of a live person. He is enrolled by the lock's own enrolment
  rules (services/face/enrolment.py) from the first half of the frames; each run of
  `window` consecutive frames of the second half is one presentation, decided by its
  best frame (one track). Strangers: every dev photo against his templates, and every
  window against the dev people's.

dlib (the dlib-bin wheel) is the reference; it is a test-only dependency, so without it
only our side is reported. Run: python -m ops.face_eval [--faces DIR] [--json].
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from hw.camera import load_photo
from services.face.enrolment import Enrolment, still
from services.face.gallery import Gallery
from services.face.models import build
from services.face.models.dlib_format import weights_path
from services.face.pipeline import Pipeline, largest

POSES = ["straight", "up", "down", "left", "right"]  # the lock's default enrolment
VIDEO_ENROL_MIN_PX = 70  # the video's faces are 75-86 px wide
TRACK_WINDOW = 10  # frames of one presentation: a third of a second at 30 fps


@dataclass(frozen=True, eq=False)
class Seen:
    """The largest face of an image: its descriptor, and (ours only) its five points."""

    descriptor: np.ndarray
    landmarks: np.ndarray | None = None
    width: float = 0.0


Describer = Callable[[np.ndarray], Seen | None]


def image_suffixes() -> set[str]:
    """Every file type PIL reads (jpg, png, webp, bmp, tiff ...), lower case."""
    Image.init()
    return {suffix.lower() for suffix in Image.registered_extensions()}


def photos(root: Path) -> dict[str, list[Path]]:
    """Person folder: photos of every image type (the dev set's pNN folders; _group is
    not one person)."""
    readable = image_suffixes()
    return {
        d.name: sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in readable)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith("_")
    }


def ours(models_dir: Path, min_face: int = 40) -> Describer:
    pipeline = Pipeline(build.ensure(models_dir), min_face=min_face)

    def describe(rgb: np.ndarray) -> Seen | None:
        face = largest(pipeline.detect(rgb))
        if face is None:
            return None
        return Seen(pipeline.describe(rgb, [face])[0].descriptor, face.landmarks, face.width)

    return describe


def dlib_reference(upsample: int = 1) -> Describer | None:
    """dlib's own pipeline; upsampling once finds faces down to ~40 px, as MTCNN at 40."""
    try:
        import dlib
    except ImportError:
        return None
    folder = weights_path().parent
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(weights_path()))

    def describe(rgb: np.ndarray) -> Seen | None:
        boxes = detector(rgb, upsample)
        if not boxes:
            return None
        box = max(boxes, key=lambda b: b.area())
        chip = dlib.get_face_chip(rgb, predictor(rgb, box), size=150, padding=0.25)
        return Seen(np.asarray(net.compute_face_descriptor(chip), np.float32))

    return describe


# -- describing ---------------------------------------------------------------------------
@dataclass
class People:
    """Descriptors per person, in file-name order, and the photos where no face was found."""

    seen: dict[str, list[np.ndarray]]
    missed: list[str]
    ms_per_photo: float


def describe_people(describe: Describer, people: dict[str, list[Path]]) -> People:
    seen: dict[str, list[np.ndarray]] = {}
    missed, times = [], []
    for person, paths in people.items():
        for path in paths:
            rgb = load_photo(path)
            started = time.perf_counter()
            s = describe(rgb)
            times.append(time.perf_counter() - started)
            if s is None:
                missed.append(f"{person}/{path.name}")
            else:
                seen.setdefault(person, []).append(s.descriptor)
    return People(seen, missed, statistics.median(times) * 1000 if times else 0.0)


# -- pairs (one photo against one photo) --------------------------------------------------
def evaluate(describe: Describer, people: dict[str, list[Path]], threshold: float) -> dict:
    return pairs(describe_people(describe, people), threshold, photos_count(people))


def photos_count(people: dict[str, list[Path]]) -> int:
    return sum(len(p) for p in people.values())


def pairs(described: People, threshold: float, count: int) -> dict[str, Any]:
    genuine = [
        float(np.linalg.norm(a - b))
        for ds in described.seen.values()
        for a, b in itertools.combinations(ds, 2)
    ]
    impostor = [
        float(np.linalg.norm(a - b))
        for (_, xs), (_, ys) in itertools.combinations(described.seen.items(), 2)
        for a in xs
        for b in ys
    ]
    return {
        "photos": count,
        "failed_to_detect": described.missed,
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "threshold": threshold,
        "tar": float(np.mean(np.array(genuine) <= threshold)) if genuine else None,
        "far": float(np.mean(np.array(impostor) <= threshold)) if impostor else None,
        "false_accepts": int(np.sum(np.array(impostor) <= threshold)),
        "roc_auc": roc_auc(genuine, impostor),
        "median_ms_per_photo": described.ms_per_photo,
        "closest_impostor": min(impostor, default=None),
        "farthest_genuine": max(genuine, default=None),
    }


def roc_auc(genuine: list[float], impostor: list[float]) -> float | None:
    """P(a genuine pair is closer than an impostor pair), ties counting half."""
    if not genuine or not impostor:
        return None
    g, i = np.asarray(genuine)[:, None], np.asarray(impostor)[None, :]
    return float(np.mean((g < i) + 0.5 * (g == i)))


# -- presentations (what the lock decides) ------------------------------------------------
@dataclass
class Presented:
    """Nearest-template distances of genuine and of impostor/stranger presentations."""

    genuine: list[float]
    impostor: list[float]
    nearest_impostor: str = ""

    def at(self, threshold: float) -> dict[str, Any]:
        g, i = np.asarray(self.genuine), np.asarray(self.impostor)
        return {
            "threshold": threshold,
            "genuine_presentations": len(g),
            "accepted": int(np.sum(g <= threshold)),
            "tar": float(np.mean(g <= threshold)) if len(g) else None,
            "impostor_presentations": len(i),
            "false_accepts": int(np.sum(i <= threshold)),
            "farthest_genuine": float(g.max()) if len(g) else None,
            "closest_impostor": float(i.min()) if len(i) else None,
            "closest_impostor_is": self.nearest_impostor,
        }


def halves(seen: dict[str, list[np.ndarray]]) -> tuple[dict, dict]:
    """Each person's photos alternately into two halves (A: 1st, 3rd ...; B: 2nd, 4th ...)."""
    return ({p: ds[0::2] for p, ds in seen.items()}, {p: ds[1::2] for p, ds in seen.items()})


def present(half: dict[str, list[np.ndarray]], poses: int = len(POSES)) -> Presented:
    """Every photo of the half presented: to its person's other photos (at most `poses`
    of them, each a template), and to everyone else's."""
    genuine: list[float] = []
    impostor: list[tuple[float, str]] = []
    for person, ds in half.items():
        for k, probe in enumerate(ds):
            own = [d for j, d in enumerate(ds) if j != k][:poses]
            if own:
                genuine.append(float(np.linalg.norm(np.stack(own) - probe, axis=1).min()))
            others = Gallery(len(probe))
            for other, theirs in half.items():
                if other != person and theirs:
                    others.add(other, 1, np.stack(theirs[:poses]))
            near = others.nearest(probe)
            impostor.append((near.distance, f"{person}'s photo {k + 1} as {near.person}"))
    closest = min(impostor, default=(math.inf, ""))
    return Presented(genuine, [d for d, _ in impostor], closest[1])


def choose_threshold(chosen_on: Presented) -> float:
    """The middle of the gap between the farthest genuine and the nearest impostor
    presentation, rounded down to 0.01; under the nearest impostor if they overlap."""
    farthest, nearest = max(chosen_on.genuine), min(chosen_on.impostor)
    middle = (farthest + nearest) / 2 if farthest < nearest else nearest - 0.01
    return math.floor(middle * 100) / 100


def held_out(described: People) -> dict[str, Any]:
    a, b = halves(described.seen)
    on_a, on_b = present(a), present(b)
    threshold = choose_threshold(on_a)
    return {
        "threshold_chosen_on_a": threshold,
        "a": on_a.at(threshold),
        "b_held_out": on_b.at(threshold),
        "b_one_template": present(b, poses=1).at(threshold),
        "failed_to_detect": described.missed,
    }


# -- video ----------------------------------------------------------------------------------
def frames_seen(describe: Describer, folder: Path) -> list[Seen | None]:
    return [describe(load_photo(p)) for p in sorted(folder.glob("*.jpg"))]


def enrol_from(frames: list[Seen | None], threshold: float, loops: int = 3) -> Enrolment:
    """The lock's enrolment over the frames in order (again from the start, as a person
    asked keeps moving, up to `loops` times): one face near enough, held still, in the
    asked pose, the person of the first capture."""
    enrolment = Enrolment(POSES, threshold)
    for _ in range(loops):
        last: np.ndarray | None = None
        for s in frames:
            if enrolment.done:
                return enrolment
            if s is None or s.landmarks is None or s.width < VIDEO_ENROL_MIN_PX:
                last = None
                continue
            before, last = last, s.landmarks
            if before is None or not still(before, s.landmarks):
                continue
            if enrolment.shows_asked(s.landmarks):
                enrolment.offer(s.descriptor, s.landmarks)
    return enrolment


def video(frames: list[Seen | None], dev: dict[str, list[np.ndarray]], threshold: float,
          window: int = TRACK_WINDOW) -> dict[str, Any]:  # fmt: skip
    half = len(frames) // 2
    enrolment = enrol_from(frames[:half], threshold)
    him = Gallery()
    him.add("video", 1, enrolment.descriptors())
    later = [s.descriptor for s in frames[half:] if s is not None]
    tracks = [later[i : i + window] for i in range(len(later) - window + 1)]
    best = [him.best_of_track(t).distance for t in tracks]
    single = [him.nearest(d).distance for d in later]
    everyone = Gallery()
    for person, ds in dev.items():
        everyone.add(person, 1, np.stack(ds[: len(POSES)]))
    return {
        "frames": len(frames),
        "no_face": sum(s is None for s in frames),
        "enrolled_poses": enrolment.poses[: len(enrolment.captured)],
        "enrolment_complete": enrolment.done,
        "threshold": threshold,
        "window_frames": window,
        "presentations": len(tracks),
        "accepted": sum(d <= threshold for d in best),
        "farthest_presentation": max(best, default=None),
        "single_frames": len(single),
        "single_frames_accepted": sum(d <= threshold for d in single),
        "dev_photos_as_him": sum(
            him.nearest(d).distance <= threshold for ds in dev.values() for d in ds
        ),  # fmt: skip
        "dev_photos": sum(len(ds) for ds in dev.values()),
        "his_tracks_as_dev_people": sum(
            everyone.best_of_track(t).distance <= threshold for t in tracks
        ),  # fmt: skip
        "closest_stranger": min(
            [him.nearest(d).distance for ds in dev.values() for d in ds]
            + [everyone.best_of_track(t).distance for t in tracks],
            default=None,
        ),
    }


# -- together ---------------------------------------------------------------------------------
def side(described: People, threshold: float, count: int) -> dict[str, Any]:
    return {**pairs(described, threshold, count), "held_out": held_out(described)}


def compare(root: Path, models_dir: Path, threshold: float) -> dict[str, Any]:
    """The pair protocol and the held-out presentations on root's photos, both sides."""
    people = photos(root)
    report: dict[str, Any] = {}
    for name, describe in {"ours": ours(models_dir), "dlib": dlib_reference()}.items():
        report[name] = (
            "dlib is not installed"
            if describe is None
            else side(describe_people(describe, people), threshold, photos_count(people))
        )
    return report


def full(faces: Path, models_dir: Path, threshold: float) -> dict[str, Any]:
    """Both protocols on the dev photos, both sides; the video with ours at the threshold
    chosen on half A."""
    people = photos(faces / "dev")
    describe = ours(models_dir)
    described = describe_people(describe, people)
    report: dict[str, Any] = {"ours": side(described, threshold, photos_count(people))}
    reference = dlib_reference()
    report["dlib"] = (
        "dlib is not installed"
        if reference is None
        else side(describe_people(reference, people), threshold, photos_count(people))
    )
    chosen = report["ours"]["held_out"]["threshold_chosen_on_a"]
    folders = sorted(d for d in (faces / "video").iterdir() if d.is_dir())
    report["video"] = {
        d.name: video(frames_seen(describe, d), described.seen, chosen) for d in folders
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.face_eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--faces", default="../shared/faces", help="the shared photos")
    parser.add_argument("--models", default="", help="a models folder (default: a temporary one)")
    parser.add_argument("--threshold", type=float, default=0.5, help="for the pair protocol")
    args = parser.parse_args(argv)  # fmt: skip
    faces = Path(args.faces)
    if not (faces / "dev").is_dir():
        print(f"face_eval: no dev photos in {faces / 'dev'}: stopped", file=sys.stderr)
        return 1
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = full(faces, Path(args.models or tmp), args.threshold)
    print(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
