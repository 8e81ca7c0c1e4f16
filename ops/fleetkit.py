"""The building manager's console over MQTT (issue 17): every door's state and audit head,
events from all doors, and visitor codes pushed to a group of doors with each door's
signed acknowledgement. `lockmesh fleet` (ops/fleet.py) and `lockmesh bench fleet` use it.

It trusts the broker for nothing it shows as verified: a push is sealed with the door's
own fleet key (proto/fleet.py) and a door's answer counts as a door's only if its MAC
checks out with that key. States, events and the retained head are what the broker
relays, shown as such. One persistent session (MQTT 3.1.1, clean_session false, QoS 1),
so acknowledgements sent while the console is away, or its broker node is dying, wait
for it; a push not answered is sent again, the same bytes, which a door that took it
answers with its first outcome (never done twice).
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from proto import files, fleet
from services.bridge.link import BadSettings, Rotating, settings
from services.bridge.topics import ROOT, TOPIC_WORD

SUBSCRIPTIONS = (
    f"{ROOT}/+/availability",
    f"{ROOT}/+/+/state",
    f"{ROOT}/+/+/event",
    f"{ROOT}/+/fleet/ack",
)


class FleetError(ValueError):
    """A keys file or broker setting the console cannot use; one line for the user."""


# -- the keys file: the doors the console manages -----------------------------------------------
@dataclass
class Door:
    serial: str
    key: bytes
    name: str = ""
    groups: list[str] = field(default_factory=list)


def load_keys(path: Path) -> dict[str, Door]:
    """`{"doors": {SERIAL: {"key": HEX, "name": ..., "groups": [...]}}}`, 0600 (the keys
    open every door's visitor codes to whoever reads them)."""
    try:
        raw = json.loads(files.read_private(path))
        doors = {
            str(serial): Door(
                str(serial),
                fleet.key_from_hex(d["key"]),
                str(d.get("name", "")),
                [str(g) for g in d.get("groups", [])],
            )  # fmt: skip
            for serial, d in raw["doors"].items()
        }
    except files.MissingFile:
        return {}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FleetError(f"{path}: not a fleet keys file ({e})") from None
    return doors


def save_keys(path: Path, doors: dict[str, Door]) -> None:
    body = {s: {"key": d.key.hex(), "name": d.name, "groups": d.groups} for s, d in doors.items()}
    files.write_private(path, json.dumps({"doors": body}, indent=2).encode())


def add_door(path: Path, serial: str, name: str = "", groups: list[str] | None = None) -> Door:
    """A door with a fresh key of its own (one door's key opens no other's pushes)."""
    if not TOPIC_WORD.fullmatch(serial):
        raise FleetError(f"{serial!r} is not a lock's serial")
    doors = load_keys(path)
    door = Door(serial, fleet.new_key(), name, groups or [])
    doors[serial] = door
    save_keys(path, doors)
    return door


def pick(doors: dict[str, Door], group: str | None, serials: list[str]) -> list[Door]:
    chosen = [d for d in doors.values() if group is not None and group in d.groups]
    for serial in serials:
        if serial not in doors:
            raise FleetError(f"no key for door {serial} in the keys file")
        chosen.append(doors[serial])
    if not chosen:
        raise FleetError("no door chosen: name a --group of the keys file, or --doors")
    return list({d.serial: d for d in chosen}.values())


# -- what the console knows of each door -----------------------------------------------------
@dataclass
class Seen:
    availability: str = ""
    states: dict[str, str] = field(default_factory=dict)
    head: dict[str, Any] | None = None  # retained: as the broker relays it
    signed_head: dict[str, Any] | None = None  # from the door's last signed ack
    last_event: str = ""


@dataclass
class Pending:
    serial: str
    payload: bytes
    sent_at: float  # monotonic: the first send (or the bench's scheduled time)
    sends: int = 1
    last_sent: float = 0.0
    ack: fleet.Ack | None = None
    acked_at: float | None = None


class Console:
    """One MQTT client for the whole building; thread-safe reads of what it saw."""

    def __init__(
        self,
        url: str,
        doors: dict[str, Door],
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        client_id: str | None = None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        section = {"url": url, "protocol": "3.1.1", "ca_file": "", "reconnect_min_s": 1,
                   "reconnect_max_s": 4, "username": "", "password_file": "",
                   "keepalive_s": 5, "session_expiry_s": 0}  # fmt: skip
        try:
            s = settings(section, Path("."))
        except BadSettings as e:
            raise FleetError(str(e)) from None
        self.doors, self.on_event = doors, on_event
        self.seen: dict[str, Seen] = {}
        self.pending: dict[str, Pending] = {}
        self.strays = 0  # acks for no push of ours, or failing their MAC
        self._probes: set[str] = set()  # ours, and other consoles' on the same broker
        self.connected = threading.Event()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.client = Rotating(
            s.brokers,
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"lockmesh-console-{uuid.uuid4().hex[:8]}",
            clean_session=False,  # acks wait for us through an outage
            protocol=mqtt.MQTTv311,
        )
        if username:
            self.client.username_pw_set(username, password)
        if s.tls:
            self.client.tls_set_context(ssl.create_default_context(cafile=ca_file))
        self.client.reconnect_delay_set(1, 4)
        self.client.max_inflight_messages_set(1000)  # a bench's pushes are not held back
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)

    def start(self, timeout: float = 15.0) -> None:
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.close()
            raise FleetError("could not reach the broker")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def settle(self, timeout: float = 10.0) -> None:
        """Until the broker has sent every retained message: a probe of our own comes back
        after them (a broker sends a subscription's retained messages first)."""
        marker = secrets.token_hex(8)
        topic = f"{ROOT}/console-{marker}/probe/state"
        self.client.publish(topic, marker, qos=1)
        with self.changed:
            self.changed.wait_for(lambda: marker in self._probes, timeout)

    # -- pushing ------------------------------------------------------------------------------
    def push(self, door: Door, visitor: fleet.Visitor | None, *, at: float | None = None) -> str:
        """One door's sealed push sent (None: ask for its audit head); its id, to wait for
        its ack."""
        ident = uuid.uuid4().hex
        payload = fleet.seal(door.key, door.serial, ident, time.time(), visitor)
        now = time.monotonic()
        with self.lock:
            self.pending[ident] = Pending(door.serial, payload, at or now, last_sent=now)
        self.client.publish(f"{ROOT}/{door.serial}/fleet/set", payload, qos=1)
        return ident

    def resend(self, ident: str) -> None:
        with self.lock:
            p = self.pending[ident]
            p.sends, p.last_sent = p.sends + 1, time.monotonic()
        self.client.publish(f"{ROOT}/{p.serial}/fleet/set", p.payload, qos=1)

    def wait_acks(self, idents: list[str], timeout: float, resend_s: float = 5.0) -> None:
        """Until each push is answered, sending again the ones unanswered after resend_s."""
        deadline = time.monotonic() + timeout
        while True:
            with self.changed:
                left = [i for i in idents if self.pending[i].ack is None]
                if not left or time.monotonic() >= deadline:
                    return
                self.changed.wait(min(resend_s, max(0.0, deadline - time.monotonic())))
            now = time.monotonic()
            for ident in left:
                p = self.pending[ident]
                if p.ack is None and now - p.last_sent >= resend_s:
                    self.resend(ident)

    # -- paho's thread ------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:  # fmt: skip
        if reason.is_failure:
            return
        for topic in (*SUBSCRIPTIONS, f"{ROOT}/+/probe/state"):
            self.client.subscribe_to(topic, qos=1)
        self.connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:  # fmt: skip
        if self.client.refused(mid, reason_codes) is not None:  # it connects again
            self.connected.clear()

    def _on_disconnect(self, *_: Any) -> None:
        self.connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        levels = msg.topic.split("/")
        if len(levels) < 3:
            return
        serial, kind = levels[1], "/".join(levels[2:])
        payload = bytes(msg.payload)
        with self.changed:
            if kind == "probe/state":
                self._probes.add(payload.decode(errors="replace"))
            elif kind == "fleet/ack":
                self._take_ack(serial, payload, now)
            else:
                self._take_state(serial, kind, payload)
            self.changed.notify_all()
        if kind == "availability" and self.on_event is not None:  # a door came or went
            self.on_event(serial, "availability", {"state": payload.decode(errors="replace")})
        elif kind.endswith("/event") and self.on_event is not None:
            try:
                body = json.loads(payload)
            except ValueError:
                body = {"raw": payload[:80].decode(errors="replace")}
            self.on_event(serial, kind.split("/")[0], body if isinstance(body, dict) else {})

    def _take_ack(self, serial: str, payload: bytes, now: float) -> None:
        door = self.doors.get(serial)
        try:
            ack = fleet.read_ack(door.key if door else None, payload)
        except fleet.Refused:
            self.strays += 1
            return
        pending = self.pending.get(ack.id) if ack.id else None
        if pending is None or pending.serial != serial or ack.serial != serial:
            if not ack.signed and pending is None:
                # an unsigned refusal names no id: the door could not open the push
                # (or the broker says so): it stays pending, and is sent again
                self.strays += 1
            return
        if not ack.signed:
            self.strays += 1  # not the door's word: wait for one that is
            return
        if pending.ack is None:
            pending.ack, pending.acked_at = ack, now
        self.seen.setdefault(serial, Seen()).signed_head = ack.head

    def _take_state(self, serial: str, kind: str, payload: bytes) -> None:
        seen = self.seen.setdefault(serial, Seen())
        text = payload.decode(errors="replace")
        if kind == "availability":
            seen.availability = text
        elif kind == "audit/state":
            try:
                head = json.loads(text) if text else None
            except ValueError:
                head = None
            seen.head = head if isinstance(head, dict) else None
        elif kind.endswith("/state"):
            seen.states[kind.split("/")[0]] = text
        elif kind.endswith("/event"):
            seen.last_event = f"{kind.split('/')[0]} {text[:80]}"

    # -- reading ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Seen]:
        with self.lock:
            return {s: Seen(v.availability, dict(v.states), v.head, v.signed_head, v.last_event)
                    for s, v in self.seen.items() if v.availability or v.states}  # fmt: skip

    def signed_heads(self, timeout: float = 5.0) -> None:
        """Each door of the keys file asked for its audit head; the signed answers land in
        snapshot()'s signed_head (the doors that answer in time)."""
        idents = [self.push(door, None) for door in self.doors.values()]
        self.wait_acks(idents, timeout, resend_s=timeout)

    def outcome(self, ident: str) -> Pending:
        with self.lock:
            return self.pending[ident]
