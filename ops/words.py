"""The sentence after a refusal's reason code, for the CLI's `refused: REASON: sentence`.

A decision (proto/policy.py Decision) names only its reason; the owner reading a terminal
needs the words too (issue 15). One table for every command that prints a decision.
"""

from __future__ import annotations

from services.keypad.prompts import NOT_ACTUATED  # the panel's words for a drive not taken

REMOTE_OFF = "remote unlock is off: turn it on with `lockmesh settings remote_unlock on`"
DECISION_REASONS = {
    "remote-disabled": REMOTE_OFF,
    "remote-unlock-off": REMOTE_OFF,
    "lockout": "the lock is locked out after wrong attempts (L-20): wait, or `lockout release`",
    "invalid-credential": "no person holds that credential",
    "outside-validity": "outside the person's validity period (L-7)",
    "time-unknown": "the lock has lost the time, so no schedule can be checked (L-7)",
    "uses-exhausted": "the visitor code has no uses left (L-9)",
    "initial-state": "the lock is in its initial state: set it up first (L-12)",
    "no-template": "the recogniser named a template nobody holds",
    "not-live": "the face matched but did not look live",
    "too-long": "more than 20 digits in one entry (L-19)",
    "not-digits": "an entry of digits only, please",
    "user-disabled": "that person is disabled: enable them to let them in",
    "vacation-mode": "vacation mode: only administrators unlock from outside",
    "privacy-mode": "privacy mode: nothing unlocks from outside",
    "no-remote-mode": "no-remote mode: remote and phone unlocks are refused",
    "more-factors": "this person needs another credential to unlock",
    "factor-timeout": "the next credential did not come in time",
    "wrong-pin": "that is not the app PIN",
    "pin-locked-out": "too many wrong app PINs: wait a few minutes",
    "not-claimed": "the lock is not claimed yet: `lockmesh pair` while pairing is open",
}


def decision_sentence(reason: str) -> str:
    """The words for a decision's reason; an unknown one still gets a sentence."""
    if reason in NOT_ACTUATED:
        return f"the bolt did not move: {NOT_ACTUATED[reason]}"
    return DECISION_REASONS.get(reason, "the lock's rules refused it")


def decision_line(granted: bool, reason: str) -> str:
    """A remote unlock's answer in one line: granted but not driven is no unlock either."""
    if granted:
        return "unlocked"
    verdict = "not unlocked" if reason in NOT_ACTUATED else "refused"
    return f"{verdict}: {reason}: {decision_sentence(reason)}"
