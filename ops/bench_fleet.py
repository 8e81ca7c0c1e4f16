"""`lockmesh bench fleet`: a building's doors on one broker (issue 17).

One Mosquitto of its own on a free port; `--full` whole simulated locks (each a mesh under
supervisord, its bridge on the broker, given a fleet key by its owner's CLI) and `--sims`
doors simulated at the MQTT protocol level in one process (ops/fleet_sim.py); one console
(ops/fleetkit.py) pushes sealed visitor codes to them.

Open loop: push i to each kind of door is due at t0 + i/rate and its latency runs from
then to the console's receipt of the door's signed ack, so a queue anywhere (the console,
the broker, the bridge, policy's store) shows in the figures. Pushes go round the doors.
The broker's CPU is read from /proc (its utime + stime) over the pushes, and while idle
with every door connected; the load average is said before and after. With `--broker`
the doors and the console use that broker instead (a cluster's nodes, EMQX, HiveMQ...),
whose CPU is the operator's to read.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops import mesh
from ops.benchkit import P99_MIN_SAMPLES, Failed, percentiles, show_line
from ops.fleet_sim import door_key, serials
from ops.fleetkit import Console, Door
from ops.ports import free_port
from proto import fleet
from proto.bridge import FleetKeySet
from proto.bus import Bus
from proto.control import StatusReply, StatusRequest
from proto.layout import Layout

TICKS = os.sysconf("SC_CLK_TCK")
LOCK_CONFIG = (
    '[mqtt]\nurl = "{url}"\nkeepalive_s = 10\nreconnect_min_s = 1\nreconnect_max_s = 2\n'
    "[gateway]\nport = 0\n"
    # each push adds a visitor code, and L-3 keeps 50 codes: the bench's locks hold more
    "[capacity]\nlock_passcodes = {capacity}\n"
)


class Mosquitto:
    """Debian's mosquitto with the bench's own configuration, stopped by its pid."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
        if not binary:
            raise Failed("mosquitto is not installed (ops/venv.sh ensure_test_packages)")
        self.port = free_port()
        conf = folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 "set_tcp_nodelay true", "max_queued_messages 10000",
                 f"log_dest file {folder}/mosquitto.log", "log_type error",
                 "log_type warning"]  # fmt: skip
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise Failed("mosquitto did not start") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)


def start_full_lock(data: Path, url: str, capacity: int) -> Door:
    """A whole simulated lock on the broker, given a fresh fleet key by its owner."""
    layout = Layout.at(data)
    data.mkdir(parents=True, exist_ok=True)
    layout.config_file.write_text(LOCK_CONFIG.format(url=url, capacity=capacity))
    mesh.up(layout, timeout=90)
    key = fleet.new_key()
    with Bus(layout, "cli") as bus:
        status = bus.client("policy").request(StatusRequest(), timeout=10)
        if status is None or not isinstance(status.body, StatusReply):
            raise Failed(f"policy of {data} did not answer")
        done = bus.client("policy").request(FleetKeySet(key=key.hex()), timeout=10)
        if done is None or not getattr(done.body, "ok", False):
            raise Failed(f"{data}: the fleet key was not taken")
    return Door(str(status.body.detail["serial"]), key)


@dataclass
class Stream:
    """The pushes to one kind of door: full locks or simulated ones."""

    name: str
    doors: list[Door]
    count: int
    rate: float


def code_for(i: int) -> str:
    """Distinct 8-digit visitor codes (7919 is prime to 9e7), which L-4's rules take."""
    return str(10_000_000 + (i * 7919 + 12_345) % 90_000_000)


def run(
    *,
    full: int = 5,
    sims: int = 1000,
    count: int = 1000,
    full_count: int = 1000,
    rate: float = 40.0,
    full_rate: float = 20.0,
    work: Path | None = None,
    broker_url: str | None = None,
) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="lmfleet-", dir=work or "/tmp"))
    broker = Mosquitto(folder) if broker_url is None else None
    url = broker_url or (broker.url if broker else "")
    seed = secrets.token_bytes(32)
    prefix = f"SIM{secrets.token_hex(2)}"  # this run's doors: a shared broker keeps sessions
    locks: list[Layout] = []
    sim = None
    console = None
    report: dict[str, Any] = {"load_before": os.getloadavg(), "full": full, "sims": sims,
                              "broker": broker_url or "mosquitto (the bench's own)"}  # fmt: skip
    try:
        doors: list[Door] = []
        for i in range(full):  # short paths: the ipc sockets' 107-byte limit
            data = Path(tempfile.mkdtemp(prefix=f"l{i}", dir="/tmp"))
            locks.append(Layout.at(data))
            doors.append(start_full_lock(data, url, full_count + 50))
        names = serials(prefix, sims)
        if sims:
            sim = subprocess.Popen(
                [sys.executable, "-m", "ops.fleet_sim", "--broker", url,
                 "--count", str(sims), "--seed", seed.hex(), "--prefix", prefix],
                stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
            )  # fmt: skip
            assert sim.stdout is not None
            line = sim.stdout.readline()
            if not line.startswith("ready"):
                raise Failed(f"the simulated doors did not come up: {line!r}")
        sim_doors = [Door(s, door_key(seed, s)) for s in names]
        console = Console(url, {d.serial: d for d in [*doors, *sim_doors]})
        console.start()
        _wait_online(console, [d.serial for d in [*doors, *sim_doors]])
        idle_cpu = _cpu_over(broker, 3.0) if broker else None
        streams = [Stream("full", doors, full_count if doors else 0, full_rate),
                   Stream("sim", sim_doors, count if sim_doors else 0, rate)]  # fmt: skip
        _warm_up(console, [s for s in streams if s.doors])
        cpu0, t0 = (broker.cpu_s() if broker else 0.0), time.monotonic()
        sent = _push_open_loop(console, [s for s in streams if s.count])
        elapsed = time.monotonic() - t0
        all_ids = [i for ids in sent.values() for i in ids]
        console.wait_acks(all_ids, timeout=60.0)
        busy = broker.cpu_s() - cpu0 if broker else None
        report.update(
            broker_cpu_pct=100 * busy / elapsed if busy is not None else None,
            broker_idle_cpu_pct=idle_cpu,
            broker_rss_mb=broker.rss_mb() if broker else None,
            push_s=elapsed,
            load_after=os.getloadavg(),
            streams={name: _result(console, ids) for name, ids in sent.items()},
        )
        if sim is not None:
            sim.send_signal(signal.SIGTERM)
            out, _ = sim.communicate(timeout=30)
            report["sim_counts"] = json.loads(out.strip().splitlines()[-1])
            sim = None
        return report
    finally:
        if console is not None:
            console.close()
        if sim is not None:
            sim.kill()
            sim.wait()
        for layout in locks:
            try:
                mesh.down(layout)
            except mesh.MeshError:
                pass
            shutil.rmtree(layout.data, ignore_errors=True)
        if broker:
            broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_online(console: Console, serials_: list[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        seen = console.snapshot()
        missing = [s for s in serials_ if seen.get(s) is None or seen[s].availability != "online"]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise Failed(f"{len(missing)} doors never said online, e.g. {missing[:3]}")
        time.sleep(0.2)


def _cpu_over(broker: Mosquitto, seconds: float) -> float:
    cpu0, t0 = broker.cpu_s(), time.monotonic()
    time.sleep(seconds)
    return 100 * (broker.cpu_s() - cpu0) / (time.monotonic() - t0)


def _warm_up(console: Console, streams: list[Stream]) -> None:
    ids = [console.push(s.doors[i % len(s.doors)], fleet.Visitor(f"warm{i}", code_for(90_000 + i)))
           for s in streams for i in range(min(10, len(s.doors) * 2))]  # fmt: skip
    console.wait_acks(ids, timeout=60.0)
    if any(console.outcome(i).ack is None for i in ids):
        raise Failed("a warm-up push was not answered")


def _push_open_loop(console: Console, streams: list[Stream]) -> dict[str, list[str]]:
    """Each stream's pushes at their due times, from one thread; the ids by stream."""
    t0 = time.monotonic() + 0.5
    due = sorted(
        (t0 + i / s.rate, s.name, i, s.doors[i % len(s.doors)])
        for s in streams
        for i in range(s.count)
    )
    sent: dict[str, list[str]] = {s.name: [] for s in streams}
    for at, name, i, door in due:
        wait = at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        label = f"b{name[0]}{i}"
        sent[name].append(console.push(door, fleet.Visitor(label, code_for(i)), at=at))
    return sent


def _result(console: Console, ids: list[str]) -> dict[str, Any]:
    outcomes = [console.outcome(i) for i in ids]
    answered = [p for p in outcomes if p.ack is not None and p.acked_at is not None]
    latencies = [p.acked_at - p.sent_at for p in answered if p.acked_at is not None]
    result: dict[str, Any] = percentiles(latencies) if latencies else {"count": 0}
    result.update(
        pushed=len(ids),
        unanswered=len(ids) - len(answered),
        refused={r: sum(1 for p in answered if p.ack and p.ack.reason == r)
                 for r in {p.ack.reason for p in answered if p.ack and not p.ack.ok}},
        resent=sum(p.sends - 1 for p in outcomes),
    )  # fmt: skip
    return result


def show(report: dict[str, Any]) -> None:
    print(f"fleet: {report['full']} full locks + {report['sims']} simulated doors on "
          f"{report['broker']}; load {report['load_before'][0]:.2f} before, "
          f"{report['load_after'][0]:.2f} after")  # fmt: skip
    for name, r in report["streams"].items():
        if r["count"]:
            print(show_line(f"{name} doors", r))
        print(f"    {r['pushed']} pushed, {r['unanswered']} unanswered, refused {r['refused']}, "
              f"{r['resent']} sent again")  # fmt: skip
        if r["count"] and r["count"] < P99_MIN_SAMPLES:
            print(f"    p99 needs {P99_MIN_SAMPLES} samples")
    if report["broker_cpu_pct"] is None:
        print(f"pushing took {report['push_s']:.1f} s; the broker's CPU is not read (--broker)")
        return
    print(f"broker CPU {report['broker_cpu_pct']:.1f} % of a core while pushing "
          f"({report['push_s']:.1f} s), {report['broker_idle_cpu_pct']:.1f} % idle with every "
          f"door connected; RSS {report['broker_rss_mb']:.1f} MB")  # fmt: skip
