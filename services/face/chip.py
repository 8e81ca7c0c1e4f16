"""dlib's face chip, cut in numpy: the 150x150 image its face ResNet was trained on.

Follows dlib's get_face_chip_details and extract_image_chips (interpolation.h) exactly,
because each shortcut moves the embedding by about 0.07 L2:
- the chip rectangle is centred with dlib's width - 1 geometry (centered_drect);
- when the rectangle is over twice the chip size it is first shrunk with dlib's
  pyramid_down<2> (a [1 4 6 4 1] filter, integer sums divided by 256), as many times as
  dlib would, with dlib's own (slightly off-centre) idea of where a point lands;
- pixels are bilinear in float64 and TRUNCATED to uint8, and a pixel whose 2x2 neighbourhood
  is not entirely inside the image is black.

box_from_mtcnn builds, from MTCNN's five landmarks, the box dlib's frontal face detector
would have drawn, so dlib's 5-point shape predictor can run inside it.
"""

from __future__ import annotations

import numpy as np

from services.face.models.shape_predictor import Box, similarity_matrix

# dlib's 5-point mean face in the unit square, in its predictor's order: outer and inner
# corner of the eye on the image's right, outer and inner corner of the other eye, base of
# the nose (get_face_chip_details, interpolation.h).
MEAN_FACE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


# The box dlib's frontal face detector draws, in the frame of MTCNN's five points: origin
# halfway between the eye midpoint and the mouth midpoint, "down" the vector from the eye
# midpoint to the mouth midpoint, "across" that vector turned a quarter. Least-squares fits
# over the 67 faces dlib finds in ../shared/faces/dev, with dlib's 68-point landmarks
# standing in for MTCNN's: tests/data/fit_face_box.py. dlib's own boxes come in pyramid
# steps of 1.2x, so no fit gets their size closer than about +-9%; the shape predictor was
# trained on boxes with that same jitter. Fitted leaving each person out, the route's
# embeddings stay as close to dlib's (median L2 0.036) as with the all-in fit (0.030).
CENTRE_ALONG_DOWN = -0.0291
CENTRE_ALONG_ACROSS = 0.0367
SIZE_PER_EYE_TO_MOUTH = 1.5338
SIZE_PER_EYE_TO_EYE = 0.7954


def box_from_mtcnn(points5: np.ndarray) -> Box:
    """A square box (left, top, right, bottom) like dlib's frontal face detector's, from
    MTCNN's five points in MTCNN's order (eye centres, nose tip, mouth corners).

    Only the eyes and the mouth corners are used: they fix the face's frame.
    """
    points = np.asarray(points5, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected 5 (x, y) points, got shape {points.shape}")
    eyes = (points[0] + points[1]) / 2
    mouth = (points[3] + points[4]) / 2
    down = mouth - eyes
    across = np.array([-down[1], down[0]])
    centre = (eyes + mouth) / 2 + CENTRE_ALONG_DOWN * down + CENTRE_ALONG_ACROSS * across
    eye_to_eye = float(np.linalg.norm(points[1] - points[0]))
    size = SIZE_PER_EYE_TO_MOUTH * float(np.linalg.norm(down)) + SIZE_PER_EYE_TO_EYE * eye_to_eye
    left, top = (int(v) for v in np.floor(centre - size / 2 + 0.5))
    side = int(np.floor(size + 0.5))  # right - left, as the constants were fitted
    return left, top, left + side, top + side


def face_chip(
    rgb: np.ndarray, points5: np.ndarray, size: int = 150, padding: float = 0.25
) -> np.ndarray:
    """dlib.get_face_chip(rgb, shape, size, padding) for a 5-point shape in dlib's order."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {rgb.dtype} {rgb.shape}")
    points = np.asarray(points5, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected 5 (x, y) points, got shape {points.shape}")
    # dlib's Python binding takes padding as a C float: 0.2 arrives as 0.20000000298...
    padding = float(np.float32(padding))
    template = (padding + MEAN_FACE_5) / (2 * padding + 1) * size
    rect, angle = chip_rectangle(template, points, size)
    return extract_chip(rgb, rect, angle, size)


def chip_rectangle(template: np.ndarray, points: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """dlib's chip_details: the (rotated) rectangle in the image the chip is cut from.

    Returns (left, top, right, bottom) as floats, before rotation about its centre, and the
    rotation angle.
    """
    m = similarity_matrix(template, points)
    translation = points.mean(axis=0) - m @ template.mean(axis=0)
    scale_x, scale_y = m[0, 0], m[1, 0]  # where the chip's x axis goes
    angle = float(np.arctan2(scale_y, scale_x))
    scale = float(np.sqrt(scale_x * scale_x + scale_y * scale_y))
    centre = m @ np.array([size / 2.0, size / 2.0]) + translation
    half = (size * scale - 1) / 2  # centered_drect takes one off the width and height
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half]), angle


def extract_chip(rgb: np.ndarray, rect: np.ndarray, angle: float, size: int) -> np.ndarray:
    """dlib's extract_image_chips for one square chip of a 3-channel uint8 image."""
    height, width = rgb.shape[:2]
    chip_area = size * size
    if angle == 0 and size == rect_width(rect) and size == rect_height(rect):
        return copy_chip(rgb, rect, size)

    # How deep the pyramid goes: while the rectangle shrunk once more is still bigger than
    # the chip. The pixels cut out (with a margin that doubles per level) are only those
    # the chip can reach.
    depth, grow = 0, 2.0
    shrunk = rect_down(rect)
    while rect_area(shrunk) > chip_area:
        shrunk = rect_down(shrunk)
        depth += 1
        grow = grow * 2 + 2
    corners = rotated_corners(rect, angle)
    reach = np.array(
        [
            max(corners[:, 0].min() - grow, 0),
            max(corners[:, 1].min() - grow, 0),
            min(corners[:, 0].max() + grow, width - 1),
            min(corners[:, 1].max() + grow, height - 1),
        ]
    )
    left, top, right, bottom = (int(v) for v in round_half_away(reach))
    if left > right or top > bottom:  # the chip lies wholly outside the image
        return np.zeros((size, size, 3), dtype=np.uint8)
    source = rgb[top : bottom + 1, left : right + 1]

    rect = rect - np.array([left, top, left, top], dtype=np.float64)
    for _ in range(depth):
        source = pyramid_down(source)
        rect = rect_down(rect)

    # The affine map from chip pixels to source pixels: chip corners (0,0), (size-1, 0) and
    # (0, size-1) onto the rotated rectangle's top-left, top-right and bottom-left corners.
    corners = rotated_corners(rect, angle)
    top_left, top_right, bottom_left = corners[0], corners[1], corners[2]
    along_x = (top_right - top_left) / (size - 1)
    along_y = (bottom_left - top_left) / (size - 1)
    grid = np.arange(size, dtype=np.float64)
    x = (along_x[0] * grid[None, :] + along_y[0] * grid[:, None]) + top_left[0]
    y = (along_x[1] * grid[None, :] + along_y[1] * grid[:, None]) + top_left[1]
    return bilinear_truncated(source, x, y)


def bilinear_truncated(source: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dlib's interpolate_bilinear: float64 blend, cast (truncated) to uint8, black outside."""
    left = np.floor(x).astype(np.intp)
    top = np.floor(y).astype(np.intp)
    height, width = source.shape[:2]
    inside = (left >= 0) & (top >= 0) & (left + 1 < width) & (top + 1 < height)
    chip = np.zeros(x.shape + (3,), dtype=np.uint8)
    whole = bool(inside.all())  # the usual case: no mask to gather through
    if not whole:
        left, top, x, y = left[inside], top[inside], x[inside], y[inside]
    across = (x - left).reshape(-1, 1)
    down = (y - top).reshape(-1, 1)
    # the four neighbours by flat index, gathered as uint8 and only then made float64
    pixels = np.ascontiguousarray(source).reshape(-1, 3)
    at = (top * width + left).ravel()

    def corner(offset: int) -> np.ndarray:
        return np.take(pixels, at + offset, axis=0).astype(np.float64)

    # Same operations as dlib's, so the truncation lands on the same side:
    # (1 - down) * ((1 - across) * tl + across * tr) + down * ((1 - across) * bl + across * br)
    stay = 1 - across
    upper = stay * corner(0)
    upper += across * corner(1)
    lower = stay * corner(width)
    lower += across * corner(width + 1)
    upper *= 1 - down
    lower *= down
    upper += lower
    if whole:
        return upper.astype(np.uint8).reshape(chip.shape)
    chip[inside] = upper.astype(np.uint8)
    return chip


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's pyramid_down<2> for RGB: [1 4 6 4 1] across then down, integer sum / 256.

    Output pixel (r, c) is centred on input pixel (2r + 2, 2c + 2); the size is
    ((rows - 3) // 2, (cols - 3) // 2), and images of 8 pixels or fewer vanish.
    """
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    out_rows, out_cols = (rows - 3) // 2, (cols - 3) // 2
    wide = image.astype(np.int32)
    taps = (1, 4, 6, 4, 1)
    zero = np.zeros((), np.int32)  # sum()'s start: an array, so the sum is one too
    across = sum(
        (weight * wide[:, k : k + 2 * out_cols : 2] for k, weight in enumerate(taps)), zero
    )  # (rows, out_cols)
    down = sum(
        (weight * across[k : k + 2 * out_rows : 2] for k, weight in enumerate(taps)), zero
    )  # (out_rows, out_cols)
    return (down // 256).astype(np.uint8)


def copy_chip(rgb: np.ndarray, rect: np.ndarray, size: int) -> np.ndarray:
    """dlib's basic_extract_image_chip: an unscaled, unrotated cut, black outside."""
    left, top = (int(v) for v in round_half_away(rect[:2]))
    chip = np.zeros((size, size, 3), dtype=np.uint8)
    height, width = rgb.shape[:2]
    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(top + size, height), min(left + size, width)
    if src_top < src_bottom and src_left < src_right:
        chip[src_top - top : src_bottom - top, src_left - left : src_right - left] = rgb[
            src_top:src_bottom, src_left:src_right
        ]
    return chip


# --- dlib's drectangle arithmetic: inclusive corners, so width is right - left + 1 ---------


def rect_width(rect: np.ndarray) -> float:
    return 0.0 if rect[0] > rect[2] or rect[1] > rect[3] else float(rect[2] - rect[0] + 1)


def rect_height(rect: np.ndarray) -> float:
    return 0.0 if rect[0] > rect[2] or rect[1] > rect[3] else float(rect[3] - rect[1] + 1)


def rect_area(rect: np.ndarray) -> float:
    return rect_width(rect) * rect_height(rect)


def rect_down(rect: np.ndarray) -> np.ndarray:
    """pyramid_down<2>::rect_down: both corners through point_down, p / 2 - (1.25, 0.75)."""
    return rect / 2.0 - np.array([1.25, 0.75, 1.25, 0.75])


def rotated_corners(rect: np.ndarray, angle: float) -> np.ndarray:
    """Top-left, top-right, bottom-left, bottom-right rotated by `angle` about the centre."""
    left, top, right, bottom = rect
    centre = np.array([(left + right) / 2.0, (top + bottom) / 2.0])
    corners = np.array([[left, top], [right, top], [left, bottom], [right, bottom]]) - centre
    cos, sin = np.cos(angle), np.sin(angle)
    x = cos * corners[:, 0] - sin * corners[:, 1]
    y = sin * corners[:, 0] + cos * corners[:, 1]
    return np.stack([x, y], axis=1) + centre


def round_half_away(values: np.ndarray) -> np.ndarray:
    """C's lround: halves go away from zero (numpy's round goes to even)."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.floor(np.abs(values) + 0.5)
