"""Prepares a Raspberry Pi's data directory and supervisord file; run as root by install.sh.

Each service runs as its own account (lockmesh-<service>) and alone can read its CURVE
secret; the public keys and the configuration are readable by the group lockmesh. Only
policy writes in the data directory (lock.db, device.secret).

    python -m ops.deploy --data /var/lib/lockmesh --conf /etc/lockmesh/supervisord.conf
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import sys
from dataclasses import dataclass
from pathlib import Path

from ops import supervisor_conf
from proto import curve
from proto.layout import IDENTITIES, SERVICES, Layout

GROUP = "lockmesh"
ACCOUNTS = {name: f"lockmesh-{name}" for name in (*SERVICES, "procevents")}
PI_CONFIG = '[board]\nkind = "pi"\n'


@dataclass(frozen=True)
class Entry:
    """Who owns a path and its mode."""

    path: Path
    owner: str
    group: str
    mode: int

    def __str__(self) -> str:
        return f"{self.mode:04o} {self.owner}:{self.group} {self.path}"


def plan(layout: Layout) -> list[Entry]:
    """Ownership and modes of everything deploy makes, in the order to apply them."""
    data, keys, run = layout.data, layout.keys, layout.run
    entries = [
        Entry(data, ACCOUNTS["policy"], GROUP, 0o750),
        Entry(keys, "root", GROUP, 0o750),
        Entry(layout.logs, "root", GROUP, 0o750),
        Entry(run, "root", GROUP, 0o770),  # every service binds its sockets here
        Entry(layout.config_file, "root", GROUP, 0o640),
    ]
    for name in IDENTITIES:
        entries.append(Entry(keys / f"{name}.key", "root", GROUP, 0o640))
        owner = ACCOUNTS.get(name, "root")  # cli and bench stay root's
        entries.append(Entry(keys / f"{name}.secret", owner, GROUP if owner == "root" else owner,
                             0o600))
    return entries


def make(layout: Layout, conf: Path, python: str) -> list[Entry]:
    """Create folders, keys, config and supervisord's file; return what to chown."""
    for folder in (layout.data, layout.keys, layout.logs, layout.run, conf.parent):
        folder.mkdir(parents=True, exist_ok=True)
    curve.ensure_keys(layout.keys, IDENTITIES)
    if not layout.config_file.exists():
        layout.config_file.write_text(PI_CONFIG)
    conf.write_text(supervisor_conf.render(layout, python=python, users=ACCOUNTS))
    os.chmod(conf, 0o644)
    return plan(layout)


def apply(entries: list[Entry]) -> None:
    for e in entries:
        os.chown(e.path, pwd.getpwnam(e.owner).pw_uid, grp.getgrnam(e.group).gr_gid)
        os.chmod(e.path, e.mode)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.deploy", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("/var/lib/lockmesh"))
    p.add_argument("--conf", type=Path, default=Path("/etc/lockmesh/supervisord.conf"))
    p.add_argument("--python", default=sys.executable, help="the venv's python")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    args = p.parse_args(argv)
    layout = Layout.at(args.data)
    if layout.run != layout.data / "run":
        print(f"lockmesh deploy: {args.data} is too deep for socket paths", file=sys.stderr)
        return 2
    if args.dry_run:
        print("\n".join(map(str, plan(layout))))
        return 0
    apply(make(layout, args.conf, args.python))
    print(f"deployed: data {layout.data}, supervisord config {args.conf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
