"""The face service's pure parts: poses, parallax liveness, the gallery, the simulated camera."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from hw.camera import CameraError, SimCamera, held, load_photo
from services.face import gallery as g
from services.face.liveness import Parallax, homography, parallax
from services.face.pose import pose_of, yaw_pitch

# A frontal face's five points (MTCNN's order): eyes, nose tip, mouth corners
FRONTAL = np.array([[100, 100], [160, 100], [130, 135], [105, 165], [155, 165]], float)
NOSE_DEPTH = 0.55  # eye distances the nose tip stands out of the eyes-mouth plane


def head(yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    """The five points of a 3-D head turned by yaw and pitch, seen by a distant camera."""
    centre = FRONTAL.mean(axis=0)
    eye = np.linalg.norm(FRONTAL[1] - FRONTAL[0])
    pts = np.hstack([FRONTAL - centre, np.zeros((5, 1))])
    pts[2, 2] = -NOSE_DEPTH * eye  # towards the camera
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    turn = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return (pts @ (tilt @ turn).T)[:, :2] + centre


def warp(points: np.ndarray, h: np.ndarray) -> np.ndarray:
    ph = np.hstack([points, np.ones((len(points), 1))]) @ h.T
    return ph[:, :2] / ph[:, 2:]


def test_l15_poses_from_the_landmarks():
    assert pose_of(head()) == "straight"
    yaw, pitch = yaw_pitch(FRONTAL)
    assert abs(yaw) < 1e-9 and 0.45 < pitch < 0.7
    turned = head(yaw_deg=25)  # its nose tip towards the image's left
    assert turned[2, 0] < FRONTAL[2, 0] and pose_of(turned) == "left"
    assert pose_of(head(yaw_deg=-25)) == "right"
    raised = head(pitch_deg=-20)  # the nose tip nearer the eyes
    assert yaw_pitch(raised)[1] < pitch and pose_of(raised) == "up"
    assert pose_of(head(pitch_deg=20)) == "down"


@given(
    st.lists(st.floats(-0.1, 0.1), min_size=8, max_size=8),
    st.floats(0.5, 2.0),
)
def test_a_flat_picture_shows_no_parallax_however_it_is_held(corners, scale):
    """A photo or a screen moved, tilted and scaled: the nose stays on the plane."""
    src = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float) * 300
    dst = src * scale + np.array(corners).reshape(4, 2) * 300
    h = homography(src, dst)
    moved = warp(FRONTAL, h)
    assert parallax(FRONTAL, moved) < 1e-6


@pytest.mark.parametrize("yaw", [8, 12, 20])
def test_a_turning_head_shows_parallax(yaw):
    assert parallax(head(), head(yaw_deg=yaw)) > 0.06
    assert parallax(head(), head(yaw_deg=yaw / 4)) < parallax(head(), head(yaw_deg=yaw))


def test_liveness_needs_enough_pairs_of_frames():
    tracker = Parallax(threshold=0.1, confirmations=2, frames=[])
    assert not tracker.add(head())  # the reference
    assert not tracker.add(head())  # the same view again: nothing
    assert not tracker.add(head(yaw_deg=20))  # one frame off the plane: not yet
    assert tracker.frames_off_plane() == 1 and tracker.add(head(yaw_deg=-20))
    flat = Parallax(threshold=0.1, confirmations=2, frames=[])
    for k in range(6):
        h = np.array(
            [[1 + 0.02 * k, 0.01 * k, 3 * k], [0.0, 1 - 0.01 * k, 2 * k], [1e-5 * k, 0, 1]]
        )
        assert not flat.add(warp(FRONTAL, h))


def test_gallery_matches_the_nearest_names_its_slot_and_forgets():
    rng = np.random.default_rng(1)
    people = {f"{i:03d}": rng.normal(0, 0.1, 128).astype(np.float32) for i in range(1, 6)}
    gallery = g.Gallery()
    assert gallery.nearest(people["001"]) == (None, 0, float("inf"))
    for i, (person, d) in enumerate(people.items()):
        gallery.add(person, 1 + i % 3, g.from_template(g.to_template(d)))
    probe = people["003"] + rng.normal(0, 0.01, 128).astype(np.float32)
    person, slot, distance = gallery.nearest(probe)
    assert person == "003" and slot == 3 and distance < 0.2  # the slot policy checks (issue 11)
    gallery.forget("003")
    assert gallery.nearest(probe).person != "003" and len(gallery) == 4
    assert sorted(zip(gallery.people, gallery.slots)) == [("001", 1), ("002", 2), ("004", 1),
                                                          ("005", 2)]  # fmt: skip


@pytest.mark.parametrize(
    "bad", [b"", b"\0" * 511, np.full(128, np.nan, "<f4").tobytes()], ids=["empty", "short", "nan"]
)
def test_a_bad_face_template_is_refused(bad):
    with pytest.raises(g.TemplateError):
        g.from_template(bad)


def test_the_simulated_camera_reads_upright_photos_and_holds_one_up(tmp_path):
    img = np.zeros((40, 30, 3), np.uint8)
    img[:10] = 255  # white on top
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer must turn it 90 degrees
    Image.fromarray(img).rotate(90, expand=True).save(path, exif=exif)
    upright = load_photo(path)
    assert upright.shape[:2] == (40, 30) and upright[:5].mean() > 200
    frames = held(upright, 4, "seed")
    assert len(frames) == 4 and all(f.shape == upright.shape for f in frames)
    assert not np.array_equal(frames[0], frames[1])  # the hand moves
    camera = SimCamera(hold_frames=4)
    assert camera.show([str(path)], [""], hold=True) == 4
    frame = camera.read(0.1)
    assert frame.ir is not None and not frame.ir.any()  # a dark IR frame
    with pytest.raises(CameraError):
        camera.show([str(tmp_path / "missing.jpg")], [], hold=True)


def test_an_insightface_style_embedder_can_replace_dlibs(tmp_path):
    """face.embedder = a model's path: 112x112 crops aligned on InsightFace's points go
    in, normalised embeddings of the model's own size come out. A small stand-in model is
    built here (no such model ships): average colour per 8x8 block, projected to 32."""
    import onnx
    from onnx import TensorProto, helper

    from services.face.arcface import REFERENCE, ArcFaceEmbedder, aligned, similarity
    from services.face.detect import Face

    rng = np.random.default_rng(3)
    weights = rng.normal(size=(3 * 14 * 14, 32)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("MatMul", ["f", "w"], ["y"]),
        ],
        "stand-in",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 32])],
        [helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "embedder.onnx"
    onnx.save(model, path)

    m = similarity(REFERENCE * 2 + 5, REFERENCE)  # twice as big, shifted: undone exactly
    assert np.allclose(m, [[0.5, 0, -2.5], [0, 0.5, -2.5]])
    embedder = ArcFaceEmbedder(str(path))
    assert embedder.dims == 32
    ys, xs = np.mgrid[0:300, 0:300]
    frame = np.stack([xs * 255 // 299, ys * 255 // 299, xs * 0], axis=2).astype(np.uint8)
    points = (REFERENCE * 2 + 20).astype(np.float32)
    face = Face((20.0, 20.0, 250.0, 250.0), 0.99, points)
    crop = aligned(frame, points)
    assert crop.shape == (112, 112, 3)
    # the crop's centre is the frame's (20 + 2 * 56): same place, half the scale
    assert abs(int(crop[56, 56, 0]) - int(frame[132, 132, 0])) <= 2
    assert abs(int(crop[56, 56, 1]) - int(frame[132, 132, 1])) <= 2
    e = embedder(frame, [face, face])
    assert e.shape == (2, 32) and np.allclose(np.linalg.norm(e, axis=1), 1)
    gallery = g.Gallery(embedder.dims)
    gallery.add("001", 1, e[0])
    assert gallery.nearest(e[1]) == ("001", 1, pytest.approx(0.0, abs=1e-6))
    with pytest.raises(g.TemplateError, match="enrolled again"):
        gallery.add("002", 1, np.zeros(128, np.float32))  # a dlib template among these


def test_an_absent_camera_is_a_clear_error_not_a_crash():
    from hw.camera import open_camera

    assert open_camera("none", 4) is None
    with pytest.raises(CameraError, match="one of sim, none"):
        open_camera("webcam", 4)
    for kind in ("picamera2", "v4l2:/dev/video9"):  # neither package here, or no such device
        with pytest.raises(CameraError):
            open_camera(kind, 4)
