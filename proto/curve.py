"""Per-identity CURVE keys: created once, secrets 0600, public keys readable by the mesh."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq


@dataclass(frozen=True)
class Identity:
    name: str
    public: bytes  # z85
    secret: bytes  # z85


def ensure_keys(keys_dir: Path, names: tuple[str, ...]) -> None:
    """Create the key pairs that are missing; never replace an existing one."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o755)
    for name in names:
        public, secret = keys_dir / f"{name}.key", keys_dir / f"{name}.secret"
        if public.exists() and secret.exists():
            continue
        pub, sec = zmq.curve_keypair()
        _write(secret, sec, 0o600)
        _write(public, pub, 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_identity(keys_dir: Path, name: str) -> Identity:
    secret = (keys_dir / f"{name}.secret").read_bytes().strip()
    return Identity(name, public_key(keys_dir, name), secret)


def public_key(keys_dir: Path, name: str) -> bytes:
    return (keys_dir / f"{name}.key").read_bytes().strip()


def load_keyring(keys_dir: Path) -> dict[bytes, str]:
    """Every known public key, mapped to the name of its identity."""
    return {p.read_bytes().strip(): p.stem for p in sorted(keys_dir.glob("*.key"))}
