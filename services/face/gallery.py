"""The enrolled faces, as one matrix: a probe is matched against all of them at once.

Descriptors are dlib's: not normalised, compared by Euclidean distance. A template is
stored as float32 bytes (512 of them); policy keeps it sealed (L-10).
"""

from __future__ import annotations

import numpy as np

DIMS = 128


class TemplateError(ValueError):
    pass


def to_template(descriptor: np.ndarray) -> bytes:
    d = np.asarray(descriptor, dtype="<f4").reshape(-1)
    if d.shape != (DIMS,) or not np.all(np.isfinite(d)):
        raise TemplateError(f"a face descriptor is {DIMS} finite numbers, not {d.shape}")
    return d.tobytes()


def from_template(data: bytes) -> np.ndarray:
    if len(data) != 4 * DIMS:
        raise TemplateError(f"a face template is {4 * DIMS} bytes, not {len(data)}")
    d = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(d)):
        raise TemplateError("a face template with non-finite values")
    return d


class Gallery:
    def __init__(self) -> None:
        self.people: list[str] = []
        self.matrix = np.empty((0, DIMS), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.people)

    def add(self, person: str, descriptor: np.ndarray) -> None:
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
