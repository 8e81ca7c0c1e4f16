"""Face detection: MTCNN's three stages on onnxruntime, with numpy between them (no OpenCV).

The stages follow mtcnn 1.0.0 step for step so the boxes and landmarks match its own within a
fraction of a pixel: an image pyramid resized by area averaging (TensorFlow's AREA resize),
P-Net proposals, R-Net refinement, O-Net boxes and five landmarks, each crop sampled like
TensorFlow's crop_and_resize. Two deliberate differences:
- pyramid levels under 12 px are skipped (mtcnn 1.0.0 raises on them and so finds *no* faces
  at all for min_face ≥ 24 on a 640x480 frame);
- the graphs take raw pixel values and normalise them themselves (see models/mtcnn_nets.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

CELL = 12  # P-Net's receptive field, in pixels of the pyramid level
STRIDE = 2
OUTSIDE_PIXEL = 127.5  # crop_and_resize fills outside the image with 0 *after* normalising
NMS_PNET_PER_SCALE = 0.5
NMS_PNET_ALL_SCALES = 0.7
NMS_RNET = 0.7
NMS_ONET = 0.7


@dataclass(frozen=True, eq=False)  # eq would compare arrays
class Face:
    """One detected face in pixel coordinates of the image given to `Detector.detect`."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2, clipped to the image like mtcnn
    score: float  # O-Net's face probability
    # (5, 2) float32, x then y, in mtcnn's order: left eye, right eye, nose, mouth left, mouth
    # right ("left" is the left of the image, i.e. the person's right eye).
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def session_options(threads: int) -> ort.SessionOptions:
    """One intra-op pool without spin-waiting: spinning made the pipeline 2-3x slower on 2 cores."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class Detector:
    """MTCNN face detector; `pnet`, `rnet`, `onet` are the serialised ONNX models."""

    def __init__(
        self,
        pnet: bytes,
        rnet: bytes,
        onet: bytes,
        min_face: int = 40,
        threads: int = 1,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
    ):
        if min_face < 1:
            raise ValueError(f"min_face must be at least 1 px, not {min_face}")
        if not 0 < scale_factor < 1:
            raise ValueError(f"scale_factor must be in (0, 1), not {scale_factor}")
        options = session_options(threads)
        providers = ["CPUExecutionProvider"]
        self._pnet = ort.InferenceSession(pnet, options, providers=providers)
        self._rnet = ort.InferenceSession(rnet, options, providers=providers)
        self._onet = ort.InferenceSession(onet, options, providers=providers)
        self.min_face = min_face
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = scale_factor

    def detect(
        self, rgb: np.ndarray, near: tuple[float, float, float, float] | None = None
    ) -> list[Face]:
        """All faces in an HxWx3 uint8 RGB image, highest score first.

        near: the box (x1, y1, x2, y2) of a face followed from the last frame. Then P-Net
        and its pyramid are skipped: that box, made square, is the one proposal R-Net and
        O-Net refine. A face that moved within a fraction of its box (a camera frame's
        motion) comes out with its box and five points; one that moved further is not
        found (a score under the thresholds) and the caller looks at the whole frame
        (services/face/pipeline.py's FaceFinder). About a tenth of the work.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        if near is None:
            boxes = self._propose(rgb)
            if len(boxes):
                boxes = self._refine(rgb, boxes)
        else:  # R-Net and O-Net on the box where the face was: they regress it onto the face
            boxes = self._refine(rgb, _square(np.array([[*near, 1.0]], np.float64)))
        if not len(boxes):
            return []
        boxes, landmarks = self._output(rgb, boxes)
        return _faces(boxes, landmarks, rgb.shape[0], rgb.shape[1])

    def pyramid_scales(self, height: int, width: int) -> list[float]:
        """mtcnn's scales, minus those that would shrink the image under P-Net's 12 px."""
        min_dim = min(height, width)
        count = round(-((np.log(min_dim / CELL) / np.log(self.scale_factor)) + 1))
        scales = (CELL / self.min_face) * self.scale_factor ** np.arange(max(count, 0))
        return [float(s) for s in scales if int(min_dim * s) >= CELL]

    def _propose(self, rgb: np.ndarray) -> np.ndarray:
        """Stage 1: P-Net over the pyramid; rows are x1, y1, x2, y2, score."""
        pyramid = AreaPyramid(rgb)
        per_scale = []
        for scale in self.pyramid_scales(*rgb.shape[:2]):
            # mtcnn multiplies the shape by the scale and truncates: keep the same arithmetic
            size = (np.asarray(rgb.shape[:2]) * scale).astype(int)
            level = pyramid.level(int(size[0]), int(size[1]))
            regression, probability = self._pnet.run(None, {"image": level[None]})
            candidates = _pnet_boxes(regression[0], probability[0, 1], scale, self.thresholds[0])
            per_scale.append(candidates[_nms_keep(candidates, NMS_PNET_PER_SCALE, "union")])
        if not per_scale:
            return np.empty((0, 5))
        boxes = _sort_by_score(np.concatenate(per_scale))
        return _square(boxes[_nms_keep(boxes, NMS_PNET_ALL_SCALES, "union")])

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net rescoring and box regression."""
        regression, probability = self._rnet.run(None, {"image": crop_and_resize(image, boxes, 24)})
        boxes = _regress(boxes, regression, probability[:, 1])
        boxes = _sort_by_score(boxes[boxes[:, 4] > self.thresholds[1]])
        return _square(boxes[_nms_keep(boxes, NMS_RNET, "union")])

    def _output(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3: O-Net boxes and landmarks; returns (boxes, landmarks as (N, 5, 2))."""
        regression, landmarks, probability = self._onet.run(
            None, {"image": crop_and_resize(image, boxes, 48)}
        )
        # landmarks are fractions of the box the crop came from, offset by mtcnn's "- 1"
        size = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, None, :]
        fractions = np.stack([landmarks[:, 0:5], landmarks[:, 5:10]], axis=-1)
        points = size * fractions + boxes[:, None, 0:2] - 1
        boxes = _regress(boxes, regression, probability[:, 1])
        picked = boxes[:, 4] > self.thresholds[2]
        boxes, points = boxes[picked], points[picked]
        order = _sort_order(boxes[:, 4])
        boxes, points = boxes[order], points[order]
        keep = _nms_keep(boxes, NMS_ONET, "min")
        return boxes[keep], points[keep]


class AreaPyramid:
    """Area-averaged down-scaling (TensorFlow's AREA resize) of one image to many sizes.

    Each output pixel is the mean of the input over its footprint, partial pixels weighted by
    coverage. The integral image of a piecewise-constant image is exactly bilinear between its
    grid points, so every level costs four gathers from one integral image, whatever its scale.
    """

    def __init__(self, image: np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f"the pyramid sums uint8 pixels exactly, not {image.dtype}")
        self._height, self._width = image.shape[:2]
        self._integral = _integral_image(image)

    def level(self, height: int, width: int) -> np.ndarray:
        """The image resized to height x width, as (3, height, width) float32."""
        y0, fy = _edge_positions(self._height, height)
        x0, fx = _edge_positions(self._width, width)
        # interpolate whole rows first (contiguous copies), then columns of the few rows left
        rows = _lerp(
            self._integral[y0].astype(np.float64),
            self._integral[y0 + 1].astype(np.float64),
            fy[:, None, None],
        )
        at_edges = _lerp(rows[:, x0], rows[:, x0 + 1], fx[None, :, None])
        sums = at_edges[1:, 1:] - at_edges[:-1, 1:] - at_edges[1:, :-1] + at_edges[:-1, :-1]
        footprint = (self._height / height) * (self._width / width)
        return np.ascontiguousarray((sums / footprint).transpose(2, 0, 1), dtype=np.float32)


def _integral_image(image: np.ndarray) -> np.ndarray:
    """(H+1, W+1, 3) exact int32 sums of the uint8 pixels above and left of each grid point."""
    height, width = image.shape[:2]
    integral = np.zeros((height + 1, width + 1, image.shape[2]), np.int32)  # 255·H·W fits
    np.cumsum(image, axis=1, dtype=np.int32, out=integral[1:, 1:])
    # numpy's cumsum along the first axis is several times slower than adding row by row
    for row in range(1, height + 1):
        np.add(integral[row - 1], integral[row], out=integral[row])
    return integral


def _edge_positions(length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid index and fraction of each output pixel edge (size + 1 of them) in the input."""
    edges = np.arange(size + 1) * (length / size)
    whole = np.minimum(np.floor(edges).astype(int), length - 1)
    return whole, edges - whole


def crop_and_resize(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Bilinear crops of `boxes` (x1, y1, x2, y2 in pixels) as (N, 3, size, size) float32.

    The sampling follows mtcnn's call of tf.image.crop_and_resize: boxes normalised by the
    image size but mapped back with (size − 1), corners sampled exactly, and samples outside
    the image set to the value that normalises to 0.
    """
    height, width = image.shape[:2]
    steps = np.arange(size) / (size - 1)
    ys = _sample_positions(boxes[:, 1], boxes[:, 3], height, steps)
    xs = _sample_positions(boxes[:, 0], boxes[:, 2], width, steps)
    y_inside = (ys >= 0) & (ys <= height - 1)
    x_inside = (xs >= 0) & (xs <= width - 1)
    ys, xs = np.clip(ys, 0, height - 1), np.clip(xs, 0, width - 1)
    top, left = np.floor(ys).astype(int), np.floor(xs).astype(int)
    bottom, right = np.ceil(ys).astype(int), np.ceil(xs).astype(int)
    y_lerp = (ys - top)[:, :, None, None]
    x_lerp = (xs - left)[:, None, :, None]
    rows_top, rows_bottom = top[:, :, None], bottom[:, :, None]
    cols_left, cols_right = left[:, None, :], right[:, None, :]
    upper = _lerp(_at(image, rows_top, cols_left), _at(image, rows_top, cols_right), x_lerp)
    lower = _lerp(_at(image, rows_bottom, cols_left), _at(image, rows_bottom, cols_right), x_lerp)
    crops = _lerp(upper, lower, y_lerp)
    inside = (y_inside[:, :, None] & x_inside[:, None, :])[..., None]
    crops = np.where(inside, crops, OUTSIDE_PIXEL)
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)


def _at(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Pixels gathered, then made float32: only the samples are converted (exactly, as
    uint8 values are whole float32s), not the whole frame."""
    return image[rows, cols].astype(np.float32)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t


def _sample_positions(start: np.ndarray, end: np.ndarray, length: int, steps: np.ndarray):
    # tf: in = y1 * (L - 1) + i * (y2 - y1) * (L - 1) / (size - 1), with y normalised by L
    first = start / length * (length - 1)
    span = (end - start) / length * (length - 1)
    return first[:, None] + steps[None, :] * span[:, None]


def _pnet_boxes(
    regression: np.ndarray, face_probability: np.ndarray, scale: float, threshold: float
) -> np.ndarray:
    """Boxes (x1, y1, x2, y2, score) in image pixels for the P-Net cells above threshold."""
    ys, xs = np.nonzero(face_probability > threshold)
    offsets = regression[:, ys, xs].astype(np.float64)  # (4, n): dx1, dy1, dx2, dy2
    span = CELL - 1  # a cell covers [2x + 1, 2x + 12]: its width counts 11
    x1 = (xs * STRIDE + 1 + offsets[0] * span) / scale
    y1 = (ys * STRIDE + 1 + offsets[1] * span) / scale
    x2 = (xs * STRIDE + CELL + offsets[2] * span) / scale
    y2 = (ys * STRIDE + CELL + offsets[3] * span) / scale
    boxes = np.stack([x1, y1, x2, y2, face_probability[ys, xs].astype(np.float64)], axis=1)
    return _sort_by_score(boxes)


def _sort_order(scores: np.ndarray) -> np.ndarray:
    # highest first; mtcnn reverses an ascending argsort, which decides the order of ties
    return np.argsort(scores)[::-1]


def _sort_by_score(boxes: np.ndarray) -> np.ndarray:
    return boxes[_sort_order(boxes[:, 4])]


def _nms_keep(boxes: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """Indices kept by mtcnn 1.0.0's suppression of boxes already sorted by score.

    Unlike greedy NMS, a box is dropped when it overlaps *any* better box too much, even one
    that was itself dropped; matching that keeps the same faces as mtcnn.
    """
    n = len(boxes)
    if n < 2:
        return np.arange(n)
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    inter_w = np.maximum(0, np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1))
    inter_h = np.maximum(0, np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1))
    inter = inter_w * inter_h
    if method == "union":
        overlap = inter / (area[:, None] + area[None, :] - inter)
    elif method == "min":
        overlap = inter / np.minimum(area[:, None], area[None, :])
    else:
        raise ValueError(f"unknown overlap method {method!r}")
    better_overlaps = np.triu(overlap > threshold, k=1)  # [i, j]: box i ranks above box j
    return np.nonzero(~better_overlaps.any(axis=0))[0]


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (mtcnn's resize_to_square)."""
    boxes = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] += w * 0.5 - side * 0.5
    boxes[:, 1] += h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: np.ndarray, regression: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Apply R-/O-Net's offsets (fractions of width x2 − x1 + 1) and take the new scores."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0:4] += regression.astype(np.float64) * np.stack([w, h, w, h], axis=1)
    out[:, 4] = scores
    return out


def _faces(boxes: np.ndarray, landmarks: np.ndarray, height: int, width: int) -> list[Face]:
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0, width - 1)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0, height - 1)
    faces = [
        Face(
            box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            score=float(b[4]),
            landmarks=points.astype(np.float32),
        )
        for b, points in zip(clipped, landmarks)
    ]
    return sorted(faces, key=lambda face: -face.score)
