"""A followed face is looked for where it was (issue 14, speed): FaceFinder searches the
whole frame only when it must, and still takes up a nearer face elsewhere and a face that
moved away. With the face service's own models; the photos come from ../shared."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hw.camera import FRAME_SIZE, doorstep, load_photo
from services.face.pipeline import FULL_FRAME_EVERY, Pipeline, largest
from services.face.track import iou
from tests.conftest import SHARED

FACES = SHARED / "faces"
needs_faces = pytest.mark.skipif(
    not (FACES / "dev").is_dir(), reason=f"no face photos at {FACES} (../shared)"
)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    from services.face.models import build

    return Pipeline(build.ensure(tmp_path_factory.mktemp("models")), min_face=60)


def scene(*placed: tuple[np.ndarray, int, int, int]) -> np.ndarray:
    """The doorstep with photos pasted at (left, top), each scaled to a height."""
    frame = doorstep().copy()
    for photo, left, top, height in placed:
        width = round(photo.shape[1] * height / photo.shape[0])
        small = np.asarray(Image.fromarray(photo).resize((width, height), Image.BILINEAR))
        frame[top : top + height, left : left + width] = small
    assert frame.shape[:2] == (FRAME_SIZE[1], FRAME_SIZE[0])
    return frame


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [
        load_photo(FACES / "dev" / "p01" / "1.jpg"),
        load_photo(FACES / "dev" / "p02" / "1.jpg"),
    ]


@needs_faces
def test_a_face_that_stays_is_searched_for_in_the_whole_frame_every_tenth_frame(pipeline, photos):
    find = pipeline.finder()
    frames = [scene((photos[0], 40 + k, 60, 200)) for k in range(2 * FULL_FRAME_EVERY)]
    found = [largest(find(f)) for f in frames]
    assert all(f is not None for f in found)
    assert find.full_frames == 2  # the first frame and the tenth after it
    # where it was, the face comes out where the whole frame's search puts it
    whole = [largest(pipeline.detect(f)) for f in frames]
    assert min(iou(a.box, b.box) for a, b in zip(found, whole)) > 0.7


@needs_faces
def test_a_nearer_face_elsewhere_is_taken_up_within_a_tenth_of_the_frames(pipeline, photos):
    find = pipeline.finder()
    far = (photos[0], 20, 120, 160)
    for _ in range(3):
        first = largest(find(scene(far)))
    near = (photos[1], 330, 40, 300)
    later = [largest(find(scene(far, near))) for _ in range(FULL_FRAME_EVERY)]
    assert first is not None and first.box[0] < 300
    assert later[-1] is not None and later[-1].box[0] > 300  # the nearer face, on the right


@needs_faces
def test_a_face_that_moved_away_is_found_in_the_same_frame(pipeline, photos):
    find = pipeline.finder()
    assert largest(find(scene((photos[0], 20, 60, 200)))) is not None
    moved = largest(find(scene((photos[0], 400, 200, 200))))
    assert moved is not None and moved.box[0] > 380
    assert find.full_frames == 2  # where it was, nothing: the whole frame was searched


def test_no_face_means_the_whole_frame_next_time(pipeline):
    find = pipeline.finder()
    for _ in range(3):
        assert find(doorstep().copy()) == []
    assert find.full_frames == 3 and find.near is None
