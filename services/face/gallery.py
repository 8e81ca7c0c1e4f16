"""The enrolled faces, as one matrix: a probe is matched against all of them at once.

Descriptors are dlib's: not normalised, compared by Euclidean distance. One enrolment is
a *set* of templates, one per pose (issue 14): a face turned left is matched against the
person's own left turn, not against an average of five poses that resembles none of them.
Each row of the matrix is one pose's descriptor, named by its person and policy's slot.

At rest policy keeps each set sealed as one opaque blob (L-10), stored as
  b"LMF2", then uint16 rows, uint16 dims (little-endian), then rows x dims float32.
A blob written before issue 14 is one bare float32 descriptor (the poses' average): it
is read as a set of one, so a lock keeps working across the update with no rewrite of
its sealed store; enrolling that face again stores the poses.
"""

from __future__ import annotations

import struct
from typing import Iterable, NamedTuple

import numpy as np

DIMS = 128  # dlib's; an InsightFace-style embedder configured instead has its own
MAX_DIMS = 2048
MAX_POSES = 8  # templates in one set
MAGIC = b"LMF2"
HEADER = struct.Struct("<4sHH")
MAX_TEMPLATE_BYTES = 12 * 1024  # several such blobs must fit one bus message (64 KB)


class TemplateError(ValueError):
    pass


def to_template(descriptors: np.ndarray) -> bytes:
    """One enrolment's descriptors, one row per pose (a single descriptor is a set of one)."""
    d = np.asarray(descriptors, dtype="<f4")
    d = d.reshape(1, -1) if d.ndim == 1 else d
    rows, dims = d.shape if d.ndim == 2 else (0, 0)
    if not 0 < rows <= MAX_POSES or not 0 < dims <= MAX_DIMS or not np.all(np.isfinite(d)):
        raise TemplateError(
            f"a face template is 1 to {MAX_POSES} descriptors of up to {MAX_DIMS} finite"
            f" numbers, not {np.shape(descriptors)}"
        )
    data = HEADER.pack(MAGIC, rows, dims) + d.tobytes()
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"a face template of {len(data)} bytes: {MAX_TEMPLATE_BYTES} at most")
    return data


def from_template(data: bytes) -> np.ndarray:
    """The (rows, dims) descriptors of a stored set; a bare pre-issue-14 descriptor is one row."""
    if data[:4] == MAGIC and len(data) >= HEADER.size:
        _, rows, dims = HEADER.unpack_from(data)
        body = data[HEADER.size :]
        if not 0 < rows <= MAX_POSES or not 0 < dims <= MAX_DIMS or len(body) != 4 * rows * dims:
            raise TemplateError(f"a face template set of {len(data)} bytes: its header disagrees")
    else:  # written before issue 14: one descriptor
        if not 0 < len(data) <= 4 * MAX_DIMS or len(data) % 4:
            raise TemplateError(f"a face template of {len(data)} bytes")
        rows, dims, body = 1, len(data) // 4, data
    d = np.frombuffer(body, dtype="<f4").astype(np.float32).reshape(rows, dims)
    if not np.all(np.isfinite(d)):
        raise TemplateError("a face template with non-finite values")
    return d


class Nearest(NamedTuple):
    """The closest enrolled face: whose, which of their slots (for policy, issue 11), how far."""

    person: str | None
    slot: int
    distance: float


NOBODY = Nearest(None, 0, float("inf"))


class Gallery:
    def __init__(self, dims: int = DIMS) -> None:
        self.people: list[str] = []  # per row: whose pose it is
        self.slots: list[int] = []  # per row: policy's slot of the set it belongs to
        self.matrix = np.empty((0, dims), dtype=np.float32)

    def __len__(self) -> int:
        """Enrolled faces (one per person and slot), however many poses each has."""
        return len(set(zip(self.people, self.slots)))

    def add(self, person: str, slot: int, descriptors: np.ndarray) -> None:
        """One enrolment: a descriptor, or one row per pose."""
        rows = np.asarray(descriptors, np.float32)
        rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
        if rows.ndim != 2 or rows.shape[1] != self.matrix.shape[1]:
            raise TemplateError(
                f"a {rows.shape[-1]}-number template among {self.matrix.shape[1]}-number ones:"
                " enrolled with another embedder, it must be enrolled again"
            )
        self.people += [person] * len(rows)
        self.slots += [slot] * len(rows)
        self.matrix = np.vstack([self.matrix, rows])

    def forget(self, person: str) -> None:
        keep = [i for i, p in enumerate(self.people) if p != person]
        self.people = [self.people[i] for i in keep]
        self.slots = [self.slots[i] for i in keep]
        self.matrix = self.matrix[keep]

    def nearest(self, descriptor: np.ndarray) -> Nearest:
        """The closest enrolled pose of anyone; NOBODY when none is enrolled."""
        if not self.people:
            return NOBODY
        distances = np.linalg.norm(self.matrix - descriptor[None], axis=1)
        best = int(np.argmin(distances))
        return Nearest(self.people[best], self.slots[best], float(distances[best]))

    def best_of_track(self, descriptors: Iterable[np.ndarray]) -> Nearest:
        """One presentation decided over its frames (issue 14): the best match of any frame
        of one track. Only for frames a tracker has proven to be one continuous face: over
        frames of different faces this would take the best of several people's tries."""
        return min((self.nearest(d) for d in descriptors), key=lambda n: n.distance,
                   default=NOBODY)  # fmt: skip
