"""Private files: secrets written whole and 0600 in 0700 folders, refused when others can read.

A secret is written through a temporary file of its own (mkstemp, in the same folder),
flushed to disk and then renamed or linked into place, so a crash leaves the old file or
the new one, never an empty or half-written one. Loading refuses a secret that its group
or others can read, naming the file, as ssh does.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
NOT_OURS = 0o077  # the group's and others' bits


class FileRefused(Exception):
    """A file the lock will not use; the message names it and says why, in one line."""


class UnsafeFile(FileRefused, PermissionError):
    """A secret that group or others can read, or a folder that is not the lock's own."""


class MissingFile(FileRefused, FileNotFoundError):
    """A file the lock needs is not there."""


def private_dir(path: Path) -> Path:
    """Make a folder 0700 (with its parents); an existing one loses what others may do.

    An existing folder keeps its group's bits: on a Pi, deploy gives the lock's group
    access to some folders on purpose (ops/deploy.py)."""
    if path.is_symlink():
        raise UnsafeFile(f"{path} is a symbolic link: refusing to keep private files there")
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o007:
        os.chmod(path, mode & ~0o007)
    return path


def tighten(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Take group and others' access away from a file we own, if it exists (old locks)."""
    with contextlib.suppress(FileNotFoundError):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & NOT_OURS:
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)


def write_private(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Replace path with data, whole: a unique temporary file, fsync, rename."""
    tmp = _written_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def create_private(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> bool:
    """Create path with data, whole, unless it exists; False when another process (or an
    earlier start) made it first. link() is the atomic "create if absent" for a full file."""
    tmp = _written_temp(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    _sync_dir(path.parent)
    return True


def read_private(path: Path) -> bytes:
    """A secret's bytes; refused, naming the file, when group or others can read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingFile(f"{path} is missing") from None
    with os.fdopen(fd, "rb") as f:
        check_private(path, os.fstat(fd).st_mode)  # the file opened, not a name swapped since
        return f.read()


def check_private(path: Path, mode: int | None = None) -> None:
    mode = stat.S_IMODE(path.stat().st_mode if mode is None else mode)
    if mode & NOT_OURS:
        raise UnsafeFile(
            f"permissions {mode:04o} for {path} are too open: a secret must be readable "
            f"by its owner only (chmod 600 {path})"
        )


def _written_temp(path: Path, data: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _sync_dir(folder: Path) -> None:
    """The rename itself survives a power cut only once its folder is on disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
