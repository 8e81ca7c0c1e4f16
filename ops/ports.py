"""Free TCP ports for a broker the tests or a bench start on 127.0.0.1.

A port from bind(("127.0.0.1", 0)) comes from the kernel's ephemeral range, from which
every outgoing connection also takes its local port: between our closing the probe and the
broker binding the port, any connection on the machine could take it, and the broker dies
"address in use". So ports come from below that range, where only an explicit bind goes,
and each pytest-xdist worker has a block of its own, so two workers never pick the same.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from itertools import cycle
from pathlib import Path

BASE, BLOCK = 20000, 500  # below Linux's default ephemeral range (32768-60999)


def ephemeral_range() -> range:
    """The kernel's ephemeral range (Linux), or Linux's default where it cannot be read."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def worker_block(worker: str | None = None) -> range:
    """The block of the xdist worker (`gw3` -> the fourth), or the first one outside xdist."""
    name = worker if worker is not None else os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(name[2:]) if name[:2] == "gw" and name[2:].isdigit() else 0
    return range(BASE + index * BLOCK, BASE + (index + 1) * BLOCK)


def bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_ours = cycle(worker_block())


def free_port(candidates: Iterable[int] | None = None) -> int:
    """The next port of this process's block that nothing holds now. The block is handed
    out in turn, so a port given to a broker (killed, then started again on it) is not
    given to another until the block comes round."""
    source = _ours if candidates is None else iter(candidates)
    for _, port in zip(range(BLOCK), source):
        if bindable(port):
            return port
    raise RuntimeError(f"no free port in {BLOCK} tries below the ephemeral range")
