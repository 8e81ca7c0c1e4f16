"""Imports every message family, so the registry knows every type before decoding."""

from proto import biometric, board, control, health, keypad, policy, power, process  # noqa: F401
from proto.schema import REGISTRY

__all__ = ["REGISTRY"]
