"""Prepares a Raspberry Pi's data directory and supervisord file; run as root by install.sh.

    python -m ops.deploy --data /var/lib/lockmesh --conf /etc/lockmesh/supervisord.conf

Each service runs as its own account, lockmesh-<service>, whose primary group is its own
(created by ops/pi/install.sh); every account is also in the group lockmesh. Then:
- a service alone reads its CURVE secret (0600); the CLI's and the bench's stay root's;
- the public keys and lockmesh.toml are readable by the group lockmesh, nobody else;
- only policy writes in the data directory (lock.db, device.secret): what it creates has
  its own group, so no other service can open the store;
- the run directory is setgid lockmesh, so every socket a service binds there (mode 0770
  under umask 007) is reachable by the group, and sticky, so only a socket's owner can
  remove or replace it;
- each account works in a private directory DATA/work/<account> (lgpio makes its
  notification pipes in the working directory);
- the doorbell's snapshots (DATA/snapshots) are the face account's, in the gateway's
  group, setgid so each picture face writes (0640) is the gateway's to read and serve.

Everything deploy will do is a plan of Entry (path, owner, group, mode), built by pure
functions and printed by --dry-run; only make() and apply() touch the disk.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from ops import supervisor_conf
from proto import config as configuration
from proto import curve
from proto.layout import IDENTITIES, SERVICES, Layout

GROUP = "lockmesh"
ROOT = "root"
# The supervised processes, each with its account: the services and the event listener.
ACCOUNTS = {name: f"lockmesh-{name}" for name in (*SERVICES, "procevents")}
PI_CONFIG = (
    "# Written by ops.deploy; see ops/pi/README.md for the pins.\n"
    '[board]\nkind = "pi"\n'
    '[gateway]\nhost = "0.0.0.0"\ntls = true\n'  # the app on the LAN, pinned certificate
    '[ble]\ntransport = "bluez"\n'  # phone keys over the Pi's radio (issue 16)
)
# Files a service makes itself; when deploy finds one (a redeploy, or a lock first run as
# root), it gives it back to its owner. Which service, and for which board kind.
POLICY_FILES = ("device.secret", "lock.db", "lock.db-wal", "lock.db-shm")
SIM_MOTOR_FILES = ("sim-board.json",)


class DeployError(RuntimeError):
    """Deploy refuses to go on; the message says why."""


@dataclass(frozen=True)
class Entry:
    """Who owns a path and its mode, once deployed."""

    path: Path
    owner: str
    group: str
    mode: int
    is_dir: bool = False
    if_present: bool = False  # made by a service, not by deploy: fixed only when found

    def __str__(self) -> str:
        kind = "dir " if self.is_dir else "file"
        note = "  (if present)" if self.if_present else ""
        return f"{kind} {self.mode:04o} {self.owner}:{self.group} {self.path}{note}"


def workdir(layout: Layout, account: str) -> Path:
    """The private working directory of an account."""
    return layout.data / "work" / account


def plan(
    layout: Layout,
    *,
    board: str = "pi",
    accounts: dict[str, str] = ACCOUNTS,
    group: str = GROUP,
) -> list[Entry]:
    """Owners and modes of everything deploy makes, directories first.

    accounts and group are parameters only so that a test can map them to accounts that
    exist on its machine; each account's own group has the account's name.
    """
    data, keys = layout.data, layout.keys
    policy = accounts["policy"]
    # On the simulated board motor writes sim-board.json next to lock.db: the group may
    # then create files in the data directory, and the sticky bit keeps each one's own.
    data_mode = 0o1770 if board == "sim" else 0o750
    entries = [
        Entry(data, policy, group, data_mode, is_dir=True),
        Entry(keys, ROOT, group, 0o750, is_dir=True),
        Entry(layout.logs, ROOT, ROOT, 0o750, is_dir=True),  # supervisord (root) writes them
        Entry(layout.run, ROOT, group, 0o3770, is_dir=True),  # setgid + sticky, see above
        Entry(data / "work", ROOT, group, 0o750, is_dir=True),
        Entry(layout.snapshots, accounts["face"], accounts["gateway"], 0o2750, is_dir=True),
    ]
    for account in accounts.values():
        entries.append(Entry(workdir(layout, account), account, account, 0o700, is_dir=True))
    entries.append(Entry(layout.config_file, ROOT, group, 0o640))
    for name in IDENTITIES:
        entries.append(Entry(keys / f"{name}.key", ROOT, group, 0o640))
        owner = accounts.get(name, ROOT)  # cli and bench are root's, who runs the CLI
        entries.append(Entry(keys / f"{name}.secret", owner, owner, 0o600))
    for filename in POLICY_FILES:
        entries.append(Entry(data / filename, policy, policy, 0o600, if_present=True))
    if board == "sim":
        motor = accounts["motor"]
        for filename in SIM_MOTOR_FILES:
            entries.append(Entry(data / filename, motor, motor, 0o600, if_present=True))
    return entries


def board_kind(layout: Layout) -> str:
    """The board of the lock's configuration, or "pi" when deploy is to write it."""
    if not layout.config_file.exists():
        return "pi"
    return configuration.load(layout.config_file)["board"]["kind"]


def render_conf(layout: Layout, python: str, accounts: dict[str, str] = ACCOUNTS) -> str:
    """supervisord's file: each process as its account, in its own working directory."""
    directories = {name: workdir(layout, account) for name, account in accounts.items()}
    return supervisor_conf.render(layout, python=python, users=accounts, directories=directories)


def missing_names(entries: list[Entry]) -> list[str]:
    """Owners and groups of the plan that this system does not know (install.sh makes them)."""
    missing: list[str] = []
    for e in entries:
        for name, lookup in ((e.owner, pwd.getpwnam), (e.group, grp.getgrnam)):
            try:
                lookup(name)
            except KeyError:
                if name not in missing:
                    missing.append(name)
    return missing


def _mkdir(path: Path) -> None:
    if path.is_symlink():
        raise DeployError(f"{path} is a symbolic link: refusing to deploy through it")
    path.mkdir(parents=True, exist_ok=True)


def make(layout: Layout, conf: Path, python: str, accounts: dict[str, str] = ACCOUNTS) -> None:
    """Create the folders, the keys that are missing, lockmesh.toml if there is none, and
    supervisord's file. Owners and modes are apply()'s business."""
    for folder in (layout.data, layout.keys, layout.logs, layout.run, layout.data / "work",
                   layout.snapshots):  # fmt: skip
        _mkdir(folder)
    for account in accounts.values():
        _mkdir(workdir(layout, account))
    curve.ensure_keys(layout.keys, IDENTITIES)
    if not layout.config_file.exists():
        layout.config_file.write_text(PI_CONFIG)
    _mkdir(conf.parent)
    conf.write_text(render_conf(layout, python, accounts))
    os.chmod(conf, 0o644)  # no secret in it


def apply(entries: list[Entry]) -> None:
    """chown and chmod each entry, never through a symbolic link (a service that can write
    in a folder could plant one to make root chown something else)."""
    for e in entries:
        try:
            fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            if e.if_present:
                continue
            raise
        except OSError as err:  # ELOOP: the last component is a symbolic link
            raise DeployError(f"{e.path}: {err.strerror}: refusing to change it") from err
        try:
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISDIR(mode) if e.is_dir else stat.S_ISREG(mode)):
                raise DeployError(f"{e.path} is not a {'directory' if e.is_dir else 'file'}")
            os.fchown(fd, pwd.getpwnam(e.owner).pw_uid, grp.getgrnam(e.group).gr_gid)
            os.fchmod(fd, e.mode)
        finally:
            os.close(fd)


def describe(layout: Layout, conf: Path, board: str, entries: list[Entry]) -> str:
    """What a deploy would do, for --dry-run."""
    lines = [f"board: {board}"]
    if not layout.config_file.exists():
        lines.append(f'write {layout.config_file} ([board] kind = "pi")')
    lines.append(f"create the CURVE key pairs that are missing in {layout.keys}")
    lines.append(f"write {conf} (0644): supervisord, each process as its lockmesh- account")
    lines.extend(str(e) for e in entries)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.deploy", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("/var/lib/lockmesh"))
    p.add_argument("--conf", type=Path, default=Path("/etc/lockmesh/supervisord.conf"))
    p.add_argument("--python", default=sys.executable, help="the venv's python")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    args = p.parse_args(argv)
    layout = Layout.at(args.data)
    if not layout.run_fits_in_data:
        print(
            f"lockmesh deploy: {layout.data} is too deep for socket paths (the run folder "
            "would move out of it): use a short path such as /var/lib/lockmesh",
            file=sys.stderr,
        )
        return 2
    try:
        board = board_kind(layout)
    except (configuration.ConfigError, ValueError) as e:
        print(f"lockmesh deploy: {e}", file=sys.stderr)
        return 2
    entries = plan(layout, board=board)
    if args.dry_run:
        print(describe(layout, args.conf, board, entries))
        missing = missing_names(entries)
        if missing:
            print(f"not on this system yet (install.sh creates them): {', '.join(missing)}")
        return 0
    if os.geteuid() != 0:
        print("lockmesh deploy: run as root (or use --dry-run)", file=sys.stderr)
        return 1
    missing = missing_names(entries)
    if missing:
        print(
            f"lockmesh deploy: no such account or group: {', '.join(missing)} "
            "(ops/pi/install.sh creates them)",
            file=sys.stderr,
        )
        return 1
    try:
        make(layout, args.conf, args.python)
        apply(entries)
    except DeployError as e:
        print(f"lockmesh deploy: {e}", file=sys.stderr)
        return 1
    print(f"deployed: data {layout.data} (board {board}), supervisord config {args.conf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
