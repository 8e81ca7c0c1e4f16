"""The relief check of face liveness (issue 14, services/face/relief.py): a print bent round a
cylinder is a ridge, whatever its axis and radius, and a face is a bump.

Chips are rendered here: a textured surface with a given depth, turned by an orthographic
camera (what the chip's alignment leaves of a turn), so the geometry is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from services.face.liveness import TrackProof
from services.face.relief import CHIP, CHIP_EYE_DISTANCE, NOSE_TIP, Reference

ED = CHIP_EYE_DISTANCE
TIP_X, TIP_Y = NOSE_TIP


def texture() -> np.ndarray:
    """Skin-like blotches: random values 5 px apart, bilinear between."""
    coarse = np.random.default_rng(14).random((CHIP // 5 + 2, CHIP // 5 + 2)) * 200 + 20
    at = np.arange(CHIP) / 5.0
    return sample(coarse, *np.meshgrid(at, at))


def sample(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    h, w = image.shape
    u, v = np.clip(u, 0, w - 1.001), np.clip(v, 0, h - 1.001)
    x0, y0 = u.astype(int), v.astype(int)
    fx, fy = u - x0, v - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    return top * (1 - fy) + (image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx) * fy


def bump(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A nose on a face: 0.5 eye distances high, falling off all round."""
    return 0.5 * ED * np.exp(-((u - TIP_X) ** 2 + (v - TIP_Y) ** 2) / (2 * (0.35 * ED) ** 2))


def ridge(radius: float, axis_deg: float):
    """A sheet bent round a cylinder of `radius` eye distances, its axis at axis_deg from
    vertical, through the nose tip."""
    r, a = radius * ED, np.radians(axis_deg)

    def depth(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        across = (u - TIP_X) * np.cos(a) + (v - TIP_Y) * np.sin(a)
        return np.sqrt(np.maximum(r * r - across * across, 0.0)) - r

    return depth


def chip(depth, yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    """What the camera sees of the surface turned by yaw (about a vertical axis) and pitch
    (about a horizontal one): each pixel's surface point, by fixed-point iteration."""
    skin = texture()
    ys, xs = np.mgrid[0:CHIP, 0:CHIP].astype(np.float64)
    ty, tp = np.radians(yaw_deg), np.radians(pitch_deg)
    u, v = xs.copy(), ys.copy()
    for _ in range(8):
        z = depth(u, v)
        u = TIP_X + (xs - TIP_X - z * np.sin(ty)) / np.cos(ty)
        v = TIP_Y + (ys - TIP_Y - z * np.sin(tp)) / np.cos(tp)
    grey = sample(skin, u, v)
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


TURNS = [(25.0, 0.0), (-30.0, 0.0), (0.0, 25.0), (0.0, -25.0), (20.0, -20.0)]


@pytest.mark.parametrize("yaw,pitch", TURNS)
def test_a_face_turned_shows_its_nose_standing_out_in_every_direction(yaw, pitch):
    smallest = Reference(chip(bump)).smallest_bulge(chip(bump, yaw, pitch))
    assert smallest >= 0.05


@pytest.mark.parametrize("radius", [0.6, 1.0, 2.0])
@pytest.mark.parametrize("axis", [0.0, 22.5, 45.0, 90.0, 120.0])
@pytest.mark.parametrize("yaw,pitch", [(40.0, 0.0), (0.0, 40.0), (30.0, 30.0)])
def test_a_print_bent_round_any_cylinder_is_a_ridge_not_a_face(radius, axis, yaw, pitch):
    bent = ridge(radius, axis)
    smallest = Reference(chip(bent)).smallest_bulge(chip(bent, yaw, pitch))
    assert smallest < 0.03


def test_the_proof_counts_a_turned_frame_only_when_its_relief_is_a_face():
    """The same landmarks, off the plane: the bent print's frames do not count."""
    front = np.array([[50.0, 50.0], [100.0, 50.0], [75.0, 75.0], [55.0, 100.0], [95.0, 100.0]])
    turned = front + np.array([[0, 0], [0, 0], [20, 0], [0, 0], [0, 0]])
    for depth, live in ((bump, True), (ridge(0.6, 0.0), False)):
        proof = TrackProof(threshold=0.25, confirmations=2, min_bulge=0.05)
        proof.add(1, front, front, chip(depth))
        for yaw in (25.0, 30.0, 35.0):
            proof.add(1, front, turned, chip(depth, yaw))
        assert (proof.live, proof.ridges) == (live, 0 if live else 3)


def test_without_chips_a_proof_that_asks_for_the_relief_never_counts_a_frame():
    front = np.array([[50.0, 50.0], [100.0, 50.0], [75.0, 75.0], [55.0, 100.0], [95.0, 100.0]])
    turned = front + np.array([[0, 0], [0, 0], [20, 0], [0, 0], [0, 0]])
    proof = TrackProof(threshold=0.25, confirmations=2, min_bulge=0.05)
    for landmarks in (front, turned, turned, turned):
        proof.add(1, front, landmarks)
    assert not proof.live
