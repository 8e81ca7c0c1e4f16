"""SIGKILL policy at random instants during a stream of writes: nothing acknowledged is lost.

A SIGKILL ends the process between any two instructions, so it tests where the
transactions begin and end. It does not cut the disk's power: that part rests on SQLite's
WAL with synchronous=FULL, which fsyncs before a commit returns.
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from ops import mesh
from proto.bus import Bus
from proto.layout import Layout
from proto.owner import AuditVerify, SettingSet
from proto.policy import LockInfoRequest

pytestmark = pytest.mark.slow

# 60 kills in the suite (each a policy start, 1-2 s on a loaded 2-core machine: 200 took
# 400 s of CI's wall time); a soak sets more, e.g. LOCKMESH_POWER_CUTS=1000
CUTS = int(os.environ.get("LOCKMESH_POWER_CUTS", "60"))


def start_policy(layout: Layout) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services.policy", "--data", str(layout.data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# The cuts' policies are forked from one process that has imported policy once: a fresh
# interpreter importing the project for each cut was most of the test's time, and a fork
# is as real a process for SIGKILL to end between two instructions. The last start, which
# checks that the store still opens, is a whole new process.
FORKER = """
import os, signal, sys
from services.base import main
from services.policy.service import PolicyService
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the killed ones
for data in sys.stdin:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sys.stdin.close()
        sys.argv = ["policy", "--data", data.strip()]
        main(PolicyService)
        os._exit(0)
    print(pid, flush=True)
"""


class Forked:
    """A policy forked by FORKER; its end is seen through a pidfd (it is not our child)."""

    def __init__(self, forker: subprocess.Popen, layout: Layout) -> None:
        assert forker.stdin is not None and forker.stdout is not None
        forker.stdin.write(f"{layout.data}\n")
        forker.stdin.flush()
        self.pid = int(forker.stdout.readline())
        self._fd = os.pidfd_open(self.pid)

    def poll(self) -> int | None:
        return 0 if select.select([self._fd], [], [], 0)[0] else None

    def wait(self) -> None:
        select.select([self._fd], [], [], 30)
        os.close(self._fd)


def wait_answering(bus: Bus) -> None:
    deadline = time.monotonic() + 20
    while bus.client("policy").request(LockInfoRequest(), timeout=0.2) is None:
        assert time.monotonic() < deadline, "policy never answered"


@pytest.mark.timeout(900)  # a process start a kill
def test_l35_nothing_acknowledged_is_lost_when_policy_is_killed_mid_write(tmp_path):
    layout = Layout.at(tmp_path / "data")
    mesh.prepare(layout)
    rng = random.Random(35)
    acked: list[str] = []
    try:
        with Bus(layout, "cli") as bus, subprocess.Popen(
            [sys.executable, "-c", FORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
        ) as forker:  # fmt: skip
            for _ in range(CUTS):
                policy = Forked(forker, layout)
                wait_answering(bus)
                threading.Timer(
                    rng.uniform(0.0, 0.08), os.kill, (policy.pid, signal.SIGKILL)
                ).start()
                client = bus.client("policy")
                while policy.poll() is None:  # a request cut short waits out its timeout
                    answer = client.request(
                        SettingSet(name="volume", value=str(rng.randint(0, 3))), timeout=0.15
                    )
                    if answer is not None and answer.body.ok:
                        acked.append(answer.cause)
                policy.wait()
                client.close()
        db = sqlite3.connect(layout.data / "lock.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        causes = {c for (c,) in db.execute("SELECT cause FROM events WHERE kind='setting'")}
        db.close()
        lost = [c for c in acked if c not in causes]
        print(f"{CUTS} kills, {len(acked)} acknowledged writes, {len(lost)} lost")
        assert len(acked) > CUTS  # the stream really ran between the kills
        assert not lost
        policy = start_policy(layout)  # and the store still opens, its chain intact
        try:
            with Bus(layout, "cli") as bus:
                wait_answering(bus)
                report = bus.client("policy").request(AuditVerify(), timeout=10).body
            assert report.intact and report.checked >= len(acked), report
        finally:
            policy.kill()
    finally:
        mesh.clean_run_dir(layout)
