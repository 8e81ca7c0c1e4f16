"""What the panel's state machine asks for: say, light, ask; and the keys it lights."""

from __future__ import annotations

from dataclasses import dataclass, field

from proto.schema import Message

DIGITS = tuple("0123456789")
ENTRY_KEYS = list(DIGITS) + ["back", "ok"]


@dataclass(frozen=True)
class Say:
    prompt: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Light:
    keys: list[str]
    flashing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ask:
    """Send a request; purpose names the step that waits for its answer."""

    purpose: str
    request: Message
    digits: int = 0  # a code's length, announced on the bus (never the code)
    to: str = "policy"  # the service that answers


Effect = Say | Light | Ask


def flash_number(number: str) -> list[Light]:
    """L-2: a new person's number is announced and its digits flash in turn, one by one."""
    return [Light([digit], flashing=[digit]) for digit in number if digit in DIGITS]
