"""Where a face looks, from MTCNN's five points, for the guided enrolment (L-15).

The nose tip is placed in the face's own frame: across from the left to the right eye,
down from the eyes to the mouth. Turning the head moves the nose across (yaw); raising
it brings the nose nearer the eyes, lowering it nearer the mouth (pitch). Being ratios,
both ignore the face's size and its roll. Image coordinates: "left" is the image's left,
which is the person's right on a camera that does not mirror.
"""

from __future__ import annotations

import numpy as np

# On the 61 dev photos (mostly frontal): yaw 5-95 % from -0.10 to 0.10, pitch 0.42 to 0.70
STRAIGHT_YAW = 0.12  # |yaw| within this is looking straight
PITCH_STRAIGHT = (0.45, 0.70)  # the nose's depth between the eyes and the mouth, frontal
TURN = 0.15  # |yaw| beyond this is a turn
POSES = ("straight", "up", "down", "left", "right", "any")
# Enrolment's later poses are measured from the person's own straight capture (issue 14):
# a frontal pitch alone ranges 0.40-0.72 across the dev photos' people, so fixed bounds
# asked some to tilt far and let others pass without moving. DELTA (about 4 degrees of
# head turn) is twice the median frame-to-frame jitter of a moving head in the shared
# video (0.02 in yaw, 0.016 in pitch); with it the dev photos of p01 and the video (whose
# speaker looks down by 0.045 at most) show all five poses. At 0.05 the video has no
# "down".
DELTA = 0.04


def yaw_pitch(landmarks: np.ndarray) -> tuple[float, float]:
    points = np.asarray(landmarks, np.float64)
    eyes = (points[0] + points[1]) / 2
    mouth = (points[3] + points[4]) / 2
    across, down = points[1] - points[0], mouth - eyes
    nose = points[2] - eyes
    yaw = float(nose @ across / (across @ across))  # 0 when the nose is between the eyes
    pitch = float(nose @ down / (down @ down))  # 0 at the eyes, 1 at the mouth
    return yaw, pitch


def pose_of(landmarks: np.ndarray) -> str:
    yaw, pitch = yaw_pitch(landmarks)
    low, high = PITCH_STRAIGHT
    if yaw <= -TURN:
        return "left"
    if yaw >= TURN:
        return "right"
    if abs(yaw) <= STRAIGHT_YAW and pitch < low:
        return "up"
    if abs(yaw) <= STRAIGHT_YAW and pitch > high:
        return "down"
    if abs(yaw) <= STRAIGHT_YAW:
        return "straight"
    return "between"


TURNS = {  # the asked pose: which of (yaw, pitch) must change, and which way
    "left": (0, -1.0),
    "right": (0, 1.0),
    "up": (1, -1.0),
    "down": (1, 1.0),
}


def shows(landmarks: np.ndarray, wanted: str, straight: tuple[float, float] | None = None) -> bool:
    """Whether the face shows the pose asked: "straight" on its own; a turn or tilt by
    DELTA in the asked direction from the straight capture's (yaw, pitch), once there is
    one (a turn that also tilts a little is still the turn asked for)."""
    if wanted == "any":
        return True
    if wanted == "straight" or straight is None:
        return pose_of(landmarks) == wanted
    axis, sign = TURNS[wanted]
    return sign * (yaw_pitch(landmarks)[axis] - straight[axis]) >= DELTA
