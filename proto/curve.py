"""Per-identity CURVE keys: created once, secrets 0600 in a 0700 folder, public keys 0640.

A public key is no secret: 0640 lets the lock's group read it (on a Pi every service reads
every public key, ops/deploy.py), and the folder keeps everyone else out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq

from proto import files

PUBLIC_MODE = 0o640


@dataclass(frozen=True)
class Identity:
    name: str
    public: bytes  # z85
    secret: bytes  # z85


def ensure_keys(keys_dir: Path, names: tuple[str, ...]) -> None:
    """Create the key pairs that are missing; never replace an existing one."""
    files.private_dir(keys_dir)
    for name in names:
        public, secret = keys_dir / f"{name}.key", keys_dir / f"{name}.secret"
        files.tighten(secret)
        if public.exists() and secret.exists():
            continue
        pub, sec = zmq.curve_keypair()
        files.write_private(secret, sec)  # the secret first: a pair is whole once .key exists
        files.write_private(public, pub, PUBLIC_MODE)


def load_identity(keys_dir: Path, name: str) -> Identity:
    """This identity's key pair; its secret refused if group or others can read it."""
    secret = files.read_private(keys_dir / f"{name}.secret").strip()
    return Identity(name, public_key(keys_dir, name), secret)


def public_key(keys_dir: Path, name: str) -> bytes:
    path = keys_dir / f"{name}.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        raise files.MissingFile(f"{path} is missing") from None


def load_keyring(keys_dir: Path) -> dict[bytes, str]:
    """Every known public key, mapped to the name of its identity."""
    return {p.read_bytes().strip(): p.stem for p in sorted(keys_dir.glob("*.key"))}
