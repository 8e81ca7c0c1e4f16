"""The device secret: random bytes made once, whole, 0600, never in the repository."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from proto import files

SECRET_BYTES = 32


class BadSecret(files.FileRefused, ValueError):
    """The device secret is there but unusable; the message names the file."""


def device_secret(path: Path, *, keyed: Path | None = None) -> bytes:
    """Read the secret, creating it whole on first start.

    Refused, naming the file: one that group or others can read, and one of the wrong
    size. An empty file is what a first start interrupted by an older version left (it
    created the file, then wrote it): when `keyed` (the store) does not exist either,
    nothing was ever keyed with it and it is made again; otherwise the lock refuses to
    start, since a new secret would silently void every passcode, template and the log's
    chain."""
    try:
        return read_device_secret(path)
    except files.MissingFile:
        pass
    except BadSecret:
        if path.stat().st_size or keyed is None or keyed.exists():
            raise
        files.write_private(path, secrets.token_bytes(SECRET_BYTES))
        return read_device_secret(path)
    files.create_private(path, secrets.token_bytes(SECRET_BYTES))  # or another start's
    return read_device_secret(path)


def read_device_secret(path: Path) -> bytes:
    """The secret as it is; never made (for reading a store, perhaps a copy)."""
    data = files.read_private(path)
    if len(data) != SECRET_BYTES:
        raise BadSecret(f"{path} holds {len(data)} bytes, expected {SECRET_BYTES}")
    return data


def subkey(secret: bytes, purpose: str) -> bytes:
    """One key per use of the device secret, so no two uses share a key."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def lock_id(secret: bytes) -> str:
    """A public name for this lock's secret, so witnesses keep apart the heads of two
    locks (or of one lock reinstalled with a new secret)."""
    return subkey(secret, "lock-id").hex()[:16]


@dataclass(frozen=True)
class Identity:
    """What the lock shows of itself (L-16) and a pairing app must name (L-17)."""

    serial: str
    verification_code: str


def identity(secret: bytes) -> Identity:
    """Serial number and verification code, derived from the device secret: stable."""
    digest = hmac.new(secret, b"identity", hashlib.sha256).hexdigest()
    return Identity("LM" + digest[:10].upper(), str(int(digest[10:20], 16) % 1_000_000).zfill(6))
