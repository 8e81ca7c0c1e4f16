"""Biometric templates sealed at rest (L-10): AES-256-GCM under a key from the device secret.

The associated data names the row a template belongs to (kind, person, id), so a sealed
template copied onto another person's row, or another kind, no longer opens.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class VaultError(ValueError):
    """A sealed template that does not open: tampered with, moved, or another key's."""


class Vault:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @staticmethod
    def _bound_to(kind: str, person: str, slot: int) -> bytes:
        return f"{kind}:{person}:{slot}".encode()

    def seal(self, template: bytes, *, kind: str, person: str, slot: int) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, template, self._bound_to(kind, person, slot))

    def open(self, sealed: bytes, *, kind: str, person: str, slot: int) -> bytes:
        nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, self._bound_to(kind, person, slot))
        except InvalidTag:
            raise VaultError(f"the {kind} template {slot} of {person} does not open") from None
