"""The motor service's parts: bolt, door, buttons; and the simulated board's inputs."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from proto.policy import DIRECTIONS
from proto.schema import Message, between, one_of

BOLT_STATES = ("locked", "unlocked", "moving", "jammed", "unknown")
BUTTONS = ("set", "set-long", "lock", "key", "factory-reset")
# key: the mechanical key turned the cylinder; factory-reset: SET held 5 s at power-up (L-30)
SIM_ACTIONS = ("button", "door", "state", "tamper", "key")


class Actuate(Message, family="motor", event="actuate"):
    """Drive the bolt. Obeyed from policy alone (checked against the CURVE identity)."""

    action: str = one_of("lock", "unlock")
    direction: str = one_of(*DIRECTIONS)


class Bolt(Message, family="motor", event="bolt"):
    """Where the bolt is. A drive's reports carry the Actuate's cause as theirs.

    interrupted names the drive a restart of the motor found cut short ("lock" or
    "unlock"): the motor finishes a lock, leaves an unlock where it stopped, and policy
    raises the alarm."""

    state: str = one_of(*BOLT_STATES)
    reason: str = ""
    interrupted: str = one_of("", "lock", "unlock", default="")


class DriveInterrupted(Message, family="motor", event="interrupted"):
    """The motor restarted and found its last accepted drive unfinished (issue 11).

    A request to policy, repeated until answered: the restart's events may reach no one,
    and this one must be logged. found is the bolt at the restart; state, once the motor
    dealt with it (a lock finished, an unlock left where it stopped)."""

    action: str = one_of("lock", "unlock")
    found: str = one_of(*BOLT_STATES)
    state: str = one_of(*BOLT_STATES)


class Door(Message, family="motor", event="door"):
    open: bool


class Tamper(Message, family="motor", event="tamper"):
    """The front panel's tamper switch: removed is the anti-tamper alarm (L-29)."""

    removed: bool


class Siren(Message, family="motor", event="siren"):
    """Sound the siren for a while (policy only); 0 silences it."""

    seconds: float = between(0, 600)


class Chime(Message, family="motor", event="chime"):
    """Ring the doorbell chime on the buzzer (policy only, L-23); never over the siren.
    volume is the owner's (L-36): 0 is silent (refused `silent`), 1-3 the buzzer's level."""

    volume: int = between(0, 3, default=2)


class Button(Message, family="motor", event="button"):
    button: str = one_of(*BUTTONS)


class Gesture(NamedTuple):
    id: str  # its Button event's
    age_s: float  # how long ago SET was let go, by the motor's clock


def reset_gesture(motor_detail: dict[str, Any]) -> Gesture | None:
    """L-30's gesture from the motor's status, while ✓ may still follow it; None if there
    is none, or if the detail is not of that shape."""
    gesture = motor_detail.get("reset_gesture")
    if not isinstance(gesture, dict):
        return None
    ident, age = gesture.get("id"), gesture.get("age_s")
    if isinstance(age, bool) or not isinstance(age, int | float):
        return None
    if not (isinstance(ident, str) and ident and 0 <= age < math.inf):
        return None
    return Gesture(ident, float(age))


class SimBoard(Message, family="motor", event="sim"):
    """Acts on the simulated board (from `lockmesh sim`): press a button, open the door."""

    action: str = one_of(*SIM_ACTIONS)
    arg: str = ""
