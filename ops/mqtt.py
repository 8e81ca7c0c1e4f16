"""`lockmesh mqtt remove|add`: the owner takes the lock off MQTT, so that Home Assistant
forgets it (its discovery configs and retained states are cleared), or puts it back
(issue 17). The bridge's own state is in `lockmesh status`."""

from __future__ import annotations

import argparse
import sys

from ops.owner import show
from proto.bridge import MqttAdd, MqttRemove
from proto.bus import Bus
from proto.layout import Layout

ACTIONS = {"remove": MqttRemove, "add": MqttAdd}


def add_parser(c: argparse.ArgumentParser) -> None:
    c.add_argument("action", choices=sorted(ACTIONS), help="remove: HA forgets the lock")
    c.add_argument("--json", action="store_true")


def run(layout: Layout, args: argparse.Namespace) -> int:
    with Bus(layout, "cli") as bus:
        answer = bus.client("bridge").request(ACTIONS[args.action](), timeout=5.0)
    if answer is None:
        print("lockmesh: the bridge did not answer (is the lock up?)", file=sys.stderr)
        return 1
    return show(answer.body, args.json)
