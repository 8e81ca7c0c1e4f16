"""The guided enrolment's rules, apart from the camera (L-15, issue 14): which pose is asked,
whether a still face answers it, and that every pose is the person of the first capture.

The face worker feeds it frames from the camera; ops/face_eval.py feeds it the shared
video's frames to measure acceptance with the templates the lock would store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.face.pose import shows, yaw_pitch

MOVING = 0.3  # eye distances the nose may move between two frames of a still face


@dataclass(frozen=True)
class Captured:
    """One pose of an enrolment: its descriptor, and where the face looked."""

    descriptor: np.ndarray
    yaw_pitch: tuple[float, float]


def still(before: np.ndarray, after: np.ndarray) -> bool:
    """Two frames' five points show a face held still (one seen twice in the same place)."""
    eye_distance = float(np.linalg.norm(after[1] - after[0])) or 1.0
    return float(np.linalg.norm(after[2] - before[2])) / eye_distance <= MOVING


class Enrolment:
    """The poses asked in order, each taken from a still face that shows it and is the
    person of the first capture (within threshold of its descriptor)."""

    def __init__(self, poses: list[str], threshold: float) -> None:
        self.poses, self.threshold = list(poses), threshold
        self.captured: list[Captured] = []
        self._told: np.ndarray | None = None  # the last face told it is not the first one

    @property
    def done(self) -> bool:
        return len(self.captured) == len(self.poses)

    @property
    def asked(self) -> str:
        return self.poses[len(self.captured)]

    def shows_asked(self, landmarks: np.ndarray) -> bool:
        straight = self.captured[0].yaw_pitch if self.captured else None
        return shows(landmarks, self.asked, straight)

    def offer(self, descriptor: np.ndarray, landmarks: np.ndarray) -> str:
        """A face in the asked pose: "taken"; "not-same" when it is another person, to
        be said once; "told" when that other person was already told."""
        if self.captured and not self._same(self.captured[0].descriptor, descriptor):
            if self._told is not None and self._same(self._told, descriptor):
                return "told"
            self._told = descriptor
            return "not-same"
        self.captured.append(Captured(descriptor, yaw_pitch(landmarks)))
        return "taken"

    def _same(self, a: np.ndarray, b: np.ndarray) -> bool:
        return float(np.linalg.norm(a - b)) <= self.threshold

    def descriptors(self) -> np.ndarray:
        """One row per pose captured."""
        return np.stack([c.descriptor for c in self.captured])
