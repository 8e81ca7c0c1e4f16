"""Where a lock keeps its things: data, run and key folders, and every endpoint."""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from proto import files

# The processes of the mesh, in the order supervisord starts them.
SERVICES = (
    "policy", "motor", "power", "biometric", "face", "keypad", "gateway", "bridge", "ble",
    "watchdog",
)  # fmt: skip
# Services of parts a lock may be made without (config mesh.without); the others are the lock.
OPTIONAL = ("biometric", "face", "gateway", "bridge", "ble")
# Identities that hold a CURVE key but are not supervised services.
CLIENTS = ("procevents", "cli", "bench")
IDENTITIES = SERVICES + CLIENTS
# Publishers the tap and the watchdog listen to.
PUBLISHERS = SERVICES + ("procevents",)

IPC_PATH_MAX = 100  # the OS allows ~107 bytes for a socket path; keep a margin
# The longest socket name in a run folder, "/procevents.pub" or the like.
LONGEST_SOCKET = f"/{max(IDENTITIES, key=len)}.pub"
RUN_RECORD = "run.path"  # in DATA: the path of the short run folder of a deep data path


class NoLock(FileNotFoundError):
    """No lock at this data folder (or not one this user may use); the message says why."""


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
    def at(cls, data: str | os.PathLike[str] | None) -> "Layout":
        return cls(Path(data).resolve() if data else default_data_dir().resolve())

    @property
    def run(self) -> Path:
        """Sockets and supervisord's files: DATA/run, or when the data path is too deep for
        socket paths, a short private folder made by mkdtemp and recorded in DATA/run.path.

        Never a predictable shared name: another user could make it first and swap
        supervisord.conf under us. Every process of the lock finds the folder through the
        record, and uses it only if it is still a folder of ours that nobody else can
        write; otherwise a new one is made (and recorded) in its place."""
        if self.run_fits_in_data:
            return self.data / "run"
        return self.existing_run() or self._make_short_run()

    @property
    def run_fits_in_data(self) -> bool:
        return fits(self.data / "run")

    def existing_run(self) -> Path | None:
        """The run folder if it is there and safe to use; None rather than make one."""
        if self.run_fits_in_data:
            run = self.data / "run"
            return run if run.is_dir() else None
        try:
            run = Path((self.data / RUN_RECORD).read_text().strip())
        except (OSError, UnicodeDecodeError):
            return None
        return run if run.is_absolute() and fits(run) and self._ours(run) else None

    def _ours(self, run: Path) -> bool:
        """A real folder (not a link), owned by us or by the data folder's owner, 0700."""
        try:
            st, owner = run.lstat(), self.data.stat().st_uid
        except OSError:
            return False
        return (
            stat.S_ISDIR(st.st_mode)
            and st.st_uid in (os.geteuid(), owner)
            and not st.st_mode & files.NOT_OURS
        )

    def _make_short_run(self) -> Path:
        with _exclusive(self.data):  # two processes starting at once make one folder
            run = self.existing_run()
            if run is None:
                run = Path(tempfile.mkdtemp(prefix="lockmesh-", dir=short_parent()))
                files.write_private(self.data / RUN_RECORD, f"{run}\n".encode())
            return run

    @property
    def keys(self) -> Path:
        return self.data / "keys"

    @property
    def logs(self) -> Path:
        return self.data / "log"

    @property
    def config_file(self) -> Path:
        return self.data / "lockmesh.toml"

    @property
    def witness_file(self) -> Path:
        """Where the watchdog keeps the newest head of the log it saw (proto/witness.py):
        on a Pi, in the watchdog account's private working folder (ops/deploy.py), out of
        reach of policy, the store's owner."""
        return self.data / "work" / "lockmesh-watchdog" / "audit-head.json"

    @property
    def drive_journal(self) -> Path:
        """The motor's last accepted drive (services/motor/journal.py): on a Pi, in the
        motor account's private working folder (ops/deploy.py); only the motor writes it."""
        return self.data / "work" / "lockmesh-motor" / "motor-state.json"

    @property
    def snapshots(self) -> Path:
        """The doorbell's snapshots (L-23): the face service writes them, the gateway reads
        them. On a Pi deploy makes it, the face account's with the gateway's group
        (ops/deploy.py), outside both accounts' private folders."""
        return self.data / "snapshots"

    def snapshot(self, name: str) -> Path:
        """The file of the snapshot name, once proto.biometric.snapshot_name passed it."""
        return self.snapshots / f"{name}.jpg"

    @property
    def gateway_dir(self) -> Path:
        """The gateway's private folder (issue 13): its TLS device certificate and key; on
        a Pi, the gateway account's private working folder (ops/deploy.py)."""
        return self.data / "work" / "lockmesh-gateway"

    def pub(self, name: str) -> str:
        return f"ipc://{self.run}/{name}.pub"

    def video(self, name: str) -> str:
        """A service's live video socket, apart from the bus (services/face/video.py)."""
        return f"ipc://{self.run}/{name}.video"

    def cmd(self, name: str) -> str:
        return f"ipc://{self.run}/{name}.cmd"

    def starts_file(self, name: str) -> Path:
        return self.run / f"{name}.starts"

    def counters_file(self, name: str) -> Path:
        """A service's drops and gaps, kept across restarts (issue 11): an attack must not
        reset them. Saved on every beat that changed them and when the service stops."""
        return self.logs / f"{name}.counters.json"


def fits(run: Path) -> bool:
    """Whether every socket of a run folder at this path stays under the OS's limit."""
    return len("ipc://") + len(str(run)) + len(LONGEST_SOCKET) <= IPC_PATH_MAX


def short_parent() -> str:
    """Where a short run folder is made: $XDG_RUNTIME_DIR when it is a private folder of
    this user (systemd makes it 0700), else the temporary folder, else /tmp."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    room = len("/lockmesh-xxxxxxxx")
    for parent in (xdg, tempfile.gettempdir(), "/tmp"):
        if parent and os.path.isabs(parent) and fits(Path(parent + room * "x")):
            if parent != xdg or _private_of_mine(Path(parent)):
                return parent
    return "/tmp"


def _private_of_mine(folder: Path) -> bool:
    try:
        st = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


@contextmanager
def _exclusive(data: Path) -> Iterator[None]:
    try:
        fd = os.open(data, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NoLock(f"no lock at {data}: no such folder") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
