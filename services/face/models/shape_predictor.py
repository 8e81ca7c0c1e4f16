"""dlib's shape predictor (a cascade of regression trees) in numpy, parsed from its .dat file.

The lock runs dlib's 5-point predictor inside a box built from MTCNN's landmarks, so the
face chip (and therefore the embedding) comes out as dlib's own would. To get there the
port follows dlib's shape_predictor.h step for step, including its number types:

- the shape is float32 and each tree's leaf is added to it in order, as dlib does;
- each cascade maps its feature pixels through the similarity transform from the mean
  shape to the current one (least squares, Umeyama), cast to float32 before use;
- a feature pixel is the nearest pixel (coordinates rounded with floor(x + 0.5)), 0 when
  it falls outside the image;
- the output points are rounded to whole pixels, like dlib's full_object_detection.

File layout (serialize() in shape_predictor.h): version 1, the initial shape (a float
column matrix), the forests (per cascade, per tree: its splits (idx1, idx2, threshold) and
its leaves (float column matrices)), then per cascade the anchor index and the offset of
each feature pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from services.face.models.dlib_format import DlibReader, FormatError, decode_floats, exact_float32

Box = tuple[int, int, int, int]  # left, top, right, bottom: dlib's rectangle, inclusive


@dataclass(frozen=True)
class ShapePredictor:
    initial_shape: np.ndarray  # (2P,) float32: the mean shape, box-normalised (0..1)
    split_first: np.ndarray  # (C, T, S) int: the two feature pixels a split compares
    split_second: np.ndarray  # (C, T, S) int
    split_threshold: np.ndarray  # (C, T, S) float32
    leaves: np.ndarray  # (C, T, L, 2P) float32: what a tree adds to the shape
    anchors: np.ndarray  # (C, F) int: the shape point each feature pixel hangs from
    deltas: np.ndarray  # (C, F, 2) float32: its offset from that point, in mean-shape units

    @property
    def num_parts(self) -> int:
        return self.initial_shape.size // 2

    @property
    def depth(self) -> int:
        return int(np.log2(self.leaves.shape[2]))

    @classmethod
    def load(cls, path: str | Path) -> ShapePredictor:
        return parse(Path(path).read_bytes())

    def predict(self, image: np.ndarray, box: Box, *, rounded: bool = True) -> np.ndarray:
        """The (P, 2) landmarks (x, y) of the face in `box`, as dlib.shape_predictor gives them.

        `image` is grayscale HxW (uint8, or float32 such as gray_like_dlib(rgb)), or an
        HxWx3 uint8 RGB image, whose intensities are then taken like dlib's at the ~800
        pixels each cascade reads, rather than converting the whole image.
        rounded=False keeps the sub-pixel positions dlib rounds away.
        """
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
            raise ValueError(f"expected an HxW or HxWx3 image, got shape {image.shape}")
        if image.ndim == 3 and image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 RGB image, got {image.dtype}")
        left, top, right, bottom = (int(v) for v in box)
        # dlib's unnormalising transform maps (0,0) to the top-left corner and (1,1) to the
        # bottom-right one: a scale of right - left, not the width right - left + 1.
        origin = np.array([left, top], dtype=np.float64)
        scale = np.array([right - left, bottom - top], dtype=np.float64)
        height, width = image.shape[:2]
        pixels: np.ndarray
        if image.ndim == 3:
            pixels = np.ascontiguousarray(image).reshape(-1, 3)
        else:
            pixels = np.ascontiguousarray(image, dtype=np.float32).reshape(-1)
        fast = self._flat
        shape = self.initial_shape.copy()
        # row 0 the shape, then what each tree adds: summed in tree order, in float32
        rows = np.empty((fast.trees + 1, shape.size), dtype=np.float32)
        for cascade in range(self.leaves.shape[0]):
            features = self._feature_pixels(pixels, height, width, shape, cascade, origin, scale)
            first, second, threshold = fast.splits[cascade]
            node = np.zeros(fast.trees, dtype=np.intp)
            for _ in range(self.depth):
                at = fast.tree_base + node
                go_left = (features[first[at]] - features[second[at]]) > threshold[at]
                node = 2 * node + 2 - go_left  # left child 2n + 1, right 2n + 2
            rows[0] = shape
            np.take(fast.leaves[cascade], fast.leaf_base + node - fast.splits_per_tree,
                    axis=0, out=rows[1:])  # fmt: skip
            # float32 sums in tree order: accumulate is sequential, unlike sum's pairwise.
            shape = np.add.accumulate(rows, axis=0, dtype=np.float32)[-1]

        points = shape.reshape(-1, 2).astype(np.float64) * scale + origin
        return np.floor(points + 0.5) if rounded else points

    @cached_property
    def _flat(self) -> _FlatTrees:
        return _FlatTrees.of(self)

    @cached_property
    def _mean_shape(self) -> _CentredShape:
        return _CentredShape.of(self.initial_shape)

    def _feature_pixels(
        self,
        pixels: np.ndarray,
        height: int,
        width: int,
        shape: np.ndarray,
        cascade: int,
        origin: np.ndarray,
        scale: np.ndarray,
    ) -> np.ndarray:
        """The intensities this cascade's trees compare, sampled around the current shape.
        `pixels` is the image with its pixels flattened: (H*W,) grey or (H*W, 3) RGB."""
        fast = self._flat
        m = similarity_from(self._mean_shape, shape).astype(np.float32)
        dx, dy = fast.deltas_x[cascade], fast.deltas_y[cascade]
        anchor = fast.anchors[cascade]
        # float32 throughout, in dlib's order: (m00*dx + m01*dy) + anchor.
        x = (m[0, 0] * dx + m[0, 1] * dy) + shape[2 * anchor]
        y = (m[1, 0] * dx + m[1, 1] * dy) + shape[2 * anchor + 1]
        column = np.floor(x.astype(np.float64) * scale[0] + origin[0] + 0.5).astype(np.intp)
        row = np.floor(y.astype(np.float64) * scale[1] + origin[1] + 0.5).astype(np.intp)
        outside = (column < 0) | (column >= width) | (row < 0) | (row >= height)
        at = row * width + column
        at[outside] = 0  # any pixel: its value is set to 0 below
        sampled = np.take(pixels, at, axis=0)
        values = sampled.astype(np.float32) if pixels.ndim == 1 else intensity(sampled)
        values[outside] = 0
        return values


@dataclass(frozen=True)
class _FlatTrees:
    """The forests laid out for one gather per tree level: a cascade's splits as flat
    arrays indexed by tree * splits + node, its leaves as rows indexed likewise."""

    trees: int
    splits_per_tree: int
    tree_base: np.ndarray  # (T,) tree * splits
    leaf_base: np.ndarray  # (T,) tree * leaves
    splits: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per cascade: first, second, thr
    leaves: np.ndarray  # (C, T * L, 2P) float32
    anchors: np.ndarray  # (C, F) the shape point each feature pixel hangs from
    deltas_x: np.ndarray  # (C, F) float32, contiguous
    deltas_y: np.ndarray

    @classmethod
    def of(cls, p: ShapePredictor) -> _FlatTrees:
        cascades, trees, splits = p.split_first.shape
        leaves = p.leaves.shape[2]
        return cls(
            trees=trees,
            splits_per_tree=splits,
            tree_base=np.arange(trees, dtype=np.intp) * splits,
            leaf_base=np.arange(trees, dtype=np.intp) * leaves,
            splits=[
                (
                    p.split_first[c].ravel().astype(np.intp),
                    p.split_second[c].ravel().astype(np.intp),
                    np.ascontiguousarray(p.split_threshold[c].ravel()),
                )
                for c in range(cascades)
            ],  # fmt: skip
            leaves=np.ascontiguousarray(p.leaves.reshape(cascades, trees * leaves, -1)),
            anchors=p.anchors.astype(np.intp),
            deltas_x=np.ascontiguousarray(p.deltas[..., 0]),
            deltas_y=np.ascontiguousarray(p.deltas[..., 1]),
        )


@dataclass(frozen=True)
class _CentredShape:
    """A shape's points about their mean and their spread: the fixed side of
    similarity_matrix, computed once by the same operations."""

    centred: np.ndarray  # (P, 2) float64
    spread: float
    count: int

    @classmethod
    def of(cls, shape: np.ndarray) -> _CentredShape:
        source = shape.reshape(-1, 2).astype(np.float64)
        centred = source - source.mean(axis=0)
        return cls(centred, np.mean(np.sum(centred**2, axis=1)), len(source))


def similarity_matrix(from_shape: np.ndarray, to_shape: np.ndarray) -> np.ndarray:
    """The 2x2 scale-rotation part of the least-squares similarity from one shape to another.

    dlib solves it with an SVD (Umeyama); in 2-D the answer has a closed form: the rotation
    angle is atan2(c - b, a + d) of the cross-covariance [[a, b], [c, d]] and the scale is
    sqrt((a + d)^2 + (c - b)^2) over the spread of the source points.
    """
    return similarity_from(_CentredShape.of(from_shape), to_shape)


def similarity_from(source: _CentredShape, to_shape: np.ndarray) -> np.ndarray:
    """similarity_matrix from a shape whose centring is already done."""
    target = to_shape.reshape(-1, 2).astype(np.float64)
    target_centred = target - np.add.reduce(target, axis=0) / len(target)  # np.mean's sum
    spread = source.spread
    cov = target_centred.T @ source.centred / source.count
    cos_part = cov[0, 0] + cov[1, 1]
    sin_part = cov[1, 0] - cov[0, 1]
    norm = np.sqrt(cos_part * cos_part + sin_part * sin_part)
    if norm == 0.0:
        return np.eye(2)
    rotation = np.array([[cos_part, -sin_part], [sin_part, cos_part]]) / norm
    return rotation * (norm / spread if spread != 0.0 else 1.0)


def gray_like_dlib(rgb: np.ndarray) -> np.ndarray:
    """The intensity dlib's predictor reads from an RGB pixel: (r + g + b) / 3, truncated.

    (dlib's assign_pixel from rgb_pixel to unsigned char; not a luma weighting.)
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {rgb.dtype} {rgb.shape}")
    return intensity(rgb)


def intensity(rgb: np.ndarray) -> np.ndarray:
    """(r + g + b) // 3 of uint8 RGB pixels (any leading shape), as float32."""
    total = rgb[..., 0].astype(np.uint16) + rgb[..., 1] + rgb[..., 2]
    return (total // 3).astype(np.float32)


# --- parsing ------------------------------------------------------------------------------


def parse(data: bytes) -> ShapePredictor:
    reader = DlibReader(data)
    reader.expect_int(1, "shape_predictor version")
    initial_shape = reader.float_matrix(None, 1, "initial shape").ravel()
    coordinates = initial_shape.size
    if coordinates == 0 or coordinates % 2:
        raise FormatError(f"initial shape of {coordinates} values is not a list of points")

    forests = [read_forest(reader, coordinates) for _ in range(reader.uint())]
    if not forests:
        raise FormatError("a shape predictor without cascades")
    anchors = [reader.ints(reader.uint()) for _ in range(read_count(reader, forests, "anchor"))]
    deltas = [read_deltas(reader) for _ in range(read_count(reader, forests, "delta"))]
    reader.finish()
    return assemble(initial_shape, forests, anchors, deltas)


def read_count(reader: DlibReader, forests: list, what: str) -> int:
    count = reader.uint()
    if count != len(forests):
        raise FormatError(f"{count} {what} lists for {len(forests)} cascades")
    return count


def read_forest(reader: DlibReader, coordinates: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One cascade: per tree, its splits (S, 4: idx1, idx2, mantissa, exponent) and leaves."""
    trees = []
    for _ in range(reader.uint()):
        splits = reader.ints(4 * reader.uint()).reshape(-1, 4)
        leaf_count = reader.uint()
        # Each leaf is a float column matrix: its two sizes, then mantissa/exponent pairs.
        leaves = reader.ints(leaf_count * (2 + 2 * coordinates)).reshape(leaf_count, -1)
        sizes = leaves[:, :2]
        if not (np.all(sizes == (-coordinates, -1)) or np.all(sizes == (coordinates, 1))):
            raise FormatError(f"leaf sizes {sizes[:1].tolist()} for a {coordinates}-value shape")
        values = exact_float32(decode_floats(leaves[:, 2:]), "leaf values")
        trees.append((splits, values.reshape(leaf_count, coordinates)))
    return trees


def read_deltas(reader: DlibReader) -> np.ndarray:
    count = reader.uint()
    return exact_float32(reader.floats(2 * count), "feature pixel offsets").reshape(count, 2)


def assemble(
    initial_shape: np.ndarray,
    forests: list[list[tuple[np.ndarray, np.ndarray]]],
    anchors: list[np.ndarray],
    deltas: list[np.ndarray],
) -> ShapePredictor:
    """Stack the cascades into arrays, refusing anything dlib itself would misread.

    The vectorised evaluation needs every tree complete (leaves = splits + 1, a power of
    two) and the same size everywhere, which is how dlib trains them.
    """
    tree_counts = {len(forest) for forest in forests}
    split_counts = {splits.shape[0] for forest in forests for splits, _ in forest}
    leaf_counts = {leaves.shape[0] for forest in forests for _, leaves in forest}
    feature_counts = {a.size for a in anchors} | {d.shape[0] for d in deltas}
    if len(tree_counts) != 1 or 0 in tree_counts:
        raise FormatError(f"cascades of {sorted(tree_counts)} trees")
    if len(split_counts) != 1 or len(leaf_counts) != 1:
        raise FormatError(f"trees of {sorted(split_counts)} splits, {sorted(leaf_counts)} leaves")
    if len(feature_counts) != 1:
        raise FormatError(f"cascades of {sorted(feature_counts)} feature pixels")
    (splits,), (leaf_count,), (features,) = split_counts, leaf_counts, feature_counts
    if leaf_count != splits + 1 or leaf_count & (leaf_count - 1):
        raise FormatError(f"incomplete trees: {splits} splits and {leaf_count} leaves")

    split_rows = np.array([[s for s, _ in forest] for forest in forests])  # (C, T, S, 4)
    first, second = split_rows[..., 0], split_rows[..., 1]
    if first.min(initial=0) < 0 or second.min(initial=0) < 0:
        raise FormatError("a split on a negative feature index")
    if max(first.max(initial=0), second.max(initial=0)) >= features:
        raise FormatError(f"a split on a feature beyond the {features} pixels of its cascade")
    anchor_array = np.array(anchors)
    if anchor_array.min() < 0 or anchor_array.max() >= initial_shape.size // 2:
        raise FormatError("a feature pixel anchored to a point the shape does not have")
    threshold = exact_float32(decode_floats(split_rows[..., 2:]), "split thresholds")
    return ShapePredictor(
        initial_shape=initial_shape,
        split_first=first,
        split_second=second,
        split_threshold=threshold.reshape(first.shape),
        leaves=np.array([[leaves for _, leaves in forest] for forest in forests]),
        anchors=anchor_array,
        deltas=np.array(deltas),
    )
