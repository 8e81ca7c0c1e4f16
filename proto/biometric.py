"""Requests to the recognition services (face, fingerprint, palm vein)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proto.schema import Message, between, one_of, secret


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


TEMPLATE_KINDS = ("face", "fingerprint", "palm-vein")


@dataclass(frozen=True)
class TemplateSave(Message, family="biometric", event="template_save"):
    """A template to keep for a person; policy seals it at rest (L-10)."""

    kind: str = one_of(*TEMPLATE_KINDS)
    person: str = ""
    template: bytes = secret(b"")


@dataclass(frozen=True)
class TemplatesFetch(Message, family="biometric", event="templates"):
    """The sealed templates of a kind, opened, for the one service that matches them."""

    kind: str = one_of(*TEMPLATE_KINDS)
    offset: int = between(0, 10_000, default=0)
    limit: int = between(1, 32, default=32)


@dataclass(frozen=True)
class Templates(Message, family="biometric", event="templates_reply"):
    items: list[dict[str, Any]] = secret()  # person, slot, template: never in the tap
    more: bool = False
