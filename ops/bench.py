"""`lockmesh bench SERVICE`: a path of the mesh, open-loop, beside two baselines.

Every mesh bench takes turns, block by block, between its paths and the two baselines of
ops/bench_transport.py (raw pyzmq in this process; CURVE + msgpack between two
processes), so that all meet the same load of a shared machine. It reports p50 (and p99
from 1,000 samples) with 95 % confidence intervals, throughput as completions over the
time they took, and each path's p50 as a ratio to both baselines: the ratio to the
transport is what our code adds to it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ops import bench_biometric, bench_ble, bench_gateway, bench_keypad, bench_policy
from ops.bench_transport import Baselines
from ops.benchkit import (
    SHARED_FACES,
    Block,
    Failed,
    Once,
    OpenLoop,
    Recorder,
    Runner,
    bus_path,
    expect,
    interleaved,
    rounds_for,
    set_up_if_initial,
    show_from_send,
    show_line,
)
from proto import config as configuration
from proto.bus import Bus
from proto.control import StatusRequest
from proto.layout import Layout
from proto.wire import Envelope

WORKERS = 8  # requests in flight at most, per path; more wait in the bench's queue, timed
BLOCK = 50  # requests per turn of a path
# Rates when none is given: a service's own request at 100/s; passcode decisions at 20/s
# (each is eight keys, a decision and a reply through the panel, which takes them one at
# a time: near 100/s it saturates); keys under face load at 10/s, a fast typist; fingers
# and palms at 2/s (bench_biometric.MAX_RATE).
DEFAULT_RATE = {"keypad": 20.0, "policy": 20.0, "keypad --load": 10.0, "biometric": 2.0}
# Bolt movements: keypad's in all; the gateway's per number of clients (p50s only: a
# movement takes ~0.35 s, and 1,000 remote unlocks would take 2,000 of them).
DEFAULT_MOVES = {"gateway": 200}


def default_rate(service: str, load: bool) -> float:
    return DEFAULT_RATE.get(f"{service} --load" if load else service, 100.0)


class StatusBench:
    """A service's status request and reply: its loop, our envelope, the transport."""

    peers: tuple[str, ...] = ()

    def __init__(self, layout: Layout, bus: Bus, code: str, service: str) -> None:
        def request(bus: Bus) -> Once:
            client = bus.client(service)
            return lambda: expect(client.request(StatusRequest(), timeout=5), f"{service} status")

        self.path = f"ctl.status request/reply to {service}"
        self.runners: list[Runner] = [OpenLoop("status", bus_path(layout, request), WORKERS)]

    def counts(self, count: int, moves: int) -> dict[str, int]:
        return {"status": count}

    def finish(self, report: dict[str, Any], events: list[Envelope]) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        for r in self.runners:
            r.close()


def run(
    layout: Layout, service: str, *, count: int, rate: float, code: str, moves: int = 40,
    load: bool = False, faces: Path = SHARED_FACES,
    clients: tuple[int, ...] = bench_gateway.CLIENTS,
    saturate_s: float = bench_gateway.CAPACITY_S,
) -> dict[str, Any]:  # fmt: skip
    if service == "keypad" and load:
        nice = configuration.load(layout.config_file)["face"]["nice"]
        return {"service": "keypad", "load": True,
                **bench_keypad.run_load(layout, count, rate, nice, faces)}  # fmt: skip
    if service == "face":  # the pipeline in this process, beside dlib: no mesh needed
        return {"service": service, **run_face(layout, count, faces)}
    if service == "biometric":
        return {"service": service, **bench_biometric.run(layout, count, rate)}
    if service == "gateway":  # HTTP clients beside a bare route, not the bus baselines
        return bench_gateway.run(layout, count=count, rate=rate, moves=moves, clients=clients,
                                 saturate_s=saturate_s)  # fmt: skip
    return run_mesh(layout, service, count=count, rate=rate, code=code, moves=moves)


def run_face(layout: Layout, count: int, faces: Path) -> dict[str, Any]:
    from ops import bench_face

    settings = configuration.load(layout.config_file)["face"]
    models = layout.data / "models"
    report = bench_face.run(models, faces, passes=max(1, count // 61),
                            min_face=settings["min_face"], threads=settings["threads"])  # fmt: skip
    report["accuracy"] = bench_face.accuracy(models, faces, settings["threshold"])
    return report


def run_mesh(
    layout: Layout, service: str, *, count: int, rate: float, code: str, moves: int
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "service": service, "count": count, "rate_per_s": rate, "open_loop": True,
        "workers": WORKERS,
        "block": BLOCK, "machine": {"cores": os.cpu_count(), "load_before": os.getloadavg()},
    }  # fmt: skip
    with Bus(layout, "bench") as bus, Baselines(WORKERS) as baselines:
        code = set_up_if_initial(bus) or code
        kind = MESH_BENCHES.get(service, StatusBench)
        # a bench that names the types it needs is not woken by the rest (issue 12 item 6)
        with Recorder(layout, kind.peers, getattr(kind, "hears", None)) as recorder:
            bench = kind(layout, bus, code, service)
            try:
                counts = {"raw": count, "transport": count, **bench.counts(count, moves)}
                runners = [*bench.runners, *baselines.runners]
                blocks = interleaved(runners, counts, rate, rounds_for(count, BLOCK))
            finally:
                bench.close()
            events = recorder.events(bus)
    report["machine"]["load_after"] = os.getloadavg()
    report["path"] = bench.path
    _results(report, blocks, bench.runners[0].name)
    report.update(bench.finish(report, events))
    return report


MESH_BENCHES: dict[str, Any] = {
    "ble": bench_ble.BleBench,  # issue 16: a phone key's challenge to the bolt moving
    "keypad": bench_keypad.KeypadBench,
    "policy": bench_policy.PolicyBench,
}


def _results(report: dict[str, Any], blocks: dict[str, Block], measured: str) -> None:
    results = {name: b.summary() for name, b in blocks.items()}
    report["result"] = results[measured]
    report["baselines"] = {"raw": results["raw"], "transport": results["transport"]}
    report["ratio_p50"] = {
        name: results[measured]["p50_ms"] / results[name]["p50_ms"] for name in report["baselines"]
    }


def cmd_bench(layout: Layout, args: argparse.Namespace) -> int:
    if args.service == "fleet":  # issue 17: its own broker and locks, not the one at --data
        return cmd_bench_fleet(args)
    try:
        report = run(
            layout, args.service, count=args.count, code=args.code,
            rate=args.rate or default_rate(args.service, args.load),
            moves=args.moves or DEFAULT_MOVES.get(args.service, 40), load=args.load,
            faces=Path(args.faces), clients=args.clients, saturate_s=args.saturate_s,
        )  # fmt: skip
    except Failed as e:
        print(f"lockmesh bench: {e}")
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.service == "biometric":
        show_biometric(report)
    elif args.service == "gateway":
        bench_gateway.show(report)
    elif report.get("load"):
        show_load(report)
    elif args.service == "face":
        from ops import bench_face

        bench_face.show(report)
    else:
        show_mesh(report)
    return 0


def cmd_bench_fleet(args: argparse.Namespace) -> int:
    from ops import bench_fleet

    count = args.count
    try:
        report = bench_fleet.run(full=args.full, sims=args.sims, count=count, full_count=count,
                                 rate=args.rate or 40.0,
                                 full_rate=min(args.rate or 20.0, 20.0),
                                 broker_url=args.broker)  # fmt: skip
    except Failed as e:
        print(f"lockmesh bench: {e}")
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        bench_fleet.show(report)
    return 0


def show_mesh(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(
        f"bench {report['service']}: {report['path']}, open loop at {report['rate_per_s']:g}/s, "
        f"in blocks of {report['block']} taking turns with the baselines "
        f"({m['cores']} cores, load {m['load_before'][0]:.1f} -> {m['load_after'][0]:.1f})"
    )
    print(show_line(report["service"], report["result"]))
    print(show_from_send(report["result"]))
    for name, r in report["baselines"].items():
        print(show_line(name, r))
    ratio = report["ratio_p50"]
    print(f"  p50 ratio: {ratio['raw']:.1f}x raw pyzmq, {ratio['transport']:.1f}x the transport")
    if "granted" in report:
        print(f"  decisions seen: {report['granted']} granted, {report['refused']} refused")
    if "bolt" in report:
        show_bolt(report["bolt"])
    if "split" in report:
        show_split(report["split"])
    if "signatures" in report:
        bench_ble.show(report)


def show_bolt(bolt: dict[str, Any]) -> None:
    print(f"  bolt, real movements one at a time (sim travel {bolt['sim_travel_s']} s):")
    for action, legs in bolt["moves"].items():
        for leg, r in legs.items():
            print(show_line(f"{action} {leg}", r, width=20))


def show_split(s: dict[str, Any]) -> None:
    print(f"  a decision, code sent -> the motor has the Actuate ({s['decisions']} decisions):")
    for leg in (*bench_policy.LEGS, "total"):
        print(show_line(leg, s["legs"][leg], width=10))
    parts = ", ".join(f"{k} {v:.3f}" for k, v in s["parts_p50_ms"].items())
    print(f"  split of the p50s, ms: {parts}")
    ip = s["in_process"]
    p = ip["parts"]
    print(
        f"  in process, one call every {ip['paced_every_s'] * 1000:.0f} ms (p50): encoding, "
        f"decoding, checks of both requests {ip['codec_p50_ms']:.3f} ms, of which msgpack "
        f"{ip['msgpack_p50_ms']:.3f}; rules {p['rules']['p50_ms']:.3f} ms (anti-peeping worst "
        f"case {p['anti_peeping_worst']['p50_ms']:.3f}); the store's reads "
        f"{p['reads']['p50_ms']:.3f} ms; the write {p['write']['p50_ms']:.3f} ms"
    )
    verdict = "within" if s["within_budget"] else "NOT within"
    print(
        f"  everything but the write: p50 {s['not_write_p50_ms']:.3f} ms, {verdict} the "
        f"budget of two transport round trips ({s['budget_ms']:.3f} ms)"
    )


def show_load(report: dict[str, Any]) -> None:
    print(
        f"bench keypad --load: key to the keypad's answer (after its beep), open loop at "
        f"{report['rate_per_s']:g} keys/s, {report['cores']} cores; "
        f"bound: p99 <= {report['bound_p99_ms']:g} ms"
    )
    for label in ("idle", "face_load_niced", "face_load_not_niced"):
        r = report[label]
        print(show_line(label, r, width=20) + f"  -> {r['verdict']}")
        print(show_from_send(r))


def show_biometric(report: dict[str, Any]) -> None:
    print(
        f"bench biometric, closed loop (a finger at a time) at most "
        f"{report['rate_per_s']:.1f} presentations/s"
    )
    for modality in ("finger", "palm"):
        r = report[modality]
        print(show_line(r["path"], r, width=40))
        print(f"    {r['granted']} granted, {r['refused']} refused, "
              f"{r['unreadable']} unreadable (shown again)")  # fmt: skip
    for kind, m in report["matchers"].items():
        print(
            f"  {kind} matcher: FRR {m['frr']:.2%} of {m['genuine_attempts']}, "
            f"FAR {m['far_per_comparison']:.4%} of {m['comparisons']} comparisons"
        )
