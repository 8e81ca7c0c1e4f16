"""Issue 14 items 3 and 5, the parts: a template per pose, stored data from before it,
the best match of a track, and enrolment poses measured from the straight capture."""

from __future__ import annotations

import numpy as np
import pytest

from services.face import gallery as g
from services.face.enrolment import Enrolment, still
from services.face.pose import DELTA, shows, yaw_pitch

FRONTAL = np.array([[100, 100], [160, 100], [130, 135], [105, 165], [155, 165]], float)


def descriptors(seed: int, rows: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, (rows, 128)).astype(np.float32)


def test_a_template_set_keeps_each_pose_and_round_trips():
    poses = descriptors(1, 5)
    stored = g.to_template(poses)
    assert len(stored) == g.HEADER.size + 5 * 128 * 4
    assert np.array_equal(g.from_template(stored), poses)


def test_a_template_stored_before_issue_14_is_read_as_a_set_of_one():
    """Policy's sealed store keeps what older versions wrote: one bare averaged descriptor.
    It still matches (no rewrite of the store), as one row."""
    average = descriptors(2, 1)[0]
    legacy = average.astype("<f4").tobytes()  # what to_template wrote before issue 14
    rows = g.from_template(legacy)
    assert rows.shape == (1, 128) and np.array_equal(rows[0], average)
    gallery = g.Gallery()
    gallery.add("001", 1, rows)
    assert gallery.nearest(average + 0.001) == ("001", 1, pytest.approx(0.0113, abs=1e-3))


@pytest.mark.parametrize(
    "bad",
    [
        g.HEADER.pack(g.MAGIC, 2, 128) + b"\0" * (4 * 128),  # says two rows, holds one
        g.HEADER.pack(g.MAGIC, 0, 128),
        g.HEADER.pack(g.MAGIC, g.MAX_POSES + 1, 4) + b"\0" * (16 * (g.MAX_POSES + 1)),
        g.HEADER.pack(g.MAGIC, 1, 2) + np.array([1.0, np.inf], "<f4").tobytes(),
    ],
    ids=["short", "no-rows", "too-many", "inf"],
)
def test_a_bad_template_set_is_refused(bad):
    with pytest.raises(g.TemplateError):
        g.from_template(bad)


def test_too_many_poses_are_not_stored():
    with pytest.raises(g.TemplateError):
        g.to_template(descriptors(3, g.MAX_POSES + 1))


def test_each_pose_is_matched_on_its_own_not_their_average():
    """A probe near one pose matches that pose, though far from the poses' average."""
    poses = descriptors(4, 5)
    gallery = g.Gallery()
    gallery.add("001", 2, poses)
    gallery.add("002", 1, descriptors(5, 5))
    probe = poses[3] + 0.005
    assert np.linalg.norm(poses.mean(axis=0) - probe) > 0.5
    assert gallery.nearest(probe) == ("001", 2, pytest.approx(0.0566, abs=1e-3))
    assert len(gallery) == 2  # faces enrolled, not rows
    gallery.forget("001")
    assert set(gallery.people) == {"002"} and gallery.matrix.shape == (5, 128)


def test_a_track_is_decided_by_its_best_frame():
    poses = descriptors(6, 2)
    gallery = g.Gallery()
    gallery.add("001", 1, poses)
    frames = [poses[0] + 0.2, poses[1] + 0.01, poses[0] + 0.1]
    best = gallery.best_of_track(frames)
    assert (best.person, best.distance) == ("001", pytest.approx(0.1131, abs=1e-3))
    assert gallery.best_of_track([]) == g.NOBODY


def turned(dyaw: float, dpitch: float) -> np.ndarray:
    """FRONTAL with its nose moved: yaw and pitch change by about dyaw and dpitch."""
    out = FRONTAL.copy()
    out[2] += [dyaw * 60, dpitch * 65]
    return out


@pytest.mark.parametrize(
    "pose, dyaw, dpitch",
    [("left", -1, 0), ("right", 1, 0), ("up", 0, -1), ("down", 0, 1), ("left", -1, -0.8)],
)
def test_l15_a_later_pose_is_measured_from_the_straight_capture(pose, dyaw, dpitch):
    straight = yaw_pitch(FRONTAL)
    assert not shows(turned(0.6 * DELTA * dyaw, 0.6 * DELTA * dpitch), pose, straight)
    assert shows(turned(1.2 * DELTA * dyaw, 1.2 * DELTA * dpitch), pose, straight)
    assert not shows(turned(-1.2 * DELTA * dyaw, -1.2 * DELTA * dpitch), pose, straight)


def test_l15_every_pose_must_be_the_person_of_the_first_capture():
    """Issue 14 item 5: another face at a later pose is refused (said once per face) and
    the pose stays asked; the first person's face then takes it."""
    me, other = descriptors(7, 2)
    other = me + (other - me) * (0.8 / np.linalg.norm(other - me))  # 0.8 away
    enrolment = Enrolment(["straight", "up"], threshold=0.5)
    assert enrolment.shows_asked(FRONTAL) and not enrolment.shows_asked(turned(0, -0.1))
    assert enrolment.offer(me, FRONTAL) == "taken" and enrolment.asked == "up"
    assert enrolment.shows_asked(turned(0, -0.1)) and not enrolment.shows_asked(FRONTAL)
    assert enrolment.offer(other, turned(0, -0.1)) == "not-same"
    assert enrolment.offer(other + 0.001, turned(0, -0.1)) == "told"
    assert not enrolment.done and enrolment.asked == "up"
    assert enrolment.offer(me + 0.02, turned(0, -0.1)) == "taken"
    assert enrolment.done and enrolment.descriptors().shape == (2, 128)


def test_a_still_face_is_one_whose_nose_stays_put():
    assert still(FRONTAL, FRONTAL + [0.2 * 60, 0]) and not still(FRONTAL, FRONTAL + [0.4 * 60, 0])
