"""The converted face ResNet against dlib itself (the test-only reference), and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from services.face.models.dlib_format import FormatError, weights_path
from services.face.models.resnet import build_resnet
from tests.data.fit_face_box import load_photo

dlib = pytest.importorskip("dlib", reason="dlib (dlib-bin) is the reference for parity tests")

DEV_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "faces" / "dev"
TOLERANCE = 1e-4  # float32 through ~30 layers; measured differences are ~4e-7


@pytest.fixture(scope="module")
def dat() -> bytes:
    return weights_path().read_bytes()


@pytest.fixture(scope="module")
def model(dat: bytes) -> onnx.ModelProto:
    return build_resnet(dat)


@pytest.fixture(scope="module")
def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


@pytest.fixture(scope="module")
def reference():
    return dlib.face_recognition_model_v1(str(weights_path()))


def descriptors(session: ort.InferenceSession, chips: np.ndarray) -> np.ndarray:
    return session.run(["descriptor"], {"chip": chips.astype(np.float32)})[0]


def dlib_descriptors(reference, chips: np.ndarray) -> np.ndarray:
    return np.array([np.array(reference.compute_face_descriptor(chip)) for chip in chips])


def synthetic_chips() -> np.ndarray:
    """Noise (every pixel independent) and smooth images (gradients and waves), uint8 RGB."""
    rng = np.random.default_rng(6)
    noise = rng.integers(0, 256, size=(3, 150, 150, 3), dtype=np.uint8)
    y, x = np.mgrid[0:150, 0:150] / 149.0
    smooth = []
    for phase in (0.0, 1.3, 2.9):
        channels = [
            0.5 + 0.5 * np.sin(2 * np.pi * (x * (1 + c) + y * (2 - c)) + phase + c)
            for c in range(3)
        ]
        smooth.append(np.stack(channels, axis=-1) * 255)
    extremes = np.stack([np.zeros((150, 150, 3)), np.full((150, 150, 3), 255)])
    return np.concatenate([noise, np.round(smooth), extremes]).astype(np.uint8)


def test_graph_takes_raw_nhwc_chips_with_any_batch(model: onnx.ModelProto, session) -> None:
    (chip,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in chip.type.tensor_type.shape.dim]
    assert (chip.name, dims[1:]) == ("chip", [150, 150, 3])
    assert isinstance(dims[0], str)  # a named, dynamic batch dimension
    for batch in (1, 4):
        chips = np.zeros((batch, 150, 150, 3), dtype=np.uint8)
        assert descriptors(session, chips).shape == (batch, 128)


def test_synthetic_chips_match_dlib(session, reference) -> None:
    chips = synthetic_chips()
    ours = descriptors(session, chips)
    theirs = dlib_descriptors(reference, chips)
    assert np.abs(ours - theirs).max() < TOLERANCE
    # not normalised, like dlib's: a plain Euclidean metric space
    assert not np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-3)


def test_batched_chips_match_one_by_one(session) -> None:
    chips = synthetic_chips()
    together = descriptors(session, chips)
    alone = np.concatenate([descriptors(session, chip[None]) for chip in chips])
    assert np.abs(together - alone).max() < 1e-5


def dlib_face_chips(photos: list[Path]) -> np.ndarray:
    """The 150x150 chips dlib's own pipeline cuts (HOG detector, 5-point predictor)."""
    predictor_path = weights_path().parent / "shape_predictor_5_face_landmarks.dat"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(predictor_path))
    chips = []
    for path in photos:
        image = load_photo(path)
        for box in detector(image, 1):
            shape = predictor(image, box)
            chips.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
    return np.array(chips, dtype=np.uint8)


@pytest.mark.slow
@pytest.mark.skipif(not DEV_PHOTOS.is_dir(), reason=f"no face photos at {DEV_PHOTOS}")
def test_real_face_chips_match_dlib(session, reference) -> None:
    first_of_each_person = [sorted(folder.glob("*.jpg"))[0] for folder in DEV_PHOTOS.glob("p*")]
    chips = dlib_face_chips(sorted(first_of_each_person))
    assert len(chips) >= 10, "dlib should find a face in most of the first photos"
    ours = descriptors(session, chips)
    theirs = dlib_descriptors(reference, chips)
    assert np.abs(ours - theirs).max() < TOLERANCE


@pytest.mark.parametrize("keep", [0, 1, 100, 5_000, 11_000_000, -1], ids=lambda k: f"keep{k}")
def test_truncated_file_is_refused(dat: bytes, keep: int) -> None:
    with pytest.raises(FormatError):
        build_resnet(dat[:keep])


def test_extra_bytes_are_refused(dat: bytes) -> None:
    with pytest.raises(FormatError, match="left over"):
        build_resnet(dat + b"\x00")


def test_a_layer_of_another_kind_is_refused(dat: bytes) -> None:
    # "max_pool_2" where the architecture has it, renamed to a layer dlib does not have there
    at = dat.index(b"max_pool_2")
    with pytest.raises(FormatError, match="max_pool_2"):
        build_resnet(dat[:at] + b"min_pool_2" + dat[at + 10 :])


def test_a_different_geometry_is_refused(dat: bytes) -> None:
    # the max pool's window: 3 rows (one-byte integer 0x01 0x03) become 4
    at = dat.index(b"max_pool_2") + len(b"max_pool_2")
    assert dat[at : at + 2] == b"\x01\x03"
    with pytest.raises(FormatError, match="max_pool_2"):
        build_resnet(dat[:at] + b"\x01\x04" + dat[at + 2 :])
