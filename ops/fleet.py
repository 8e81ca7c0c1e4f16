"""`lockmesh fleet`: a building's doors from one console over MQTT (issue 17).

On the manager's machine (no lock needed):
  fleet add SERIAL --keys FILE [--name N] [--group G]   a door and its own fresh fleet key
  fleet status --broker URL [--keys FILE]               every door's state and audit head
  fleet watch --broker URL [--timeout S]                events from all doors, live
  fleet visitor --broker URL --keys FILE --group G|--doors A,B --label L [--uses N]
                [--start T --end T] (code on stdin)     pushed, each door's signed ack
On the door, by its owner (the CLI's identity is the owner's):
  fleet join --key-file FILE | fleet leave              take, or stop taking, pushes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ops.fleetkit import Console, FleetError, add_door, load_keys, pick
from ops.owner import show
from proto import files, fleet
from proto.bridge import FleetKeySet
from proto.bus import Bus
from proto.layout import Layout

OFFLINE = ("add", "status", "watch", "visitor")  # the console's verbs: no lock at --data


def needs_no_lock(args: argparse.Namespace) -> bool:
    return getattr(args, "verb", None) in OFFLINE


def add_parser(c: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """common: --data and -v, accepted after the verb too."""
    sub = c.add_subparsers(dest="verb", required=True, metavar="VERB")

    class Verbs:
        @staticmethod
        def add_parser(name: str, help: str) -> argparse.ArgumentParser:
            return sub.add_parser(name, parents=[common], help=help, description=help)

    verbs = Verbs()

    def console(name: str, help: str) -> argparse.ArgumentParser:
        v = verbs.add_parser(name, help)
        v.add_argument("--broker", required=True, help="mqtt[s]://host:port[,host:port...]")
        v.add_argument("--keys", type=Path, help="the console's keys file (0600)")
        v.add_argument("--username")
        v.add_argument("--password-file", type=Path)
        v.add_argument("--ca-file")
        v.add_argument("--json", action="store_true")
        return v

    a = verbs.add_parser("add", "add a door to the keys file with a fresh fleet key")
    a.add_argument("serial")
    a.add_argument("--keys", type=Path, required=True)
    a.add_argument("--name", default="")
    a.add_argument("--group", action="append", default=[])
    console("status", "every door's state and audit head")
    w = console("watch", "events from all doors, and doors coming and going, live")
    w.add_argument("--timeout", type=float, help="stop after S seconds")
    v = console("visitor", "push a visitor code (read from stdin) to a group of doors")
    v.add_argument("--group")
    v.add_argument("--doors", default="", help="serials, comma-separated")
    v.add_argument("--label", required=True)
    v.add_argument("--uses", type=int)
    v.add_argument("--start", type=float, help="seconds since 1970")
    v.add_argument("--end", type=float, help="seconds since 1970")
    v.add_argument("--timeout", type=float, default=30.0, help="seconds for all the acks")
    j = verbs.add_parser("join", "on the door: take pushes sealed with this fleet key")
    j.add_argument("--key-file", type=Path, required=True, help="64 hex digits, 0600")
    j.add_argument("--json", action="store_true")
    leave = verbs.add_parser("leave", "on the door: take no more pushes")
    leave.add_argument("--json", action="store_true")


def run(layout: Layout, args: argparse.Namespace) -> int:
    try:
        return VERBS[args.verb](layout, args)
    except (FleetError, fleet.Refused) as e:
        print(f"lockmesh fleet: {e}", file=sys.stderr)
        return 1


# -- on the door ---------------------------------------------------------------------------------
def cmd_join(layout: Layout, args: argparse.Namespace) -> int:
    key = fleet.key_from_hex(files.read_private(args.key_file).decode())
    return _tell_policy(layout, FleetKeySet(key=key.hex()), args.json)


def cmd_leave(layout: Layout, args: argparse.Namespace) -> int:
    return _tell_policy(layout, FleetKeySet(key=""), args.json)


def _tell_policy(layout: Layout, body: FleetKeySet, as_json: bool) -> int:
    with Bus(layout, "cli") as bus:
        answer = bus.client("policy").request(body, timeout=5.0)
    if answer is None:
        print("lockmesh: policy did not answer (is the lock up?)", file=sys.stderr)
        return 1
    return show(answer.body, as_json)


# -- on the manager's machine ---------------------------------------------------------------------
def cmd_add(layout: Layout, args: argparse.Namespace) -> int:
    door = add_door(args.keys, args.serial, args.name, args.group)
    print(f"door {door.serial} added to {args.keys}; give the door its key (0600 file), then")
    print(f"run on it: lockmesh fleet join --key-file FILE\n{door.key.hex()}")
    return 0


def _console(args: argparse.Namespace, **kw: Any) -> Console:
    doors = load_keys(args.keys) if args.keys else {}
    password = None
    if args.password_file:
        password = files.read_private(args.password_file).decode().rstrip("\n")
    console = Console(args.broker, doors, username=args.username, password=password,
                      ca_file=args.ca_file, **kw)  # fmt: skip
    console.start()
    return console


def cmd_status(layout: Layout, args: argparse.Namespace) -> int:
    console = _console(args)
    try:
        console.settle()
        console.signed_heads()  # the doors of the keys file: heads the broker cannot fake
        seen = console.snapshot()
    finally:
        console.close()
    rows = []
    for serial in sorted(set(seen) | set(console.doors)):
        s = seen.get(serial)
        signed = bool(s and s.signed_head)
        head = (s.signed_head or s.head) if s else None
        rows.append({
            "serial": serial,
            "name": console.doors[serial].name if serial in console.doors else "",
            "availability": s.availability if s else "never seen",
            **(s.states if s else {}),
            "audit_head": f"{head['count']}:{str(head['last'])[:12]}" if head else None,
            "head_signed": signed,  # else as the broker relays it
        })  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print("  ".join(f"{k}={v}" for k, v in row.items() if v not in (None, "")))
    return 0


def cmd_watch(layout: Layout, args: argparse.Namespace) -> int:
    def said(serial: str, kind: str, body: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({"serial": serial, "event": kind, **body}), flush=True)
        else:
            extra = " ".join(f"{k}={v}" for k, v in body.items() if k not in ("event_type",))
            print(f"{serial} {kind} {extra}", flush=True)

    console = _console(args, on_event=said)
    try:
        if args.timeout:  # events print as they come, from paho's thread
            time.sleep(args.timeout)
        else:
            _forever()
    finally:
        console.close()
    return 0


def _forever() -> None:
    while True:
        time.sleep(3600)


def cmd_visitor(layout: Layout, args: argparse.Namespace) -> int:
    if not args.keys:
        raise FleetError("a push needs the doors' keys: --keys FILE")
    code = sys.stdin.readline().strip()
    visitor = fleet.Visitor(args.label, code, args.start, args.end, args.uses)
    console = _console(args)
    try:
        doors = pick(console.doors, args.group, [s for s in args.doors.split(",") if s])
        idents = {d.serial: console.push(d, visitor) for d in doors}
        console.wait_acks(list(idents.values()), args.timeout)
        outcomes = {serial: console.outcome(ident) for serial, ident in idents.items()}
    finally:
        console.close()
    rows, failed = [], 0
    for serial, p in outcomes.items():
        ack = p.ack
        row: dict[str, Any] = {"serial": serial, "acked": ack is not None}
        if ack is None:
            row["reason"] = "no signed answer"
        else:
            row.update(ok=ack.ok, reason=ack.reason, again=ack.again, head=ack.head)
        failed += not (ack and ack.ok)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            head = row.get("head")
            said = "ok" if row.get("ok") else f"refused: {row['reason']}"
            print(f"{row['serial']}: {said}" + (f"  audit head {head['count']}" if head else ""))
    return 1 if failed else 0


VERBS = {
    "add": cmd_add,
    "status": cmd_status,
    "watch": cmd_watch,
    "visitor": cmd_visitor,
    "join": cmd_join,
    "leave": cmd_leave,
}
