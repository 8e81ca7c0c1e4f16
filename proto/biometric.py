"""Requests to the recognition services (face, fingerprint, palm vein)."""

from __future__ import annotations

from dataclasses import dataclass

from proto.schema import Message, one_of


@dataclass(frozen=True)
class FaceEnrol(Message, family="face", event="enrol"):
    person: str


@dataclass(frozen=True)
class FaceVerify(Message, family="face", event="verify"):
    """Look for a face now (the manual trigger after a keypad touch, L-18)."""


@dataclass(frozen=True)
class BioEnrol(Message, family="biometric", event="enrol"):
    person: str
    modality: str = one_of("finger", "palm")


@dataclass(frozen=True)
class BioVerify(Message, family="biometric", event="verify"):
    modality: str = one_of("finger", "palm")
