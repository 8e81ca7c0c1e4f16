"""The enrolled faces, as one matrix: a probe is matched against all of them at once.

Descriptors are dlib's: not normalised, compared by Euclidean distance. A template is
stored as float32 bytes (512 of them); policy keeps it sealed (L-10).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DIMS = 128  # dlib's; an InsightFace-style embedder configured instead has its own
MAX_DIMS = 2048


class TemplateError(ValueError):
    pass


def to_template(descriptor: np.ndarray) -> bytes:
    d = np.asarray(descriptor, dtype="<f4").reshape(-1)
    if not 0 < d.size <= MAX_DIMS or not np.all(np.isfinite(d)):
        raise TemplateError(f"a face descriptor is up to {MAX_DIMS} finite numbers, not {d.shape}")
    return d.tobytes()


def from_template(data: bytes) -> np.ndarray:
    if not 0 < len(data) <= 4 * MAX_DIMS or len(data) % 4:
        raise TemplateError(f"a face template of {len(data)} bytes")
    d = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(d)):
        raise TemplateError("a face template with non-finite values")
    return d


class Nearest(NamedTuple):
    """The closest enrolled face: whose, which of their slots (for policy, issue 11), how far."""

    person: str | None
    slot: int
    distance: float


class Gallery:
    def __init__(self, dims: int = DIMS) -> None:
        self.people: list[str] = []
        self.slots: list[int] = []  # policy's slot of each face, beside its person
        self.matrix = np.empty((0, dims), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.people)

    def add(self, person: str, slot: int, descriptor: np.ndarray) -> None:
        if descriptor.shape != (self.matrix.shape[1],):
            raise TemplateError(
                f"a {descriptor.size}-number template among {self.matrix.shape[1]}-number ones:"
                " enrolled with another embedder, it must be enrolled again"
            )
        self.people.append(person)
        self.slots.append(slot)
        self.matrix = np.vstack([self.matrix, np.asarray(descriptor, np.float32)[None]])

    def forget(self, person: str) -> None:
        keep = [i for i, p in enumerate(self.people) if p != person]
        self.people = [self.people[i] for i in keep]
        self.slots = [self.slots[i] for i in keep]
        self.matrix = self.matrix[keep]

    def nearest(self, descriptor: np.ndarray) -> Nearest:
        """The closest enrolled face; (None, 0, inf) when none is enrolled."""
        if not self.people:
            return Nearest(None, 0, float("inf"))
        distances = np.linalg.norm(self.matrix - descriptor[None], axis=1)
        best = int(np.argmin(distances))
        return Nearest(self.people[best], self.slots[best], float(distances[best]))
