"""Is the face's relief a bump, or a ridge? Against a print bent round a cylinder (issue 14).

A print curved round a cylinder (a can, a bottle) passes the five-point parallax check
(liveness.py): its nose does leave the plane of its eyes and mouth corners. But a bent
sheet is a developable surface: its relief is a function of ONE direction, constant along
the cylinder's lines (rulings). A face's relief is a two-dimensional bump: the nose tip
stands out from the points round it in every direction (cheeks ~30 mm, nasion and upper
lip ~15-25 mm behind it).

Between the track's first chip and the current one, small patches round the nose tip are
followed by correlation, in dlib's aligned 150x150 chip. For each of four directions
(0, 45, 90 and 135 degrees) the tip's displacement minus the mean of the two ring points
opposite each other in that direction is a second difference: any affine motion (what the
chip's alignment leaves, and the image of any flat picture under an affine camera)
cancels in it, and what remains is the tip's relief over that pair, times the turn. A
face shows it in all four directions; a bent print shows (almost) none along its rulings,
whatever the axis's direction (within 22.5 degrees of a sampled one: at worst 15 % of the
relief across the ridge remains). The cue is the smallest of the four, in eye distances,
measured along the motion's own direction (the largest second difference's).

Not covered: a print shaped over a face-like mould (a mask: a 2-D relief like a face) and
doubly curved or crumpled prints that happen to peak at the nose; no 2-D cue can tell a
good mask from a face. Cones (rulings that meet) keep part of the cue only.
"""

from __future__ import annotations

import numpy as np

CHIP = 150
CHIP_EYE_DISTANCE = 52.5  # px between the eye centres in dlib's chip (padding 0.25)
NOSE_TIP = (74.0, 80.0)  # just above dlib's nose base (74, 88) in the chip
RING = 0.4  # eye distances from the tip to the ring points: cheeks, bridge, upper lip
HALF = 6  # patches are 13x13 chip px
SEARCH = 12  # px searched each way (0.23 eye distances)
FFT_SIZE = 40  # >= the search area's side, 2(HALF + SEARCH) + 1 = 37; a fast size
THIRDS = np.full(3, 1 / 3, np.float32)
DIRECTIONS = np.radians([0.0, 45.0, 90.0, 135.0])


def _points() -> np.ndarray:
    """The tip, then the ring points in opposite pairs (+, -) per direction."""
    r = RING * CHIP_EYE_DISTANCE
    tip = np.array(NOSE_TIP)
    out = [tip]
    for a in DIRECTIONS:
        step = r * np.array([np.cos(a), np.sin(a)])
        out += [tip + step, tip - step]
    return np.rint(np.array(out)).astype(np.intp)


POINTS = _points()
_EDGE = int(POINTS.min()) - HALF - SEARCH
REACH = slice(_EDGE, int(POINTS.max()) + HALF + SEARCH + 1)  # rows and columns looked at


def grey(chip: np.ndarray) -> np.ndarray:
    """The chip in grey float32, only as far as the patches and their search reach."""
    c = np.asarray(chip)[REACH, REACH]
    return c @ THIRDS if c.ndim == 3 else c.astype(np.float32)


class Reference:
    """The patches round the nose tip of a track's first chip, ready to be found in later
    chips of the track (their spectra are computed once)."""

    def __init__(self, first_chip: np.ndarray) -> None:
        first = grey(first_chip)
        offs = np.arange(-HALF, HALF + 1)
        ys, xs = POINTS[:, 1] - _EDGE, POINTS[:, 0] - _EDGE  # in grey()'s cut
        templates = first[(ys[:, None] + offs)[:, :, None], (xs[:, None] + offs)[:, None, :]]
        templates = templates - templates.mean(axis=(1, 2), keepdims=True)
        self.norms = np.sqrt(np.maximum((templates**2).sum(axis=(1, 2)), 1e-6))
        self.spectra = np.conj(np.fft.rfft2(templates, (FFT_SIZE, FFT_SIZE)))

    def displacements(self, chip: np.ndarray) -> np.ndarray:
        """(len(POINTS), 2) px each patch moved to in `chip` (normalised cross-correlation
        over +-SEARCH px, refined to sub-pixel by a parabola). Both chips are aligned on
        the face, so what is left to find is small."""
        now = grey(chip)
        side, reach, span = 2 * HALF + 1, HALF + SEARCH, 2 * SEARCH + 1
        wide = np.arange(-reach, reach + 1)
        ys, xs = POINTS[:, 1] - _EDGE, POINTS[:, 0] - _EDGE
        areas = now[(ys[:, None] + wide)[:, :, None], (xs[:, None] + wide)[:, None, :]]
        size = (FFT_SIZE, FFT_SIZE)
        dot = np.fft.irfft2(np.fft.rfft2(areas, size) * self.spectra, size)[:, :span, :span]
        sums = _box_sums(areas, side)
        energy = np.maximum(_box_sums(areas * areas, side) - sums * sums / side**2, 1e-6)
        score = dot / np.sqrt(energy) / self.norms[:, None, None]
        iy, ix = np.divmod(score.reshape(len(POINTS), -1).argmax(axis=1), span)
        out = np.full((len(POINTS), 2), -float(SEARCH))
        for p in range(len(POINTS)):
            out[p, 0] += ix[p] + _vertex(score[p, iy[p], :], ix[p])
            out[p, 1] += iy[p] + _vertex(score[p, :, ix[p]], iy[p])
        return out

    def smallest_bulge(self, chip: np.ndarray) -> float:
        """The least of the tip's four bulges since the first chip, in eye distances: a
        face turned 15-30 degrees shows 0.05-0.15, a print bent round a cylinder ~0."""
        return float(bulges(self.displacements(chip)).min())


def bulges(displaced: np.ndarray) -> np.ndarray:
    """The tip's relief over each opposite pair, in eye distances, along the motion's
    direction (that of the pairs' second differences summed): (4,)."""
    second = displaced[0] - (displaced[1::2] + displaced[2::2]) / 2  # (4, 2)
    total = second.sum(axis=0)
    along = total / (float(np.linalg.norm(total)) or 1.0)
    return np.asarray(second @ along / CHIP_EYE_DISTANCE)


def _box_sums(a: np.ndarray, side: int) -> np.ndarray:
    """Sums over every side x side window of each (n, h, w) image, by integral images."""
    c = np.zeros((a.shape[0], a.shape[1] + 1, a.shape[2] + 1), np.float64)
    c[:, 1:, 1:] = a.cumsum(axis=1).cumsum(axis=2)
    return c[:, side:, side:] - c[:, :-side, side:] - c[:, side:, :-side] + c[:, :-side, :-side]


def _vertex(line: np.ndarray, i: int) -> float:
    """Sub-pixel offset of a correlation peak at i, from the parabola through 3 values."""
    if i == 0 or i == len(line) - 1:
        return 0.0
    a, b, c = line[i - 1], line[i], line[i + 1]
    bend = a - 2 * b + c
    return float(0.5 * (a - c) / bend) if bend < -1e-9 else 0.0
