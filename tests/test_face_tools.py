"""Issue 14 items 3 and 6: the face tools measure honestly (face_eval, bench face)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ops import bench_face
from ops.face_eval import Presented, choose_threshold, halves, photos, present


def test_face_eval_reads_every_image_type(tmp_path):
    folders = {
        "p01": ["1.jpg", "2.PNG", "3.webp", "notes.txt"],
        "p02": ["1.png", "2.jpeg", "3.bmp"],
        "_group": ["x.jpg"],
    }
    for person, names in folders.items():
        (tmp_path / person).mkdir()
        for name in names:
            if name.endswith(".txt"):
                (tmp_path / person / name).write_text("not a photo")
            else:
                Image.new("RGB", (8, 8)).save(tmp_path / person / name)
    found = {p: [f.name for f in fs] for p, fs in photos(tmp_path).items()}
    assert found == {"p01": ["1.jpg", "2.PNG", "3.webp"], "p02": ["1.png", "2.jpeg", "3.bmp"]}


def at(*rows: float) -> list[np.ndarray]:
    """Descriptors along one axis: their distances are the differences of the numbers."""
    return [np.array([r, 0.0], np.float32) for r in rows]


def test_presentations_use_each_persons_other_photos_as_templates():
    half = {"a": at(0.0, 0.3, 0.45), "b": at(2.0, 2.2), "c": at(5.0)}
    shown = present(half)
    # a's photos: nearest other photo 0.3, 0.15, 0.15; b's: 0.2 twice; c has no other
    assert shown.genuine == pytest.approx([0.3, 0.15, 0.15, 0.2, 0.2])
    # each photo against everyone else: a's 0.45 is 1.55 from b's 2.0, c's 5.0 is 2.8 from b
    assert min(shown.impostor) == pytest.approx(1.55) and len(shown.impostor) == 6
    assert present(half, poses=1).genuine == pytest.approx([0.3, 0.3, 0.45, 0.2, 0.2])


def test_the_threshold_is_chosen_on_one_half_only():
    a, b = halves({"p": at(0, 1, 2, 3, 4), "q": at(9)})
    first = lambda half: {p: [float(d[0]) for d in ds] for p, ds in half.items()}  # noqa: E731
    assert (first(a), first(b)) == ({"p": [0, 2, 4], "q": [9]}, {"p": [1, 3], "q": []})
    assert choose_threshold(Presented([0.40, 0.446], [0.569, 0.7])) == 0.50  # 0.5075 down
    assert choose_threshold(Presented([0.40, 0.60], [0.55, 0.7])) == 0.54  # overlap: under


def test_bench_face_gives_dlib_the_same_smallest_face():
    assert bench_face.upsampling_for(80) == (0, 80)
    assert bench_face.upsampling_for(60) == (1, 40)
    assert bench_face.upsampling_for(40) == (1, 40)
    assert bench_face.upsampling_for(20) == (2, 20)


def test_bench_face_times_every_frame_on_both_sides_in_turns_after_warming_up():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(8)]  # 0 and 7: no face
    calls: list[tuple[str, int]] = []

    def side(name: str):
        def run(frame: np.ndarray) -> dict[str, float]:
            calls.append((name, int(frame[0, 0, 0])))
            return {"total": 0.001} if frame[0, 0, 0] in (0, 7) else {"total": 0.002}

        return run

    samples = bench_face.time_both(frames, {"ours": side("ours"), "dlib": side("dlib")}, 2)
    warm = bench_face.WARM_UP
    assert calls[: 2 * warm] == [("ours", i) for i in range(warm)] + [("dlib", i) for i in
                                                                      range(warm)]  # fmt: skip
    timed = calls[2 * warm :]
    assert timed[:4] == [("ours", 0), ("dlib", 0), ("dlib", 1), ("ours", 1)]  # in turns
    for name in ("ours", "dlib"):  # every frame, those without a face too, each pass
        assert sorted(f for n, f in timed if n == name) == sorted(list(range(8)) * 2)
        assert len(samples[name]["total"]) == 16
