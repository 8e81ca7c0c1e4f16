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


def shows(landmarks: np.ndarray, wanted: str) -> bool:
    return wanted == "any" or pose_of(landmarks) == wanted
