"""The lock as Home Assistant is told it: the bus's events folded into retained payloads.

The lock entity's state is the bolt's truth (the motor's reports), with the door: HA's
`OPEN` is a lock whose bolt is back and whose door stands open. A moving bolt is
`LOCKING` or `UNLOCKING` by where it last stood; moving from nowhere known says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.bridge.discovery import OFF, ON

UNKNOWN = "None"  # HA's payload_reset: the lock's state becomes unknown


def on_off(value: bool) -> str:
    return ON if value else OFF


@dataclass
class LockView:
    bolt: str = "unknown"  # proto.board.BOLT_STATES
    stood: str = ""  # where the bolt last stood still: locked or unlocked
    door_open: bool | None = None
    battery_percent: float | None = None
    battery_low: bool | None = None
    tampered: bool | None = None
    jammed: bool | None = None

    def set_bolt(self, state: str) -> None:
        self.bolt = state
        if state in ("locked", "unlocked"):
            self.stood = state
            self.jammed = False
        elif state == "jammed":
            self.jammed = True

    def unsure(self) -> bool:
        """The bolt or the door not known yet (policy had not heard the motor when asked)."""
        return self.bolt == "unknown" or self.door_open is None

    def lock_state(self) -> str | None:
        """The lock entity's payload, or None when there is nothing true to say."""
        if self.bolt == "jammed":
            return "JAMMED"
        if self.bolt == "moving":
            return {"locked": "UNLOCKING", "unlocked": "LOCKING"}.get(self.stood)
        if self.bolt == "locked":
            return "LOCKED"
        if self.bolt == "unlocked":
            return "OPEN" if self.door_open else "UNLOCKED"
        return UNKNOWN

    def payloads(self) -> dict[str, str]:
        """Each retained state by its key (topics.state(key)), for the values known."""
        known: dict[str, str | None] = {
            "lock": self.lock_state(),
            "door": None if self.door_open is None else on_off(self.door_open),
            "battery": None if self.battery_percent is None else f"{self.battery_percent:.0f}",
            "battery_low": None if self.battery_low is None else on_off(self.battery_low),
            "tamper": None if self.tampered is None else on_off(self.tampered),
            "jam": None if self.jammed is None else on_off(self.jammed),
        }
        return {key: value for key, value in known.items() if value is not None}
