"""Face alignment in numpy against dlib itself: the 5-point shape predictor, the 150x150
chip, and the MTCNN-box route's effect on the embedding.

dlib (the dlib-bin wheel) is the reference here and never a runtime dependency.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.face.chip import box_from_mtcnn, face_chip, pyramid_down
from services.face.models.dlib_format import FormatError
from services.face.models.shape_predictor import ShapePredictor, gray_like_dlib, parse
from tests.data.fit_face_box import DEV_PHOTOS, collect, dev_photo_paths, load_photo, models_dir

dlib = pytest.importorskip("dlib", reason="dlib (dlib-bin, test-only) is the reference")

try:
    MODELS = models_dir()
except FileNotFoundError:
    MODELS = Path("/nonexistent")
PREDICTOR_5 = MODELS / "shape_predictor_5_face_landmarks.dat"
needs_models = pytest.mark.skipif(
    not PREDICTOR_5.is_file(), reason="face_recognition_models (the dlib weights) not installed"
)
needs_photos = pytest.mark.skipif(
    not DEV_PHOTOS.is_dir(), reason=f"no dev photos at {DEV_PHOTOS} (a fresh machine has none)"
)


@pytest.fixture(scope="module")
def predictor() -> ShapePredictor:
    return ShapePredictor.load(PREDICTOR_5)


@pytest.fixture(scope="module")
def reference_predictor():
    return dlib.shape_predictor(str(PREDICTOR_5))


def dlib_points(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def textured_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth blobs plus noise: structure at several scales for the trees to split on."""
    coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    noise = rng.integers(-30, 31, (height, width, 3))
    return np.clip(smooth.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def random_box(rng: np.random.Generator, height: int, width: int) -> tuple[int, int, int, int]:
    """Boxes of every size, some hanging off the image, some not square."""
    side = int(rng.integers(12, max(13, min(height, width) + 40)))
    left = int(rng.integers(-side // 3, width - side // 2))
    top = int(rng.integers(-side // 3, height - side // 2))
    return left, top, left + side, top + side + int(rng.integers(-side // 8, side // 8 + 1))


# --- a small synthetic model, written in dlib's format -------------------------------------


def dlib_int(value: int) -> bytes:
    magnitude = abs(value)
    size = max(1, (magnitude.bit_length() + 7) // 8)
    return bytes([size | (0x80 if value < 0 else 0)]) + magnitude.to_bytes(size, "little")


def dlib_float(value: float) -> bytes:
    fraction, exponent = math.frexp(float(np.float32(value)))
    return dlib_int(int(fraction * 2**24)) + dlib_int(exponent - 24)


def dlib_float_column(values: np.ndarray) -> bytes:
    return dlib_int(-len(values)) + dlib_int(-1) + b"".join(dlib_float(v) for v in values)


def synthetic_model(
    rng: np.random.Generator,
    parts: int = 3,
    cascades: int = 3,
    trees: int = 6,
    depth: int = 2,
    features: int = 24,
    leaf_values: int | None = None,
    split_index_limit: int | None = None,
    version: int = 1,
) -> bytes:
    """A random but well-formed shape predictor, as dlib's serialize() lays it out."""
    splits, leaves = 2**depth - 1, 2**depth
    out = [dlib_int(version), dlib_float_column(rng.uniform(0.2, 0.8, 2 * parts))]
    out.append(dlib_int(cascades))
    for _ in range(cascades):
        out.append(dlib_int(trees))
        for _ in range(trees):
            out.append(dlib_int(splits))
            for _ in range(splits):
                limit = split_index_limit or features
                first, second = rng.integers(0, limit, 2)
                out += [dlib_int(int(first)), dlib_int(int(second))]
                out.append(dlib_float(rng.uniform(-60, 60)))
            out.append(dlib_int(leaves))
            for _ in range(leaves):
                out.append(dlib_float_column(rng.uniform(-0.03, 0.03, leaf_values or 2 * parts)))
    out.append(dlib_int(cascades))
    for _ in range(cascades):
        out.append(dlib_int(features))
        out += [dlib_int(int(a)) for a in rng.integers(0, parts, features)]
    out.append(dlib_int(cascades))
    for _ in range(cascades):
        out.append(dlib_int(features))
        out += [dlib_float(v) for v in rng.uniform(-0.3, 0.3, 2 * features)]
    return b"".join(out)


def test_synthetic_model_predicts_like_dlib(tmp_path: Path):
    rng = np.random.default_rng(7)
    path = tmp_path / "synthetic.dat"
    path.write_bytes(synthetic_model(rng, parts=4, cascades=3, trees=8, depth=3, features=30))
    ours, theirs = ShapePredictor.load(path), dlib.shape_predictor(str(path))
    assert ours.num_parts == 4 and ours.depth == 3
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(40, 200, 2))
        rgb = textured_image(rng, height, width)
        box = random_box(rng, height, width)
        expected = dlib_points(theirs(rgb, dlib.rectangle(*box)))
        np.testing.assert_array_equal(ours.predict(gray_like_dlib(rgb), box), expected)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda data: data[:-1], id="truncated"),
        pytest.param(lambda data: data + b"\x00", id="leftover byte"),
        pytest.param(lambda data: dlib_int(2) + data[2:], id="unknown version"),
        pytest.param(lambda data: data[: len(data) // 2], id="cut in half"),
    ],
)
def test_corrupted_synthetic_model_is_refused(corrupt):
    data = synthetic_model(np.random.default_rng(3))
    parse(data)  # the intact file is fine
    with pytest.raises(FormatError):
        parse(corrupt(data))


@pytest.mark.parametrize(
    "mismatch",
    [
        pytest.param({"leaf_values": 5}, id="leaf size not the shape's"),
        pytest.param({"split_index_limit": 40, "features": 24}, id="split beyond the pixels"),
    ],
)
def test_inconsistent_synthetic_model_is_refused(mismatch):
    # Seeded so a split index really lands beyond the 24 pixels.
    data = synthetic_model(np.random.default_rng(5), **mismatch)
    with pytest.raises(FormatError):
        parse(data)


@needs_models
def test_corrupted_real_model_is_refused():
    data = PREDICTOR_5.read_bytes()
    with pytest.raises(FormatError):
        parse(data[: len(data) // 3])
    with pytest.raises(FormatError):
        parse(dlib_int(2) + data[2:])
    with pytest.raises(FormatError):
        parse(data + b"\x00")


# --- the real 5-point model on synthetic images ---------------------------------------------


@needs_models
def test_real_model_shape(predictor: ShapePredictor):
    assert predictor.num_parts == 5
    assert predictor.leaves.shape[:2] == (15, 500) and predictor.depth == 4


@needs_models
def test_predictor_matches_dlib_on_synthetic_images(predictor, reference_predictor):
    rng = np.random.default_rng(11)
    for _ in range(80):
        height, width = (int(v) for v in rng.integers(60, 400, 2))
        rgb = textured_image(rng, height, width)
        box = random_box(rng, height, width)
        expected = dlib_points(reference_predictor(rgb, dlib.rectangle(*box)))
        got = predictor.predict(gray_like_dlib(rgb), box)
        assert np.abs(got - expected).max() < 0.01, (box, got, expected)
        subpixel = predictor.predict(gray_like_dlib(rgb), box, rounded=False)
        assert np.abs(subpixel - expected).max() <= 0.5
        # Straight from RGB: intensities taken only where the trees look, same answer.
        np.testing.assert_array_equal(predictor.predict(rgb, box), expected)


@needs_models
def test_gray_like_dlib_is_what_dlib_reads_from_rgb(reference_predictor):
    """dlib on the RGB image and dlib on our grayscale of it land on the same points."""
    rng = np.random.default_rng(12)
    for _ in range(30):
        rgb = textured_image(rng, 160, 200)
        box = random_box(rng, 160, 200)
        gray = gray_like_dlib(rgb).astype(np.uint8)
        from_rgb = dlib_points(reference_predictor(rgb, dlib.rectangle(*box)))
        from_gray = dlib_points(reference_predictor(gray, dlib.rectangle(*box)))
        np.testing.assert_array_equal(from_rgb, from_gray)


def test_gray_like_dlib_truncates_the_plain_mean():
    rgb = np.array([[[255, 255, 254], [1, 1, 0], [10, 20, 30]]], dtype=np.uint8)
    np.testing.assert_array_equal(gray_like_dlib(rgb), [[254, 0, 20]])


# --- the chip on synthetic images -----------------------------------------------------------


def random_face_points(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Five points in dlib's order, at any size, roll and position (some off the image)."""
    layout = np.array([[0.86, 0.21], [0.65, 0.23], [0.12, 0.21], [0.33, 0.23], [0.49, 0.63]])
    angle = rng.uniform(-0.7, 0.7)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    scale = rng.uniform(8, 450)  # up to two pyramid levels
    centre = rng.uniform([-40, -40], [width + 40, height + 40])
    points = (layout - 0.5) @ rotation.T * scale + centre + rng.normal(0, 2, (5, 2))
    return np.round(points)


def dlib_chip(rgb: np.ndarray, points: np.ndarray, size: int = 150, padding: float = 0.25):
    parts = [dlib.point(int(x), int(y)) for x, y in points]
    detection = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), parts)
    return dlib.get_face_chip(rgb, detection, size=size, padding=padding)


@pytest.mark.parametrize("size, padding", [(150, 0.25), (200, 0.2), (151, 0.5)])
def test_chip_matches_dlib_pixel_for_pixel(size: int, padding: float):
    rng = np.random.default_rng(size)
    for trial in range(60):
        height, width = (int(v) for v in rng.integers(40, 800, 2))
        rgb = textured_image(rng, height, width)
        if trial % 4 == 0:  # flat areas: where the truncation to uint8 is knife-edge
            rgb[: height // 2] = rng.integers(0, 256, 3, dtype=np.uint8)
        points = random_face_points(rng, height, width)
        expected = dlib_chip(rgb, points, size, padding)
        got = face_chip(rgb, points, size=size, padding=padding)
        assert got.shape == (size, size, 3) and got.dtype == np.uint8
        difference = np.abs(got.astype(np.int64) - expected).max()
        assert difference == 0, (trial, points.tolist(), difference)


def test_pyramid_down_matches_dlib():
    rng = np.random.default_rng(21)
    pyramid = dlib.pyramid_down(2)
    for height, width in [(9, 9), (37, 50), (120, 91), (8, 40)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        expected = pyramid(rgb)
        got = pyramid_down(rgb)
        assert got.shape[:2] == expected.shape[:2]
        if expected.size:
            np.testing.assert_array_equal(got, expected)


def test_box_from_mtcnn_is_a_square_around_the_face():
    # A frontal face 60 px between the eyes, mouth 70 px below them.
    points = np.array([[170, 200], [230, 200], [200, 240], [175, 270], [225, 270]], float)
    left, top, right, bottom = box_from_mtcnn(points)
    assert right - left == bottom - top
    assert left < 170 and right > 230 and top < 200 and bottom > 270
    # Moving and scaling the face moves and scales the box with it.
    moved = box_from_mtcnn(points * 2 + 50)
    assert abs(moved[0] - (left * 2 + 50)) <= 1 and abs(moved[3] - (bottom * 2 + 50)) <= 1


# --- real photos: parity, and the embedding the MTCNN-box route leads to --------------------


@pytest.fixture(scope="module")
def dev_faces():
    """Every face dlib's detector finds in the dev photos, with its photo loaded."""
    faces = collect(dev_photo_paths())
    photos = {path: load_photo(path) for path in {path for path, _, _ in faces}}
    return [(photos[path], box, points) for path, box, points in faces]


@pytest.mark.slow
@needs_models
@needs_photos
def test_real_photos_predictor_and_chip_match_dlib(dev_faces, predictor, reference_predictor):
    assert len(dev_faces) >= 40
    for rgb, box, _ in dev_faces:
        shape = reference_predictor(rgb, dlib.rectangle(*box))
        points = predictor.predict(gray_like_dlib(rgb), box)
        assert np.abs(points - dlib_points(shape)).max() < 0.01
        np.testing.assert_array_equal(face_chip(rgb, points), dlib.get_face_chip(rgb, shape))


@pytest.mark.slow
@needs_models
@needs_photos
def test_mtcnn_box_route_keeps_dlib_embeddings(dev_faces, predictor, reference_predictor):
    """dlib's detector box -> dlib's predictor -> dlib's chip, against box_from_mtcnn (from
    the same five points MTCNN gives) -> our predictor -> our chip, both through dlib's
    ResNet. On these photos (which also fitted the box) the median L2 is 0.030 and the
    worst about 0.12."""
    recogniser = dlib.face_recognition_model_v1(
        str(MODELS / "dlib_face_recognition_resnet_model_v1.dat")
    )
    distances = []
    for rgb, box, mtcnn_points in dev_faces:
        shape = reference_predictor(rgb, dlib.rectangle(*box))
        reference = np.array(recogniser.compute_face_descriptor(rgb, shape))
        points = predictor.predict(rgb, box_from_mtcnn(mtcnn_points))
        ours = np.array(recogniser.compute_face_descriptor(face_chip(rgb, points)))
        distances.append(float(np.linalg.norm(ours - reference)))
    assert np.median(distances) < 0.05
    assert np.percentile(distances, 90) < 0.08
    assert max(distances) < 0.2
