"""Presentation attacks for the simulated camera (issue 14): what a lock's camera sees when
someone holds up pictures of an enrolled person, frame by frame at the camera's rate.

- photos: several photos of the person, each held up by a hand that drifts and tilts it
  smoothly, switched one for the next; the attacker lines each up on where the last one's
  face was (eyes on eyes, same size), the hardest way to switch.
- bent: one print curved round a cylinder (a bottle, a can), turned to and fro about the
  cylinder's axis: not flat, so its landmarks do not move by one homography.
- screen: photos shown one after another on a display: the display's gamma and black
  level, its colour cast, and moire between its pixel grid and the camera's, held by a
  drifting hand.

Each attack is a pure function of its photos, the face each shows (from `locate`), and a
seed, so a measurement can be repeated exactly. Frames are 640x480 RGB over the
simulated doorstep.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np
from PIL import Image

from hw.camera import FRAME_SIZE, doorstep
from proto.biometric import FACE_ATTACKS

ATTACKS = FACE_ATTACKS
BENT_FRAMES = 60  # two seconds of a turning print
FACE_EYES = 70.0  # px between the eyes of the first face on the frame (about 45 cm away)

# (eye midpoint (x, y), eye distance) of the face a photo shows, or None
Located = tuple[tuple[float, float], float] | None
Locate = Callable[[np.ndarray], Located]


class AttackError(ValueError):
    pass


def locator(detect: Callable[[np.ndarray], list[Any]]) -> Locate:
    """Locate by a face detector (services/face/detect.py's Face: box, landmarks)."""

    def locate(rgb: np.ndarray) -> Located:
        faces = detect(rgb)
        if not faces:
            return None
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        eyes = np.asarray(face.landmarks[:2], np.float64)
        centre = (float(eyes[:, 0].mean()), float(eyes[:, 1].mean()))
        return centre, float(np.linalg.norm(eyes[1] - eyes[0]))

    return locate


def rng_for(seed: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16))


@dataclass(frozen=True)
class Hand:
    """A hand holding a picture: a smooth drift, roll and tilt, one value per frame."""

    dx: np.ndarray
    dy: np.ndarray
    roll: np.ndarray  # radians
    tilt: np.ndarray  # perspective foreshortening across the picture, -0.1..0.1

    @classmethod
    def moving(cls, frames: int, rng: np.random.Generator) -> Hand:
        def walk(step: float) -> np.ndarray:
            return np.cumsum(rng.normal(0.0, step, frames)) * np.hanning(frames + 2)[1:-1]

        return cls(walk(1.5), walk(1.5), walk(0.004), walk(0.004))


def placement(src_eyes: tuple[float, float], src_scale: float, dst_eyes: tuple[float, float],
              hand: Hand, k: int) -> np.ndarray:  # fmt: skip
    """The 3x3 map from a picture's pixels to the frame's: scaled about its eyes onto
    dst_eyes, then moved by the hand at frame k."""
    c, s = np.cos(hand.roll[k]), np.sin(hand.roll[k])
    move = np.array([[1, 0, -src_eyes[0]], [0, 1, -src_eyes[1]], [0, 0, 1]], float)
    scale = np.diag([src_scale, src_scale, 1.0])
    turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, 1, 0], [hand.tilt[k] / 400.0, 0, 1]])
    back = np.array([[1, 0, dst_eyes[0] + hand.dx[k]], [0, 1, dst_eyes[1] + hand.dy[k]],
                     [0, 0, 1]])  # fmt: skip
    return back @ tilt @ turn @ scale @ move


def _frame_grid() -> tuple[np.ndarray, np.ndarray]:
    w, h = FRAME_SIZE
    return np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))


def _inverse_map(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every frame pixel, the picture pixel the map h puts there."""
    xs, ys = _frame_grid()
    inv = np.linalg.inv(h)
    w = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
    u = (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / w
    v = (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / w
    return u, v


def composite(picture: np.ndarray, u: np.ndarray, v: np.ndarray,
              valid: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The doorstep with the picture sampled (bilinear) where (u, v) falls inside it."""
    ph, pw = picture.shape[:2]
    inside = (u >= 0) & (v >= 0) & (u <= pw - 1) & (v <= ph - 1)
    if valid is not None:
        inside &= valid
    out = doorstep().astype(np.float32)
    uu, vv = u[inside], v[inside]
    x0 = np.minimum(uu.astype(np.intp), pw - 2)
    y0 = np.minimum(vv.astype(np.intp), ph - 2)
    fx, fy = (uu - x0)[:, None], (vv - y0)[:, None]
    p = picture.astype(np.float32)
    top = p[y0, x0] * (1 - fx) + p[y0, x0 + 1] * fx
    bottom = p[y0 + 1, x0] * (1 - fx) + p[y0 + 1, x0 + 1] * fx
    out[inside] = top * (1 - fy) + bottom * fy
    return np.clip(out, 0, 255).astype(np.uint8)


def _located(photos: list[np.ndarray], locate: Locate) -> list[tuple[tuple[float, float], float]]:
    found = []
    for i, photo in enumerate(photos):
        where = locate(photo)
        if where is None:
            raise AttackError(f"no face in photo {i + 1}: an attacker would not show it")
        found.append(where)
    return found


def photos_attack(photos: list[np.ndarray], locate: Locate, frames_each: int,
                  seed: str) -> list[np.ndarray]:  # fmt: skip
    """Each photo held up for frames_each frames, switched for the next, lined up on it."""
    rng = rng_for(seed)
    where = _located(photos, locate)
    w, h = FRAME_SIZE
    target = (w / 2 + rng.uniform(-40, 40), h * 0.42 + rng.uniform(-20, 20))
    eyes = FACE_EYES * rng.uniform(0.85, 1.2)
    out = []
    for photo, (centre, distance) in zip(photos, where):
        hand = Hand.moving(frames_each, rng)
        picture = Image.fromarray(photo).convert("RGBA")
        for k in range(frames_each):
            out.append(warped(picture, placement(centre, eyes / distance, target, hand, k)))
    return out


def warped(picture: Image.Image, h: np.ndarray) -> np.ndarray:
    """The doorstep with a flat picture on it where the map h puts it (PIL's perspective
    transform takes the inverse map, frame to picture; alpha marks where it falls)."""
    inverse = np.linalg.inv(h)
    inverse = inverse / inverse[2, 2]
    moved = picture.transform(FRAME_SIZE, Image.Transform.PERSPECTIVE,
                              tuple(inverse.ravel()[:8]), Image.Resampling.BILINEAR)  # fmt: skip
    return np.asarray(Image.alpha_composite(_doorstep_rgba(), moved).convert("RGB"))


@lru_cache(maxsize=1)
def _doorstep_rgba() -> Image.Image:
    return Image.fromarray(doorstep()).convert("RGBA")


def bent_attack(photo: np.ndarray, locate: Locate, frames: int, seed: str,
                fps: float = 30.0, axis: str = "vertical") -> list[np.ndarray]:  # fmt: skip
    """One print curved round a vertical cylinder through its face, turned to and fro.
    axis="horizontal": round a horizontal cylinder through the nose (half an eye distance
    below the eyes), nodded to and fro; "horizontal-turned": that print turned left and
    right about a vertical axis instead (its nose then leaves the plane of its eyes and
    mouth, as on a vertical cylinder). The same in every other respect.

    The cylinder's radius is 0.6-2 eye distances of the printed face (a tight can to a
    wide bottle), the turn +-10-40 degrees over 1-2.5 s; the hand drifts as well. Seen by
    a distant camera (orthographic about the cylinder), a print point at arc length s from
    the axis is at R sin(s/R + yaw) across, so a frame point x across shows the print
    at s = R (asin(x/R) - yaw), where |x| < R; elsewhere the doorstep. No shading: a real
    bent print darkens towards its edges as it turns from the light (a cue not used)."""
    if axis not in ("vertical", "horizontal", "horizontal-turned"):
        raise AttackError(f"a cylinder's axis is vertical or horizontal, not {axis!r}")
    rng = rng_for(seed)
    ((cx, cy), distance) = _located([photo], locate)[0]
    radius = distance * rng.uniform(0.6, 2.0)
    amplitude = np.radians(rng.uniform(10, 40))
    period = rng.uniform(1.0, 2.5)
    phase = rng.uniform(0, 2 * np.pi)
    w, h = FRAME_SIZE
    target = (w / 2 + rng.uniform(-40, 40), h * 0.42 + rng.uniform(-20, 20))
    scale = FACE_EYES * rng.uniform(0.85, 1.2) / distance
    hand = Hand.moving(frames, rng)
    out = []
    for k in range(frames):
        yaw = amplitude * np.sin(2 * np.pi * k / (fps * period) + phase)
        u, v = _inverse_map(placement((cx, cy), scale, target, hand, k))
        if axis == "vertical":
            across = (u - cx) / radius
            arc = radius * (np.arcsin(np.clip(across, -1, 1)) - yaw)
            out.append(composite(photo, cx + arc, v, np.abs(across) < 1.0))
        elif axis == "horizontal":
            crest = cy + 0.5 * distance  # the nose: it stands out, as on a face
            across = (v - crest) / radius
            arc = radius * (np.arcsin(np.clip(across, -1, 1)) - yaw)
            out.append(composite(photo, u, crest + arc, np.abs(across) < 1.0))
        else:  # a frame point (x, y) shows the print at arc s = R asin(y/R) down, and
            # across where x = u cos(yaw) + depth(s) sin(yaw) (depth 0 on the crest)
            crest = cy + 0.5 * distance
            across = (v - crest) / radius
            arc = radius * np.arcsin(np.clip(across, -1, 1))
            depth = radius * (np.sqrt(np.clip(1 - across**2, 0, 1)) - 1)
            turned = cx + (u - cx - depth * np.sin(yaw)) / np.cos(yaw)
            out.append(composite(photo, turned, crest + arc, np.abs(across) < 1.0))
    return out


def screen_attack(photos: list[np.ndarray], locate: Locate, frames_each: int,
                  seed: str) -> list[np.ndarray]:  # fmt: skip
    """The photos attack shown on a display: gamma, black level, colour cast, and moire."""
    rng = rng_for(seed)
    gamma = rng.uniform(1.3, 1.9)
    black = rng.uniform(10, 35)
    cast = np.array([rng.uniform(0.88, 1.0), rng.uniform(0.92, 1.0), 1.0])
    period = rng.uniform(3.0, 9.0)  # px of the beat between the two pixel grids
    angle = rng.uniform(0, np.pi)
    depth = rng.uniform(0.06, 0.15)
    shown = []
    for photo in photos:
        level = 255.0 * (photo.astype(np.float32) / 255.0) ** gamma
        level = black + level * (255.0 - black) / 255.0
        ys, xs = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]].astype(np.float32)
        beat = np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period)
        moire = 1.0 + depth * beat[:, :, None]
        shown.append(np.clip(level * cast * moire, 0, 255).astype(np.uint8))
    return photos_attack(shown, lambda p: locate(photos[_index(shown, p)]), frames_each, seed)


def _index(items: list[np.ndarray], item: np.ndarray) -> int:
    return next(i for i, x in enumerate(items) if x is item)
