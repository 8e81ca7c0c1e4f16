"""The `lockmesh` command: up, down, status, tap, trust, replay, sim, bench."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from ops import bench, benchkit, enrol, fleet, mesh, mqtt, owner, phone, simulate, trust_table
from ops.tap import Tap, as_json, as_line, matches, read_recording, record_line
from proto import config as configuration
from proto import files, supervisor_rpc
from proto.bus import Bus, Counters
from proto.layout import PUBLISHERS, SERVICES, Layout, NoLock


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    os.umask(0o077)  # what a command makes in the lock's folders is its owner's only
    layout = Layout.at(args.data)
    try:
        if _needs_a_lock(args) and not layout.data.is_dir():
            raise NoLock(f"no lock at {layout.data}: no such folder (start one with `lockmesh up`)")
        if _needs_it_running(args) and not _is_running(layout):  # at once, not after 5 s
            raise NoLock(f"no lock is running at {layout.data} (start it with `lockmesh up`)")
        code = args.run(layout, args)
        sys.stdout.flush()  # a reader that went away is found here, not at the exit
        return code
    except BrokenPipeError:  # `lockmesh status | head -1`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit either
        return 1
    except (configuration.ConfigError, tomllib.TOMLDecodeError) as e:  # lockmesh.toml
        where = "" if isinstance(e, configuration.ConfigError) else f"{layout.config_file}: "
        print(f"lockmesh: {where}{e}", file=sys.stderr)
        return 1
    except files.MissingFile as e:  # a key or the device secret: one line, not a traceback
        where = str(e).replace(f"{layout.data}/", "")
        print(f"lockmesh: no lock at {layout.data}: {where}", file=sys.stderr)
        return 1
    except (mesh.MeshError, NoLock, files.FileRefused) as e:
        print(f"lockmesh: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a file or folder it could not use: said in one line too
        print(f"lockmesh: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _needs_a_lock(args: argparse.Namespace) -> bool:
    """All but `up` (which makes one), `replay`, `trust` and an audit of a copy (--db)."""
    return (
        args.run not in (cmd_up, cmd_replay, trust_table.run)
        and getattr(args, "db", None) is None
        and not (args.run is phone.run and phone.needs_no_lock(args))  # made on the phone
        and not (args.run is fleet.run and fleet.needs_no_lock(args))  # the building's console
        and not (args.run is bench.cmd_bench and args.service == "fleet")  # its own locks
    )


def _needs_it_running(args: argparse.Namespace) -> bool:
    """Commands that ask the lock's services: owner and sim commands, enrol, tap, mqtt."""
    if args.run is simulate.run:
        return getattr(args, "local", simulate.power_cycle) is simulate.power_cycle
    return args.run in (owner.run, enrol.run, cmd_tap, mqtt.run)


def _is_running(layout: Layout) -> bool:
    """supervisord answers in the lock's run folder (never made here just to look)."""
    run = layout.existing_run()
    return run is not None and bool(supervisor_rpc.processes(run))


GLOBBED = ("tap", "replay")  # TOPIC-GLOBs may come after an option too (issue 15)


def parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """parse_args, but `replay FILE --json GLOB` is `replay --json FILE GLOB`: argparse
    ends a nargs='*' positional at the first option and leaves what follows unparsed."""
    args, extra = p.parse_known_args(argv)
    if extra and getattr(args, "command_name", None) in GLOBBED:
        if not any(e.startswith("-") for e in extra):
            args.globs = [*args.globs, *extra]
            extra = []
    if extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _common(default: Any) -> argparse.ArgumentParser:
    """--data and -v, accepted before or after the command (after wins)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        default=default,
        help="the lock's data directory (default: $LOCKMESH_DATA, else ~/.local/share/lockmesh)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log what happens"
    )
    return common


@functools.cache  # built once a process: most of an in-process command's time was this
def parser() -> argparse.ArgumentParser:
    common = _common(argparse.SUPPRESS)
    p = argparse.ArgumentParser(
        prog="lockmesh", parents=[_common(None)], description="Run and inspect a lockmesh lock."
    )
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, fn: Any, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, parents=[common], help=help, description=help)
        c.set_defaults(run=fn, command_name=name)
        return c

    c = command("up", cmd_up, "start the mesh under supervisord; return once all are healthy")
    c.add_argument("--timeout", type=float, help="seconds to wait for health (default 20)")
    command("down", cmd_down, "stop the mesh and supervisord")
    c = command("status", cmd_status, "the lock's state and every service's health")
    c.add_argument("--json", action="store_true")
    c = command("tap", cmd_tap, "show every message of every service, live")
    c.add_argument("globs", nargs="*", metavar="TOPIC-GLOB", help="e.g. 'policy.*' '*.bolt'")
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    c.add_argument("--count", type=int, help="stop after N messages")
    c.add_argument("--timeout", type=float, help="stop after S seconds")
    c.add_argument("--record", type=Path, metavar="FILE", help="also record to FILE")
    c.add_argument("--health", action="store_true", help="include heartbeats")
    trust_table.add_parser(command("trust", trust_table.run, "who may send each message type"))
    c = command("replay", cmd_replay, "show a recording made with `tap --record`")
    c.add_argument("file", type=Path)
    c.add_argument("globs", nargs="*", metavar="TOPIC-GLOB")
    c.add_argument("--json", action="store_true")
    simulate.add_parser(command("sim", simulate.run, "drive the simulated board"), common)

    def owner_command(name: str, help: str) -> argparse.ArgumentParser:
        c = command(name, owner.run, help)
        c.set_defaults(command=name)
        c.add_argument("--json", action="store_true")
        return c

    owner.add_parsers(owner_command, common)
    enrolling = "enrol a face, finger or palm for a person (L-14)"
    enrol.add_parser(command("enrol", enrol.run, enrolling))
    mqtt.add_parser(command("mqtt", mqtt.run, "take the lock off MQTT (HA forgets it), or back"))
    fleet.add_parser(
        command("fleet", fleet.run, "a building's doors from one console (MQTT)"), common
    )
    phone.add_parser(command("phone", phone.run, "the phone's side of Bluetooth keys"), common)
    c = command("bench", bench.cmd_bench, "time a path of the mesh beside two baselines")
    c.add_argument("service", choices=(*SERVICES, "fleet"))
    c.add_argument("--count", type=int, default=1000, help="requests per path (p99 from 1000)")
    c.add_argument("--rate", type=float, help="requests per second, open loop (default: per bench)")
    c.add_argument("--code", default=benchkit.BENCH_CODE, help="a valid passcode (keypad bench)")
    c.add_argument("--moves", type=int,
                   help="real bolt movements: keypad (40), gateway per level (200)")  # fmt: skip
    c.add_argument("--clients", type=client_counts, default=bench.bench_gateway.CLIENTS,
                   help="gateway: concurrent HTTP clients of each level (1,10,50)")  # fmt: skip
    c.add_argument("--saturate-s", type=saturation_seconds, default=bench.bench_gateway.CAPACITY_S,
                   help="gateway: seconds of each closed-loop saturation (3)")  # fmt: skip
    c.add_argument("--faces", default=str(benchkit.SHARED_FACES),
                   help="the shared photos (face, keypad --load)")  # fmt: skip
    c.add_argument("--json", action="store_true")
    c.add_argument(
        "--load", action="store_true", help="keypad: key-to-feedback with the CPU saturated"
    )
    c.add_argument("--full", type=int, default=5, help="fleet: whole simulated locks (5)")
    c.add_argument("--sims", type=int, default=1000, help="fleet: protocol-level doors (1000)")
    c.add_argument("--broker", help="fleet: this broker (mqtt[s]://h:p[,h:p]), not its own")
    return p


def client_counts(text: str) -> tuple[int, ...]:
    """--clients 1,10,50: each a whole number from 1 to 200."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or not all(1 <= n <= 200 for n in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers 1 to 200, like 1,10,50")
    return counts


def saturation_seconds(text: str) -> float:
    """--saturate-s 3: seconds from 0.5 to 600."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0.5 <= seconds <= 600:  # also NaN
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds from 0.5 to 600, like 3")
    return seconds


def cmd_up(layout: Layout, args: argparse.Namespace) -> int:
    result = mesh.up(layout, timeout=args.timeout)
    verb = "started" if result.started else "was already running"
    fitted = configuration.services(configuration.load(layout.config_file))
    print(
        f"lockmesh {verb}: {len(fitted)} services healthy in {result.seconds:.1f}s "
        f"(data {layout.data})"
    )
    return 0


def cmd_down(layout: Layout, args: argparse.Namespace) -> int:
    if mesh.down(layout):
        print("lockmesh stopped")
    else:
        print("lockmesh was not running")
    mesh.clean_run_dir(layout)
    return 0


def status(layout: Layout) -> dict[str, Any]:
    """The stable shape of `status --json` (README: "Status").

    Counters come fresh from each service; beat ages and verdicts from the watchdog.
    """
    procs = supervisor_rpc.processes(layout.run)
    fitted = configuration.services(configuration.load(layout.config_file))
    replies: dict[str, Any] = {}
    beats: dict[str, dict[str, Any]] = {}
    if procs:
        with Bus(layout, "cli") as bus:
            beats = mesh.mesh_status(bus) or {}
            replies = {name: mesh.service_status(bus, name) for name in fitted}
    motor, policy = replies.get("motor"), replies.get("policy")
    lock = {"bolt": "unknown", "door": "unknown", "initial": None, "direction": None}
    if motor is not None:
        lock.update(bolt=motor.detail.get("bolt"), door=motor.detail.get("door"))
    if policy is not None:
        lock.update(initial=policy.detail.get("initial"), direction=policy.detail.get("direction"))
    services = {
        name: _service_row(layout, name, procs.get(name), beats.get(name, {}), replies.get(name))
        for name in fitted
    }
    return {
        "running": bool(procs),
        "lock": lock,
        "services": services,
        "healthy": bool(procs) and all(s["verdict"] == "healthy" for s in services.values()),
    }


def _service_row(
    layout: Layout, name: str, proc: dict | None, beat: dict, reply: Any
) -> dict[str, Any]:
    counters = reply.to_body() if reply is not None else dict(beat)
    saved = Counters.saved(layout.counters_file(name)) if reply is None else None
    if saved is not None:  # a stopped service's own last word, newer than its last beat
        counters["drops"], counters["gaps"] = saved
    verdict = beat.get("verdict", "down" if proc is None else "unknown")
    if reply is None and verdict == "healthy":
        verdict = "not answering"
    return {
        "verdict": verdict,
        "state": counters.get("state"),
        "process": proc["statename"] if proc else "absent",
        "pid": proc["pid"] if proc and proc["pid"] else None,
        "uptime_s": (proc["now"] - proc["start"]) if proc and proc["pid"] else None,
        "beat_age_s": beat.get("beat_age_s"),
        "lag_ms": beat.get("lag_ms"),
        "msgs_in": counters.get("msgs_in", 0),
        "msgs_out": counters.get("msgs_out", 0),
        "drops": counters.get("drops", {}),
        "gaps": counters.get("gaps", 0),
        "restarts": mesh.restarts(layout, name),
        "detail": reply.detail if reply is not None else {},
    }


def cmd_status(layout: Layout, args: argparse.Namespace) -> int:
    report = status(layout)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0 if report["healthy"] else 1
    if not report["running"]:
        print(f"lockmesh is not running (data {layout.data})")
        return 1
    lock = report["lock"]
    initial = ", initial state" if lock["initial"] else ""
    print(
        f"lock: bolt {lock['bolt']}, door {lock['door']}{initial}, "
        f"direction {lock['direction'] or 'unset'}"
    )
    app = report["services"].get("gateway", {}).get("detail", {})
    if app.get("url"):  # the owner's app (issue 13); the certificate the phone pins on TLS
        pin = f" (certificate SHA-256 {app['cert_sha256']})" if app.get("cert_sha256") else ""
        print(f"app: {app['url']}{pin}")
    radio = report["services"].get("ble", {}).get("detail", {})
    if radio.get("bluetooth"):  # issue 16: the phone keys' radio
        extra = f", {radio['radio']}" if radio.get("radio") else ""
        print(f"bluetooth: {radio['bluetooth']} ({radio['transport']}{extra})")
    print(
        f"{'service':<10} {'verdict':<8} {'pid':>7} {'uptime':>8} {'beat':>6} "
        f"{'in':>6} {'out':>6} {'restarts':>8}  drops / state"
    )
    for name, s in report["services"].items():
        drops = ",".join(f"{k}={v}" for k, v in s["drops"].items()) or "-"
        print(
            f"{name:<10} {s['verdict']:<8} {s['pid'] or '-':>7} {_secs(s['uptime_s']):>8} "
            f"{_secs(s['beat_age_s']):>6} {s['msgs_in']:>6} {s['msgs_out']:>6} "
            f"{s['restarts']:>8}  {drops} / {s['state']}"
        )
    return 0 if report["healthy"] else 1


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def cmd_tap(layout: Layout, args: argparse.Namespace) -> int:
    globs = args.globs or []
    record = open(args.record, "ab") if args.record else None
    shown = 0
    with Bus(layout, "cli") as bus:
        tap = Tap(bus)
        heard = tap.settle()
        print(f"tap: listening ({heard_line(heard)})", file=sys.stderr, flush=True)
        for peer, frames in tap.frames(args.timeout):
            env = bus.receive_event_frames(frames, peer)
            if env is None or not matches(env.topic, globs):
                continue
            if env.topic.startswith("health.") and not (args.health or args.globs):
                continue
            if record:
                record_line(record, frames)
            print(json.dumps(as_json(env)) if args.json else as_line(env), flush=True)
            shown += 1
            if args.count and shown >= args.count:
                break
    if record:
        record.close()
    return 0


def heard_line(heard: set[str]) -> str:
    """'heard 9 of 10 services; silent: bridge' (issue 15: name the silent one). procevents
    speaks only when a process starts or stops, so it is not waited for nor counted."""
    services = [name for name in PUBLISHERS if name != "procevents"]
    silent = [name for name in services if name not in heard]
    line = f"heard {len(services) - len(silent)} of {len(services)} services"
    return line + (f"; silent: {', '.join(silent)}" if silent else "")


def cmd_replay(layout: Layout, args: argparse.Namespace) -> int:
    for env in read_recording(args.file):
        if matches(env.topic, args.globs):
            print(json.dumps(as_json(env)) if args.json else as_line(env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
