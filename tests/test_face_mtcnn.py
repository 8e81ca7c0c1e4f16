"""MTCNN on onnxruntime: safe weight loading, per-net parity with Keras, pipeline parity.

The Keras numbers come from tests/data/make_mtcnn_reference.py (run by hand in a scratch venv
with TensorFlow, which is not a project dependency).
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import lz4.frame
import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.face.detect import AreaPyramid, Detector, _nms_keep, crop_and_resize
from services.face.models.mtcnn_nets import build_from_package, build_pnet
from services.face.models.mtcnn_weights import load_weights, read_net_weights, weights_dir
from tests.data.make_mtcnn_reference import (
    NET_REFERENCE,
    PIPELINE_REFERENCE,
    load_photo,
    pixels_digest,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_FACES = ROOT.parent / "shared" / "faces"
NET_TOLERANCE = 1e-4
PIXEL_TOLERANCE = 0.5


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    return build_from_package()


@pytest.fixture(scope="module")
def detector20(models) -> Detector:
    return Detector(models["pnet"], models["rnet"], models["onet"], min_face=20)


def run_net(model: bytes, pixels: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"image": pixels.astype(np.float32)})))


def lz4_pickle(obj_bytes: bytes) -> bytes:
    return lz4.frame.compress(obj_bytes)


def joblib_lz4(arrays: list) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(arrays, buffer)
    return lz4.frame.compress(buffer.getvalue())


# --- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_weights_equal_what_joblib_reads_from_the_package_file(net):
    # joblib.load is the reference here only because the file is the installed package's own
    ours = read_net_weights(net)
    theirs = joblib.load(weights_dir() / f"{net}.lz4")
    assert len(ours) == len(theirs)
    for mine, ref in zip(ours, theirs):
        assert mine.dtype == ref.dtype == np.float32
        np.testing.assert_array_equal(mine, ref)


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=4), min_size=1, max_size=5),
    fortran=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_joblib_list_of_float_arrays_round_trips(shapes, fortran, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    if fortran:
        arrays = [np.asfortranarray(a) for a in arrays]
    loaded = load_weights(joblib_lz4(arrays))
    assert len(loaded) == len(arrays)
    for got, want in zip(loaded, arrays):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


class RunsShell:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_pickle_calling_os_system_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    payloads = [
        pickle.dumps(RunsShell(f"touch {marker}")),  # names posix.system on Linux
        f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(),  # names os.system literally
    ]
    for payload in payloads:
        with pytest.raises(pickle.UnpicklingError, match=r"(os|posix)\.system"):
            load_weights(lz4_pickle(payload))
    assert not marker.exists()


def test_plain_numpy_pickle_is_refused():
    # numpy's own pickling goes through numpy.core.multiarray._reconstruct: not in a weight file
    payload = pickle.dumps([np.zeros(3, np.float32)])
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_weights(lz4_pickle(payload))


def test_object_arrays_are_refused():
    with pytest.raises(pickle.UnpicklingError, match="only float arrays"):
        load_weights(joblib_lz4([np.array([1, "x"], dtype=object)]))


def test_truncated_file_is_refused():
    data = lz4.frame.decompress((weights_dir() / "pnet.lz4").read_bytes())
    with pytest.raises(pickle.UnpicklingError):
        load_weights(lz4.frame.compress(data[: len(data) // 2]))


def test_trailing_bytes_are_refused():
    data = lz4.frame.decompress((weights_dir() / "pnet.lz4").read_bytes())
    with pytest.raises(pickle.UnpicklingError, match="left after"):
        load_weights(lz4.frame.compress(data + b"\0" * 8))


def test_wrong_weights_for_a_net_are_refused():
    with pytest.raises(ValueError, match="shape"):
        build_pnet(read_net_weights("rnet"))


def test_converting_never_imports_mtcnn_or_tensorflow():
    code = (
        "import sys\n"
        "from services.face.models.mtcnn_nets import build_from_package\n"
        "import services.face.detect\n"
        "build_from_package()\n"
        "bad = [m for m in ('mtcnn', 'tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# --- per-net parity with Keras ---------------------------------------------------------------


@pytest.mark.parametrize("case", ["pnet_a", "pnet_b", "rnet", "onet"])
def test_each_net_matches_keras(models, case):
    reference = np.load(NET_REFERENCE)
    net = case.split("_")[0]
    outputs = run_net(models[net], reference[f"{case}_input"])
    assert set(outputs) == {k[len(case) + 1 :] for k in reference.files if k.startswith(case)} - {
        "input"
    }
    for name, value in outputs.items():
        expected = reference[f"{case}_{name}"]
        assert value.shape == expected.shape, name
        assert np.abs(value - expected).max() < NET_TOLERANCE, name


def test_keras_reference_is_not_trivial():
    # a reference of all-equal outputs would let a broken graph pass
    reference = np.load(NET_REFERENCE)
    for key in ["pnet_a_probability", "rnet_probability", "onet_landmarks", "onet_regression"]:
        assert reference[key].std() > 1e-3, key


# --- pipeline pieces -------------------------------------------------------------------------


def area_resize_slow(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area averaging written out pixel by pixel, for checking the fast pyramid."""

    def weights(length: int, size: int) -> np.ndarray:
        step = length / size
        matrix = np.zeros((size, length))
        for out in range(size):
            start, end = out * step, (out + 1) * step
            for pixel in range(int(np.floor(start)), min(int(np.ceil(end)), length)):
                matrix[out, pixel] = min(end, pixel + 1) - max(start, pixel)
        return matrix / step

    wy, wx = weights(image.shape[0], height), weights(image.shape[1], width)
    return np.einsum("yh,hwc,xw->cyx", wy, image.astype(np.float64), wx)


@settings(max_examples=30, deadline=None)
@given(
    height=st.integers(12, 60),
    width=st.integers(12, 60),
    scale=st.floats(0.1, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_area_pyramid_matches_pixel_by_pixel_area_averaging(height, width, scale, seed):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out_h, out_w = max(1, int(height * scale)), max(1, int(width * scale))
    fast = AreaPyramid(image).level(out_h, out_w)
    assert fast.shape == (3, out_h, out_w)
    np.testing.assert_allclose(fast, area_resize_slow(image, out_h, out_w), atol=1e-3)


def test_crop_of_the_whole_image_reproduces_its_corners_and_pads_outside():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (30, 40, 3)).astype(np.float32)
    boxes = np.array([[0.0, 0.0, 40.0, 30.0], [-100.0, -100.0, -60.0, -70.0]])
    crops = crop_and_resize(image, boxes, 24)
    assert crops.shape == (2, 3, 24, 24)
    # mtcnn normalises by the size but maps back with size − 1: the far corner is the last pixel
    np.testing.assert_allclose(crops[0, :, 0, 0], image[0, 0], atol=1e-4)
    np.testing.assert_allclose(crops[0, :, -1, -1], image[29, 39], atol=1e-3)
    assert np.all(crops[1] == 127.5)  # outside the image: the value that normalises to 0


def test_suppression_drops_a_box_overlapping_any_better_box_like_mtcnn():
    # A overlaps B, B overlaps C, A does not overlap C: greedy NMS would keep A and C,
    # mtcnn 1.0.0 keeps only A because C overlaps B, which ranks above it.
    boxes = np.array(
        [[0, 0, 10, 10, 0.9], [3, 0, 13, 10, 0.8], [6, 0, 16, 10, 0.7], [50, 50, 60, 60, 0.6]],
        dtype=np.float64,
    )
    assert list(_nms_keep(boxes, 0.3, "union")) == [0, 3]
    assert list(_nms_keep(boxes, 0.9, "union")) == [0, 1, 2, 3]


def test_pyramid_skips_levels_under_twelve_pixels(models):
    for min_face in (20, 40, 80, 200):
        detector = Detector(models["pnet"], models["rnet"], models["onet"], min_face=min_face)
        scales = detector.pyramid_scales(480, 640)
        assert scales and all(int(480 * s) >= 12 for s in scales)
        assert scales[0] == pytest.approx(12 / min_face)
    # min_face 20 keeps all of mtcnn's ten levels on a 640x480 frame
    detector = Detector(models["pnet"], models["rnet"], models["onet"], min_face=20)
    assert len(detector.pyramid_scales(480, 640)) == 10


def test_blank_image_has_no_faces(detector20):
    assert detector20.detect(np.full((480, 640, 3), 128, np.uint8)) == []


def test_detect_refuses_what_is_not_an_rgb_uint8_image(detector20):
    with pytest.raises(ValueError):
        detector20.detect(np.zeros((48, 48), np.uint8))
    with pytest.raises(ValueError):
        detector20.detect(np.zeros((48, 48, 3), np.float32))


# --- whole pipeline on real photos -----------------------------------------------------------

needs_photos = pytest.mark.skipif(
    not SHARED_FACES.is_dir(), reason=f"face photos not available at {SHARED_FACES}"
)


def reference_faces() -> dict[str, tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    ref = np.load(PIPELINE_REFERENCE)
    ends = np.cumsum(ref["counts"])
    starts = ends - ref["counts"]
    return {
        str(path): (str(digest), ref["boxes"][a:b], ref["landmarks"][a:b], ref["scores"][a:b])
        for path, digest, a, b in zip(ref["paths"], ref["digests"], starts, ends)
    }


@pytest.mark.slow
@needs_photos
def test_pipeline_matches_mtcnn_on_the_dev_photos(detector20):
    reference = reference_faces()
    assert len(reference) >= 60
    ref = np.load(PIPELINE_REFERENCE)
    assert int(ref["min_face"]) == detector20.min_face
    assert tuple(ref["thresholds"]) == detector20.thresholds
    worst_box = worst_landmark = 0.0
    for name, (digest, boxes, landmarks, scores) in reference.items():
        rgb = load_photo(SHARED_FACES / name)
        if pixels_digest(rgb) != digest:
            pytest.fail(
                f"{name} decodes to other pixels than when the reference was made: "
                "rerun tests/data/make_mtcnn_reference.py with this Pillow"
            )
        faces = detector20.detect(rgb)
        assert len(faces) == len(boxes), name
        if not faces:
            continue
        got_boxes = np.array([face.box for face in faces])
        got_landmarks = np.stack([face.landmarks for face in faces])
        worst_box = max(worst_box, float(np.abs(got_boxes - boxes).max()))
        worst_landmark = max(worst_landmark, float(np.abs(got_landmarks - landmarks).max()))
        np.testing.assert_allclose([face.score for face in faces], scores, atol=1e-3)
    assert worst_box < PIXEL_TOLERANCE
    assert worst_landmark < PIXEL_TOLERANCE


@pytest.mark.slow
@needs_photos
def test_default_min_face_finds_a_face_in_every_single_person_photo(models):
    # some photos also hold a bystander or a face-like patch, so "at least one", not "one"
    detector = Detector(models["pnet"], models["rnet"], models["onet"])  # min_face 40
    photos = sorted((SHARED_FACES / "dev").glob("p*/*.jpg"))
    assert len(photos) >= 60
    missed = [
        str(p.relative_to(SHARED_FACES)) for p in photos if not detector.detect(load_photo(p))
    ]
    assert not missed, f"no face in {len(missed)} of {len(photos)} photos: {missed}"
