"""Bringing a lock's mesh up under supervisord and down again, and asking it how it is."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from typing import Any

from ops import supervisor_conf
from proto import config as configuration
from proto import curve, files, supervisor_rpc
from proto.bus import Bus
from proto.control import StatusReply, StatusRequest
from proto.health import MeshStatus, MeshStatusRequest
from proto.layout import IDENTITIES, RUN_RECORD, SERVICES, Layout
from proto.messages import REGISTRY  # noqa: F401


class MeshError(RuntimeError):
    """The mesh did not do what was asked; the message says who and why."""


@dataclass
class Up:
    started: bool  # False when it was already running
    seconds: float


# What an older version left readable by others: made private again at each start.
PRIVATE_FILES = ("device.secret", "lock.db", "lock.db-wal", "lock.db-shm")


def prepare(layout: Layout) -> None:
    """Folders and keys: created on first start (0700, secrets 0600), kept afterwards."""
    for folder in (layout.data, layout.logs):
        files.private_dir(folder)
    run = layout.run  # a deep data path: its short run folder is made (or checked) here
    if layout.run_fits_in_data:
        files.private_dir(run)
    curve.ensure_keys(layout.keys, IDENTITIES)
    for path in (*(layout.data / f for f in PRIVATE_FILES), *layout.logs.glob("*.log*")):
        files.tighten(path)
    configuration.load(layout.config_file)  # a broken lockmesh.toml fails here, not in 7 logs


def running(layout: Layout) -> bool:
    return bool(supervisor_rpc.processes(layout.run))


def up(layout: Layout, *, timeout: float | None = None) -> Up:
    """Start supervisord with the mesh; return once every service is healthy."""
    prepare(layout)
    begin = time.monotonic()
    started = not running(layout)
    if started:
        for name in SERVICES:
            layout.starts_file(name).unlink(missing_ok=True)
        conf = supervisor_conf.write(layout)
        subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
            check=True,
            cwd=layout.data,
            umask=0o077,  # its logs and every file of the mesh: the owner's only
        )
        # supervisord spawns the programs after its loop's first wait (1 s) or the first
        # request it hears, whichever comes first: ask at once, and they start now
        running(layout)
    if timeout is None:
        timeout = configuration.load(layout.config_file)["mesh"]["up_timeout_s"]
    unhealthy = wait_healthy(layout, timeout)
    if unhealthy:
        raise MeshError(
            f"not healthy after {timeout:.0f}s: {', '.join(unhealthy)} (see {layout.logs})"
        )
    return Up(started=started, seconds=time.monotonic() - begin)


def wait_healthy(layout: Layout, limit: float) -> list[str]:
    """Poll the watchdog until all are healthy; the names still unhealthy at the limit."""
    deadline = time.monotonic() + limit
    unhealthy = list(SERVICES)
    with Bus(layout, "cli") as bus:
        while time.monotonic() < deadline:
            mesh = mesh_status(bus, timeout=0.5)
            if mesh is not None:
                unhealthy = [n for n, s in mesh.items() if s.get("verdict") != "healthy"]
                if not unhealthy:
                    return []
            time.sleep(0.1)
    return unhealthy


def mesh_status(bus: Bus, timeout: float = 1.0) -> dict[str, dict[str, Any]] | None:
    answer = bus.client("watchdog").request(MeshStatusRequest(), timeout=timeout)
    if answer is None or not isinstance(answer.body, MeshStatus):
        return None
    return answer.body.services


def service_status(bus: Bus, name: str, timeout: float = 1.0) -> StatusReply | None:
    answer = bus.client(name).request(StatusRequest(), timeout=timeout)
    return answer.body if answer is not None and isinstance(answer.body, StatusReply) else None


# The order services stop in: the edge first, all at once, then the core that records
# and moves the bolt. supervisord's own shutdown stops one program at a time and wakes
# once a second to see it gone, so eleven programs took 8-10 s; each wave here is
# signalled at once and watched every 50 ms (an RPC also wakes supervisord to reap).
CORE = ("policy", "motor")
STOP_WAVES = (tuple(n for n in reversed(SERVICES) if n not in CORE), CORE, ("procevents",))


def down(layout: Layout, *, timeout: float = 30.0) -> bool:
    """Stop every service and supervisord; False when nothing was running."""
    if not running(layout):
        return False
    deadline = time.monotonic() + timeout
    rpc = supervisor_rpc.proxy(layout.run)
    for wave in STOP_WAVES:
        _stop_wave(layout, rpc, wave, deadline)
    rpc.supervisor.shutdown()
    pidfile = layout.run / "supervisord.pid"
    while time.monotonic() < deadline:
        if not pidfile.exists() and not supervisor_rpc.socket_path(layout.run).exists():
            return True
        time.sleep(0.05)
    raise MeshError(f"supervisord did not stop within {timeout:.0f}s")


def _stop_wave(layout: Layout, rpc: Any, names: tuple[str, ...], deadline: float) -> None:
    """Ask supervisord to stop names without waiting, then wait until none runs. A name
    already stopped (or unknown) is left to the shutdown that follows."""
    for name in names:
        try:
            rpc.supervisor.stopProcess(name, False)
        except xmlrpc.client.Fault:
            pass  # NOT_RUNNING, BAD_NAME: nothing to stop
    while time.monotonic() < deadline:
        states = supervisor_rpc.processes(layout.run)
        if not any(states.get(n, {}).get("statename") in LIVE_STATES for n in names):
            return
        time.sleep(0.05)


LIVE_STATES = ("STARTING", "RUNNING", "BACKOFF", "STOPPING")


def clean_run_dir(layout: Layout) -> None:
    """Remove a short run directory made outside the data directory, and its record."""
    if layout.run_fits_in_data:
        return
    run = layout.existing_run()  # only a folder of ours, never one the record names blindly
    if run is not None:
        shutil.rmtree(run, ignore_errors=True)
    (layout.data / RUN_RECORD).unlink(missing_ok=True)


def restarts(layout: Layout, name: str) -> int:
    try:
        return max(0, int(layout.starts_file(name).read_text()) - 1)
    except (OSError, ValueError):
        return 0
