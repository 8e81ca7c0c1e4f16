"""Everything the panel says: a stable prompt id and its English text."""

from __future__ import annotations

PROMPTS = {
    "direction-intro": "Set the door's opening direction: press ok",
    "direction-choose": "Press 1 for a right-opening door, 2 for a left-opening door",
    "direction-set": "Opening direction set: {direction}",
    "first-admin-intro": "Initial state: press ok to create the administrator",
    "enter-new-code": "Enter a new passcode of 6 to 10 digits, then ok",
    "repeat-code": "Enter the passcode again, then ok",
    "code-refused": "Passcode refused: {why}. Enter a new passcode",
    "admin-created": "Operation successful: administrator {number} added",
    "enter-code": "Enter your passcode, then ok",
    "unlocked": "Door unlocked",  # said when the motor reports it, not at the decision
    "not-unlocked": "The door did not unlock: {why}",
    "not-locked": "The door did not lock: {why}",
    "locking": "Locking",
    "leaving-home-armed": "Leaving-home mode on",
    "verify-failed": "Verification failed",
    "too-many-digits": "At most {max} digits",
    "failed": "Operation failed: {why}",
    "menu-verify": "Verify as administrator: enter your passcode, then ok",
    "menu": "1 create administrator, 2 create user, 3 delete, 4 opening direction, "
    "5 system information",
    "menu-exit": "Leaving the menu",
    "menu-credential": "1 face, 2 palm vein, 3 fingerprint, 4 passcode",
    "menu-delete": "Enter the person's number, then ok",
    "person-added": "Operation successful: person {number} added",
    "credential-added": "Operation successful: {credential} added for person {number}",
    "person-deleted": "Person {number} deleted",
    "delete-failed": "Deleting {number} failed: {why}",
    "already-added": "Already added",
    # the face enrolment's five poses (L-15) and its re-prompts
    "face-straight": "Look straight at the camera",
    "face-up": "Raise your head slightly",
    "face-down": "Lower your head slightly",
    "face-left": "Turn your head slightly left",
    "face-right": "Turn your head slightly right",
    "face-any": "Look at the camera",
    "face-none": "No face seen: look at the camera",
    "face-several": "More than one face: only the person enrolling, please",
    "face-moving": "Hold still",
    "face-too-far": "Come closer to the camera",
    "face-not-same": "Not the face enrolment began with: the same person, please",
    "face-move": "Turn your head slightly",
    "factory-reset-confirm": "Factory reset: press ok to erase everything, back to keep it",
    "factory-reset-done": "Factory reset done: everything was erased",
    # enrolment steps (L-15), as the biometric and face services name them
    "place-finger": "Place your finger on the sensor",
    "lift-finger": "Lift your finger",
    "finger-poor": "Poor placement: place your finger again",
    "finger-partial": "Place the whole finger flat on the sensor",
    "palm-ready": "Hold your palm about 20 centimetres in front of the sensor",
    "palm-show": "Show your palm to the sensor",
    "palm-too-far": "Bring your palm closer",
    "palm-too-near": "Move your palm further away",
    "palm-off-centre": "Centre your palm in front of the sensor",
    "palm-moving": "Hold your palm still",
    "battery-low": "Battery low: please charge the lock",  # L-28, at each wake
    "doorbell": "Ringing the doorbell",  # L-23
    "pairing": "Pairing mode: add the lock in the owner's app",  # L-17
    "pairing-ended": "Pairing mode ended",
    "paired": "Paired with the owner's app",
    "system-info": "Serial number {serial}, firmware {firmware}, verification code {code}",
    # the access rules at the door (issue 15)
    "system-locked": "System locked: too many failed attempts, try again later",  # L-20
    "user-disabled": "This person is disabled",
    "vacation-mode": "Vacation mode: only administrators may unlock",
    "privacy-mode": "Privacy mode: the door opens only from inside",
    "passage-mode": "Passage mode: the door is open",
    "more-factors": "{shown} verified: {still} more credential of another kind, please",
    "factor-timeout": "Too slow: the verification was not finished, start again",
}


# Why a drive failed, in words: policy's ActuationFailed reasons (issue 11).
NOT_ACTUATED = {
    "jammed": "the bolt is jammed",
    "insufficient-battery": "the battery is too low, connect USB-C power",
    "busy": "the motor is busy",
    "no-answer": "the motor is not answering",
    "no-report": "the motor is not answering",
    "drive-interrupted": "the motor was interrupted",
    "direction-unset": "the opening direction is not set",
}


def not_actuated_why(reason: str) -> str:
    return NOT_ACTUATED.get(reason, reason)


def text(prompt: str, params: dict[str, str]) -> str:
    return PROMPTS[prompt].format(**params)
