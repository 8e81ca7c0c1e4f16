"""Where a lock keeps its things: data, run and key folders, and every endpoint."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# The processes of the mesh, in the order supervisord starts them.
SERVICES = ("policy", "motor", "power", "biometric", "face", "keypad", "watchdog")
# Identities that hold a CURVE key but are not supervised services.
CLIENTS = ("procevents", "cli", "bench")
IDENTITIES = SERVICES + CLIENTS
# Publishers the tap and the watchdog listen to.
PUBLISHERS = SERVICES + ("procevents",)

IPC_PATH_MAX = 100  # the OS allows ~107 bytes for a socket path; keep a margin


def default_data_dir() -> Path:
    env = os.environ.get("LOCKMESH_DATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "lockmesh"


@dataclass(frozen=True)
class Layout:
    data: Path

    @classmethod
    def at(cls, data: str | os.PathLike | None) -> "Layout":
        return cls(Path(data).resolve() if data else default_data_dir().resolve())

    @property
    def run(self) -> Path:
        """Sockets and supervisord's files; moved to a short path when the data path is deep."""
        run = self.data / "run"
        if len(str(run)) + len("/watchdog.pub") + len("ipc://") <= IPC_PATH_MAX:
            return run
        digest = hashlib.sha1(str(self.data).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"lockmesh-{digest}"

    @property
    def keys(self) -> Path:
        return self.data / "keys"

    @property
    def logs(self) -> Path:
        return self.data / "log"

    @property
    def config_file(self) -> Path:
        return self.data / "lockmesh.toml"

    def pub(self, name: str) -> str:
        return f"ipc://{self.run}/{name}.pub"

    def cmd(self, name: str) -> str:
        return f"ipc://{self.run}/{name}.cmd"

    def starts_file(self, name: str) -> Path:
        return self.run / f"{name}.starts"
