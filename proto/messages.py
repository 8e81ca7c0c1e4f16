"""Imports every message family, so the registry knows every type before decoding."""

from proto import (  # noqa: F401
    biometric,
    ble,
    board,
    bridge,
    control,
    health,
    keypad,
    owner,
    policy,
    power,
    process,
)
from proto.schema import REGISTRY

__all__ = ["REGISTRY"]
