"""The device secret: random bytes made once, 0600, never in the repository."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 32


def device_secret(path: Path) -> bytes:
    """Read the secret, creating it on first start; refuse one that is readable by others."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path} must be readable by its owner only (chmod 600)")
    data = path.read_bytes()
    if len(data) != SECRET_BYTES:
        raise ValueError(f"{path} holds {len(data)} bytes, expected {SECRET_BYTES}")
    return data
