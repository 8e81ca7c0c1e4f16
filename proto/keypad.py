"""The front panel: keys, prompts, lit keys, entered codes."""

from __future__ import annotations

from dataclasses import field

from proto.schema import Message, between, one_of

KEYS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "back", "ok", "home", "bell")
INPUTS = KEYS + ("touch", "hold-0")  # hold-0: 0 held until it flashes twice (L-21)
INDICATORS = ("battery",)  # lit, never pressed: 🔋 shows a low battery (L-11, L-28)


class Key(Message, family="keypad", event="key"):
    """A key press as the tap shows it: digits are not told apart, so codes stay secret."""

    key: str = one_of(*(INPUTS + ("digit",)))
    audible: bool = True  # the beep; off while the lock is muted (L-21) or at volume 0
    volume: int = between(0, 3, default=2)  # the owner's volume (L-36): the beep's level


class Prompt(Message, family="keypad", event="prompt"):
    """What the panel says now: a stable id, its parameters, and the English text."""

    prompt: str
    text: str
    params: dict[str, str] = field(default_factory=dict)
    audible: bool = True  # spoken; off while the lock is muted (L-21) or at volume 0
    volume: int = between(0, 3, default=2)  # the owner's volume (L-36): the voice's level


class Lit(Message, family="keypad", event="lit"):
    """Which keys (and indicators) are lit and which of them flash."""

    keys: list[str]
    flashing: list[str] = field(default_factory=list)


class CodeEntered(Message, family="keypad", event="code"):
    """A code was typed and confirmed; the digits go to policy by request, never here."""

    digits: int = between(0, 64)
    purpose: str = one_of("unlock", "new", "repeat", "menu")


class SimKeys(Message, family="keypad", event="sim_keys"):
    """Presses keys on the simulated keypad (from `lockmesh sim`)."""

    keys: list[str]
