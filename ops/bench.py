"""`lockmesh bench SERVICE`: load one service at a set rate; compare with raw pyzmq.

The baseline is a plain REQ/REP round trip over ipc:// measured in the same run, so
the ratio holds on a noisy shared machine where absolute times do not.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from typing import Any, Callable

import zmq

from ops import bench_biometric
from ops.benchkit import WARMUP, Failed, expect, paced, set_up_if_initial, summary
from proto.board import Bolt
from proto.bus import Bus
from proto.control import StatusRequest
from proto.keypad import SimKeys
from proto.layout import Layout
from proto.policy import Decision, LockInfoRequest
from services.policy import passcodes


def raw_baseline(count: int, rate: float) -> dict[str, float]:
    """A bare pyzmq REQ/REP round trip over ipc://, no CURVE, no envelope."""
    ctx = zmq.Context()
    with tempfile.TemporaryDirectory(prefix="lmb") as d:
        endpoint = f"ipc://{d}/raw"
        rep = ctx.socket(zmq.REP)
        rep.bind(endpoint)
        stop = threading.Event()

        def echo() -> None:
            while not stop.is_set():
                if rep.poll(50):
                    rep.send(rep.recv())

        server = threading.Thread(target=echo, daemon=True)
        server.start()
        req = ctx.socket(zmq.REQ)
        req.connect(endpoint)
        payload = b"x" * 200

        def once() -> None:
            req.send(payload)
            req.recv()

        result = summary(*paced(count, rate, once))
        stop.set()
        server.join()
        req.close(0)
        rep.close(0)
    ctx.term()
    return result


def keypad_path(bus: Bus, code: str) -> tuple[Callable[[], float], Callable[[], dict]]:
    """A passcode decision through keypad -> policy -> motor.

    Timed twice: to the motor's bolt event caused by the decision (keys in, motor
    acting), and the whole SimKeys round trip (until the panel has answered).
    """
    code = set_up_if_initial(bus) or code
    keypad = bus.client("keypad")
    policy, motor = bus.subscribe("policy"), bus.subscribe("motor")
    time.sleep(0.3)  # let the subscriptions join before the first decision
    keys = SimKeys(keys=["touch", *code, "ok"])
    decisions = {"granted": 0, "refused": 0}
    to_motor: list[float] = []

    def once() -> float:
        sent, t0 = time.time(), time.perf_counter()
        body = expect(keypad.request(keys, timeout=5), "keypad.sim_keys")
        took = time.perf_counter() - t0
        if not getattr(body, "ok", False):
            raise Failed(f"keypad refused: {body}")
        decision = _next(bus, policy, "policy", Decision)
        decisions["granted" if decision.body.granted else "refused"] += 1
        if decision.body.granted:
            bolt = _next(bus, motor, "motor", Bolt, cause=decision.id)
            to_motor.append(bolt.wall - sent)
        return took

    def extra() -> dict:
        moved = summary(to_motor[WARMUP:], 1.0) if len(to_motor) > WARMUP else None
        return {
            "path": "keypad -> policy -> motor (SimKeys touch+code+ok)",
            "to_motor": moved,
            **decisions,
        }

    return once, extra


def _next(bus: Bus, sock: zmq.Socket, peer: str, kind: type, cause: str | None = None) -> Any:
    """The next event of a kind (and cause) from one publisher, within 5 s."""
    deadline = time.monotonic() + 5
    while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
        env = bus.receive_event(sock, peer)
        if env is not None and isinstance(env.body, kind) and cause in (None, env.cause):
            return env
    raise Failed(f"no {kind.__name__} from {peer}")


def request_path(bus: Bus, service: str) -> tuple[Callable[[], None], Callable[[], dict]]:
    message = LockInfoRequest() if service == "policy" else StatusRequest()
    client = bus.client(service)

    def once() -> None:
        expect(client.request(message, timeout=5), message.TYPE)

    def extra() -> dict:
        info: dict[str, Any] = {"path": f"{message.TYPE} request/reply over CURVE"}
        if service == "policy":
            info["anti_peeping"] = anti_peeping(count=1000)
        return info

    return once, extra


def anti_peeping(count: int, codes: int = 50, entry_digits: int = 20) -> dict[str, Any]:
    """L-19's matching as policy runs it: a 20-digit entry against 50 stored codes.

    Measured in this process on policy's own code; the entries match nothing, the worst
    case, as every run of every stored length is hashed and looked up.
    """
    rng = random.Random(19)
    hasher = passcodes.Hasher(rng.randbytes(32))
    stored: dict[bytes, str] = {}
    while len(stored) < codes:
        code = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 10)))
        if passcodes.rule_broken(code, min_digits=6, max_digits=10) is None:
            stored[hasher.digest(code)] = f"{len(stored) + 1:03d}"
    lengths = set(range(6, 11))
    entries = [
        "".join(rng.choice("0123456789") for _ in range(entry_digits))
        for _ in range(count + WARMUP)
    ]
    entries = [e for e in entries if passcodes.find(e, stored, lengths, hasher) is None]
    latencies = []
    for entry in entries[WARMUP:]:
        t0 = time.perf_counter()
        passcodes.find(entry, stored, lengths, hasher)
        latencies.append(time.perf_counter() - t0)
    return {"codes": codes, "entry_digits": entry_digits, **summary(latencies, sum(latencies))}


def run(
    layout: Layout, service: str, *, count: int, rate: float, code: str, load: bool = False
) -> dict[str, Any]:
    if service == "keypad" and load:
        from ops import bench_keypad
        from proto import config as configuration

        nice = configuration.load(layout.config_file)["face"]["nice"]
        return {"service": "keypad", "load": True, **bench_keypad.run(layout, count, rate, nice)}
    if service == "face":  # the pipeline in this process, beside dlib: no mesh needed
        from ops import bench_face
        from proto import config as configuration

        settings = configuration.load(layout.config_file)["face"]
        models = layout.data / "models"
        report = bench_face.run(
            models, bench_face.SHARED_FACES, passes=max(1, count // 61),
            min_face=settings["min_face"], threads=settings["threads"],
        )  # fmt: skip
        report["accuracy"] = bench_face.accuracy(
            models, bench_face.SHARED_FACES, settings["threshold"]
        )
        return {"service": service, **report}
    if service == "biometric":
        return {"service": service, **bench_biometric.run(layout, count, rate)}
    baseline = raw_baseline(count, rate)
    with Bus(layout, "bench") as bus:
        once, extra = keypad_path(bus, code) if service == "keypad" else request_path(bus, service)
        result = summary(*paced(count, rate, once))
        info = extra()
    report = {
        "service": service,
        "rate_per_s": rate,
        "baseline": baseline,
        "service_result": result,
        "ratio_p50": result["p50_ms"] / baseline["p50_ms"],
        **info,
    }
    if info.get("to_motor"):
        report["ratio_p50_to_motor"] = info["to_motor"]["p50_ms"] / baseline["p50_ms"]
    return report


def cmd_bench(layout: Layout, args: argparse.Namespace) -> int:
    try:
        report = run(
            layout, args.service, count=args.count, rate=args.rate, code=args.code, load=args.load
        )
    except Failed as e:
        print(f"lockmesh bench: {e}")
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if args.service == "biometric":
        show_biometric(report)
        return 0
    if report.get("load"):
        from ops import bench_keypad

        bench_keypad.show(report)
        return 0
    if args.service == "face":
        from ops import bench_face

        bench_face.show(report)
        return 0
    b, s = report["baseline"], report["service_result"]
    print(f"bench {args.service}: {report['path']}")
    for label, r in (("raw pyzmq", b), (args.service, s)):
        print(
            f"  {label:<10} p50 {r['p50_ms']:7.3f} ms  p99 {r['p99_ms']:7.3f} ms  "
            f"max {r['max_ms']:7.3f} ms  {r['throughput_per_s']:7.1f}/s"
        )
    print(f"  ratio p50 {report['ratio_p50']:.1f}x the raw round trip")
    if report.get("to_motor"):
        m = report["to_motor"]
        print(
            f"  keys to motor acting: p50 {m['p50_ms']:.3f} ms  p99 {m['p99_ms']:.3f} ms  "
            f"max {m['max_ms']:.3f} ms; ratio p50 {report['ratio_p50_to_motor']:.1f}x"
        )
    if "granted" in report:
        print(f"  decisions seen: {report['granted']} granted, {report['refused']} refused")
    if "anti_peeping" in report:
        a = report["anti_peeping"]
        print(
            f"  anti-peeping match, {a['entry_digits']} digits vs {a['codes']} codes "
            f"(in process): p50 {a['p50_ms']:.3f} ms  p99 {a['p99_ms']:.3f} ms  "
            f"max {a['max_ms']:.3f} ms"
        )
    return 0


def show_biometric(report: dict[str, Any]) -> None:
    print(f"bench biometric at {report['rate_per_s']:.1f} presentations/s")
    for modality in ("finger", "palm"):
        r = report[modality]
        print(
            f"  {r['path']}: p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
            f"max {r['max_ms']:.1f} ms; {r['granted']} granted, {r['refused']} refused, "
            f"{r['unreadable']} unreadable (shown again)"
        )
    for kind, m in report["matchers"].items():
        print(
            f"  {kind} matcher: FRR {m['frr']:.2%} of {m['genuine_attempts']}, "
            f"FAR {m['far_per_comparison']:.4%} of {m['comparisons']} comparisons"
        )
