"""What the panel says of the access rules (issue 15): a refusal's reason in words, a
lockout at the door (L-20), what a multi-factor attempt still needs, passage mode."""

from __future__ import annotations

from services.keypad.effects import ENTRY_KEYS, Effect, Light, Say

# A refused entry's reason, as the panel says it; any other reason: "verification failed"
# (so a guess learns no more from the panel than from the log's owner-only reasons)
REFUSED = {
    "lockout": "system-locked",  # L-20: not "verification failed" while locked
    "user-disabled": "user-disabled",
    "vacation-mode": "vacation-mode",
    "privacy-mode": "privacy-mode",
    "factor-timeout": "factor-timeout",
}
METHOD_WORDS = {"pin": "passcode", "face": "face", "fingerprint": "fingerprint",
                "palm-vein": "palm vein", "ble": "phone key"}  # fmt: skip


def refused(reason: str) -> str | None:
    """The prompt for a refused entry; None where the factors' event speaks instead."""
    if reason == "more-factors":
        return None
    return REFUSED.get(reason, "verify-failed")


def granted(reason: str) -> list[Effect]:
    """A granted entry: passage mode says so (the bolt is already open, nothing moves)."""
    return [Say("passage-mode")] if reason == "passage-mode" else []


def lockout(active: bool) -> list[Effect]:
    """A lockout began: the panel says so at once, whatever it was doing (L-20)."""
    return [Say("system-locked")] if active else []


def factors(still: int, shown: list[str], timed_out: bool) -> list[Effect]:
    """What a multi-factor attempt still needs, or that it ran out of time (issue 15)."""
    if timed_out:
        return [Say("factor-timeout")]
    words = ", ".join(METHOD_WORDS.get(m, m) for m in shown) or "credential"
    return [
        Say("more-factors", {"shown": words, "still": str(still)}),
        Light(ENTRY_KEYS),
    ]
