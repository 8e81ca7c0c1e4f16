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
    "unlocked": "Door unlocked",
    "locking": "Locking",
    "leaving-home-armed": "Leaving-home mode on",
    "verify-failed": "Verification failed",
    "too-many-digits": "At most {max} digits",
    "failed": "Operation failed: {why}",
}


def text(prompt: str, params: dict[str, str]) -> str:
    return PROMPTS[prompt].format(**params)
