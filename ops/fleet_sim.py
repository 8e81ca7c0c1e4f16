"""Many doors at the MQTT protocol level, for the fleet's bench and tests (issue 17).

Each simulated door is its own MQTT client (its own connection, client id, persistent
session, last will), says what a bridge says (availability, retained states, the audit
head) and answers the console's pushes as policy does: the push opened with that door's
fleet key (proto/fleet.py, the same code), a replayed id answered with its first outcome,
the ack signed. No mesh behind it: what it measures is the broker and the console.

All the doors run in one thread, paho's clients driven by one selector (paho's external
loop), so a thousand doors cost one process, not a thousand threads. A door whose broker
node goes goes to the cluster's next one (services/bridge/link.py Rotating).

    python -m ops.fleet_sim --broker mqtt://127.0.0.1:1883 --count 1000 --seed HEX
prints `ready N` once every door is subscribed, and on SIGTERM its counts as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import selectors
import signal
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from proto import fleet
from services.bridge.link import Rotating, settings
from services.bridge.topics import ROOT


def door_key(seed: bytes, serial: str) -> bytes:
    """Each simulated door's own fleet key, from the bench's seed (so the console knows it)."""
    return hmac.new(seed, serial.encode(), hashlib.sha256).digest()


def serials(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(count)]


class SimDoor:
    def __init__(self, serial: str, key: bytes, brokers: tuple[tuple[str, int], ...]) -> None:
        self.serial, self.key, self.brokers = serial, key, brokers
        self.base = f"{ROOT}/{serial}"
        self.taken: dict[str, tuple[bool, str]] = {}  # push id -> first outcome
        self.visitors: set[str] = set()
        self.duplicates = self.refused = 0
        self.count, self.last = 1, hashlib.sha256(serial.encode()).digest()  # the audit head
        self.subscribed = False
        self.retry_at = 0.0
        self.client = Rotating(
            brokers,
            CallbackAPIVersion.VERSION2,
            client_id=f"lockmesh-{serial}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self.client.will_set(f"{self.base}/availability", "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def head(self) -> dict[str, Any]:
        return {"count": self.count, "last": self.last.hex()}

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:  # fmt: skip
        if reason.is_failure:
            return
        self.client.subscribe_to(f"{self.base}/fleet/set", qos=1)
        client.publish(f"{self.base}/availability", "online", qos=1, retain=True)
        for key, value in (("lock", "LOCKED"), ("door", "OFF"), ("battery", "90")):
            client.publish(f"{self.base}/{key}/state", value, qos=1, retain=True)
        client.publish(f"{self.base}/audit/state", json.dumps(self.head()), qos=1, retain=True)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:  # fmt: skip
        self.subscribed = self.client.refused(mid, reason_codes) is None  # else it reconnects

    def _on_disconnect(self, *_: Any) -> None:
        self.subscribed = False

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        try:
            push = fleet.open_push(self.key, self.serial, payload, time.time())
        except fleet.Refused as e:
            self.refused += 1
            ident = fleet.header(payload)["id"] if e.sealed else None
            ack = fleet.make_ack(self.key if e.sealed else None, self.serial, ident, False,
                                 e.reason)  # fmt: skip
            client.publish(f"{self.base}/fleet/ack", ack, qos=1)
            return
        if push.visitor is None:  # audit_head: the head, signed
            ack = fleet.make_ack(self.key, self.serial, push.id, True, "", head=self.head())
            client.publish(f"{self.base}/fleet/ack", ack, qos=1)
            return
        again = push.id in self.taken
        if again:
            self.duplicates += 1
        else:
            ok = push.visitor.label not in self.visitors
            self.taken[push.id] = (ok, "" if ok else "exists")
            if ok:
                self.visitors.add(push.visitor.label)
                self.count += 1
                self.last = hashlib.sha256(self.last + push.id.encode()).digest()
        ok, reason = self.taken[push.id]
        ack = fleet.make_ack(self.key, self.serial, push.id, ok, reason, again=again,
                             head=self.head())  # fmt: skip
        client.publish(f"{self.base}/fleet/ack", ack, qos=1)


class Swarm:
    """The doors, driven by one selector in the calling thread."""

    def __init__(self, url: str, names: list[str], seed: bytes, *, spread: bool = True) -> None:
        section = {"url": url, "protocol": "3.1.1", "ca_file": "", "reconnect_min_s": 1,
                   "reconnect_max_s": 4, "username": "", "password_file": "",
                   "keepalive_s": 10, "session_expiry_s": 0}  # fmt: skip
        brokers = settings(section, Path(".")).brokers
        self.doors = []
        for i, serial in enumerate(names):
            turn = i % len(brokers) if spread else 0  # a cluster's nodes share the doors
            mine = brokers[turn:] + brokers[:turn]
            self.doors.append(SimDoor(serial, door_key(seed, serial), mine))
        self.selector = selectors.DefaultSelector()
        self.sockets: dict[SimDoor, Any] = {}
        self.stopping = False

    def ready(self) -> int:
        return sum(d.subscribed for d in self.doors)

    def connect_all(self) -> None:
        for door in self.doors:
            host, port = door.brokers[0]
            try:
                door.client.connect(host, port, keepalive=10)
            except OSError:
                door.retry_at = time.monotonic() + random.uniform(0.5, 2.0)

    def _register(self) -> None:
        for door in self.doors:
            sock = door.client.socket()
            old = self.sockets.get(door)
            if sock is old:
                continue
            if old is not None:
                try:
                    self.selector.unregister(old)
                except (KeyError, ValueError, OSError):
                    pass
                del self.sockets[door]
            if sock is not None:
                try:
                    self.selector.register(sock, selectors.EVENT_READ, door)
                    self.sockets[door] = sock
                except (KeyError, ValueError, OSError):
                    pass

    def run(self, until: Any = None) -> None:
        """Until stop() (a signal) or until() says so."""
        next_misc = 0.0
        while not self.stopping and not (until and until()):
            self._register()
            for key, _ in self.selector.select(timeout=0.02):
                key.data.client.loop_read()
            for door in self.doors:
                if door.client.want_write():
                    door.client.loop_write()
            now = time.monotonic()
            if now >= next_misc:
                next_misc = now + 0.5
                self._misc(now)

    def _misc(self, now: float) -> None:
        """Keep-alives, and a door that lost its node going to the next one."""
        for door in self.doors:
            if door.client.socket() is not None:
                door.client.loop_misc()
            elif now >= door.retry_at:
                try:
                    door.client.reconnect()
                except OSError:
                    door.retry_at = now + random.uniform(0.5, 2.0)

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def counts(self) -> dict[str, int]:
        return {
            "doors": len(self.doors),
            "taken": sum(len(d.taken) for d in self.doors),
            "visitors": sum(len(d.visitors) for d in self.doors),
            "duplicates": sum(d.duplicates for d in self.doors),
            "refused": sum(d.refused for d in self.doors),
        }

    def close(self) -> None:
        for door in self.doors:
            try:
                door.client.disconnect()
                door.client.loop_write()
            except OSError:
                pass


def warm_up() -> None:
    """The crypto library's first seal loads its backend (a second on a loaded machine):
    done before the doors say ready, so it is not the first push's latency."""
    key = fleet.new_key()
    fleet.open_push(key, "W", fleet.seal(key, "W", "w", time.time(), fleet.Visitor("w", "1")),
                    time.time())  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.fleet_sim", description=__doc__)
    p.add_argument("--broker", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--prefix", default="SIM")
    p.add_argument("--seed", required=True, help="hex: the doors' keys come from it")
    args = p.parse_args(argv)
    swarm = Swarm(args.broker, serials(args.prefix, args.count), bytes.fromhex(args.seed))
    warm_up()
    signal.signal(signal.SIGTERM, swarm.stop)
    signal.signal(signal.SIGINT, swarm.stop)
    swarm.connect_all()
    said = False

    def announce() -> bool:
        nonlocal said
        if not said and swarm.ready() == len(swarm.doors):
            print(f"ready {len(swarm.doors)}", flush=True)
            said = True
        return False

    swarm.run(until=announce)
    swarm.close()
    print(json.dumps(swarm.counts()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
