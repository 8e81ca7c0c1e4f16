"""The enrolled faces, as one matrix: a probe is matched against all of them at once.

Descriptors are dlib's: not normalised, compared by Euclidean distance. A template is
stored as float32 bytes (512 of them); policy keeps it sealed (L-10).
"""

from __future__ import annotations

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


class Gallery:
    def __init__(self, dims: int = DIMS) -> None:
        self.people: list[str] = []
        self.matrix = np.empty((0, dims), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.people)

    def add(self, person: str, descriptor: np.ndarray) -> None:
        if descriptor.shape != (self.matrix.shape[1],):
            raise TemplateError(
                f"a {descriptor.size}-number template among {self.matrix.shape[1]}-number ones:"
                " enrolled with another embedder, it must be enrolled again"
            )
        self.people.append(person)
        self.matrix = np.vstack([self.matrix, np.asarray(descriptor, np.float32)[None]])

    def forget(self, person: str) -> None:
        keep = [i for i, p in enumerate(self.people) if p != person]
        self.people = [self.people[i] for i in keep]
        self.matrix = self.matrix[keep]

    def nearest(self, descriptor: np.ndarray) -> tuple[str | None, float]:
        """The closest enrolled person and the distance; (None, inf) when none is enrolled."""
        if not self.people:
            return None, float("inf")
        distances = np.linalg.norm(self.matrix - descriptor[None], axis=1)
        best = int(np.argmin(distances))
        return self.people[best], float(distances[best])
