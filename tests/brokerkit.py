"""A real MQTT broker for the bridge's tests (issue 17), and a client that listens as Home
Assistant does.

Mosquitto from Debian's packages (ops/venv.sh installs it), one per test module, on a free
port of 127.0.0.1, with its own configuration, persistence and log in a temporary folder,
stopped (or killed, and started again on the same port) by its pid. Persistence is saved
at every change, so a SIGKILL loses no retained message and no session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ops.ports import free_port
from tests.meshkit import eventually


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if not found:
        pytest.fail("mosquitto is not installed: ops/venv.sh ensure_mosquitto installs it")
    return found


@dataclass
class Tls:
    """The broker's certificate, signed by a CA of the test's own (in folder)."""

    ca: Path
    cert: Path
    key: Path


def make_tls(folder: Path) -> Tls:
    """A CA and a certificate for 127.0.0.1 and localhost, made with `cryptography`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    week = datetime.timedelta(days=7)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("lockmesh test CA"))
        .issuer_name(name("lockmesh test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - week)
        .not_valid_after(now + week)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - week)
        .not_valid_after(now + week)
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(folder / "ca.pem", folder / "broker.pem", folder / "broker.key")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


class Broker:
    """One mosquitto, its configuration written in folder; started, killed, restarted."""

    def __init__(
        self, folder: Path, *, tls: Tls | None = None, users: dict[str, str] | None = None
    ) -> None:
        self.folder, self.tls, self.users = folder, tls, users
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(self._conf())

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _conf(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.folder}/",
            "autosave_interval 1",  # with autosave_on_changes: saved at every change,
            "autosave_on_changes true",  # so a SIGKILL loses nothing
            f"log_dest file {self.folder}/mosquitto.log",
            "log_type all",
            "max_queued_messages 1000",
            "set_tcp_nodelay true",  # else Nagle and delayed acks add 40 ms to each answer
        ]
        if os.geteuid() == 0:  # else it drops to user mosquitto and cannot save here
            lines.append("user root")
        if self.users is not None:
            passwords = self.folder / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwords), user, password], check=True
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.cert}",
                f"keyfile {self.tls.key}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(self._answers, timeout=10.0, every=0.05)

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log()[-2000:]
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        try:
            return (self.folder / "mosquitto.log").read_text(errors="replace")
        except OSError:
            return ""


def nats_binary() -> str:
    found = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/sbin")
    if not found:
        pytest.fail("nats-server is not installed: ops/venv.sh ensure_test_packages installs it")
    return found


class NatsNode:
    """One node of a NATS cluster speaking MQTT (Debian's nats-server 2.9: MQTT 3.1.1, QoS
    0 and 1, sessions and retained messages in JetStream streams replicated to all three
    nodes: `stream_replicas: 3`, else two nodes' streams lose their quorum with one)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder / name, name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.client, self.monitor, self.route, self.mqtt = (free_port() for _ in range(4))
        self.proc: subprocess.Popen[bytes] | None = None

    def write_conf(self, routes: list[int]) -> Path:
        conf = self.folder / "nats.conf"
        peers = ", ".join(f"nats-route://127.0.0.1:{port}" for port in routes)
        conf.write_text(
            f"server_name: {self.name}\n"
            f"listen: 127.0.0.1:{self.client}\n"
            f"http: 127.0.0.1:{self.monitor}\n"
            f'jetstream {{ store_dir: "{self.folder}/js" }}\n'
            f"cluster {{ name: locks, listen: 127.0.0.1:{self.route}, routes: [{peers}] }}\n"
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt}, stream_replicas: 3 }}\n"
        )
        return conf

    def start(self) -> None:
        log = open(self.folder / "nats.log", "ab")
        self.proc = subprocess.Popen(
            [nats_binary(), "-c", str(self.folder / "nats.conf")], stdout=log, stderr=log
        )
        log.close()

    def answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log()[-2000:]
        try:
            socket.create_connection(("127.0.0.1", self.mqtt), timeout=0.5).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        self.proc = None

    def log(self) -> str:
        try:
            return (self.folder / "nats.log").read_text(errors="replace")
        except OSError:
            return ""


class NatsGate:
    """One nats-server speaking MQTT whose users may be denied subscriptions, the one real
    broker here that refuses a SUBSCRIBE in its SUBACK (mosquitto 2.0 grants every one and
    filters later). deny: user -> NATS subjects (MQTT's / is NATS's .); anyone without
    credentials is the user `anyone`. deny() changes it for the same users, in place (SIGHUP;
    each user is given publish permissions, without which 2.9 panics reloading them)."""

    def __init__(self, folder: Path, deny: dict[str, list[str]], password: str) -> None:
        self.node = NatsNode(folder, "gate")
        self.password = password
        self.port, self.tls = self.node.mqtt, None  # as Broker's, for a Listener
        self.users = {*deny, "anyone"}
        self.deny(deny, reload=False)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def deny(self, deny: dict[str, list[str]], *, reload: bool = True) -> None:
        users = []
        for user in sorted(self.users):
            denied = json.dumps(deny.get(user, []))
            users.append(f"{{ user: {user}, password: {json.dumps(self.password)}, "
                         f"permissions: {{ publish: {{ allow: [\">\"] }}, "
                         f"subscribe: {{ deny: {denied} }} }} }}")  # fmt: skip
        node = self.node
        (node.folder / "nats.conf").write_text(
            f"server_name: gate\nlisten: 127.0.0.1:{node.client}\n"
            f'jetstream {{ store_dir: "{node.folder}/js" }}\n'
            f"authorization {{ users: [{', '.join(users)}] }}\nno_auth_user: anyone\n"
            f"mqtt {{ listen: 127.0.0.1:{node.mqtt} }}\n"
        )
        if reload:
            assert node.proc is not None
            node.proc.send_signal(signal.SIGHUP)

    def start(self) -> None:
        self.node.start()
        eventually(self.node.answers, timeout=20.0, every=0.1)
        eventually(lambda: _round_trip(self.node.mqtt), timeout=60.0, every=0.5)

    def stop(self) -> None:
        self.node.stop()


class NatsCluster:
    """Three nats-server nodes routed to each other, each with its MQTT listener."""

    def __init__(self, folder: Path) -> None:
        self.nodes = [NatsNode(folder, f"n{i}") for i in (1, 2, 3)]
        for node in self.nodes:
            node.write_conf([n.route for n in self.nodes if n is not node])

    @property
    def url(self) -> str:
        """Every node, for a client that goes to the next when one is lost."""
        return "mqtt://" + ",".join(f"127.0.0.1:{n.mqtt}" for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            eventually(node.answers, timeout=20.0, every=0.1)
        # MQTT needs JetStream's meta leader and the $MQTT_ streams: a client that
        # subscribes at QoS 1 and hears back its own message on each node says so
        for node in self.nodes:
            eventually(lambda n=node: _round_trip(n.mqtt), timeout=60.0, every=0.5)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _round_trip(port: int) -> bool:
    got = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda *_: got.set()
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except OSError:
        return False
    client.loop_start()
    try:
        topic = f"probe/{uuid.uuid4().hex}"
        client.subscribe(topic, qos=1)
        client.publish(topic, b"x", qos=1)
        return got.wait(3.0)
    finally:
        client.disconnect()
        client.loop_stop()


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    properties: Any = None

    @property
    def text(self) -> str:
        return self.payload.decode()

    def json(self) -> Any:
        return json.loads(self.payload)


class Listener:
    """A client that subscribes as Home Assistant does (its discovery topics, the lock's
    topics) and keeps every message, so a test can wait for the one it expects; it also
    sends commands, as HA's lock does (QoS 1, not retained)."""

    def __init__(
        self,
        broker: Broker,
        topics: list[str],
        *,
        protocol: int = mqtt.MQTTv311,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.seen: list[Seen] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"ha-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        if username:
            self.client.username_pw_set(username, password)
        if broker.tls:
            self.client.tls_set(ca_certs=str(broker.tls.ca))
        self.topics = topics
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 0.5)  # type: ignore[arg-type]
        self.client.connect_async("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        for topic in self.topics:
            client.subscribe(topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.changed:
            self.seen.append(Seen(msg.topic, bytes(msg.payload), bool(msg.retain), msg.properties))
            self.changed.notify_all()

    def wait_for(self, match: Callable[[Seen], bool], timeout: float = 15.0) -> Seen:
        """The first message kept that matches, waiting for it up to timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for seen in self.seen:
                    if match(seen):
                        return seen
                left = deadline - time.monotonic()
                if left <= 0:
                    last = [(s.topic, s.payload[:80]) for s in self.seen[-8:]]
                    raise AssertionError(f"not seen within {timeout}s; last: {last}")
                self.changed.wait(left)

    def settle(self, probe: str, timeout: float = 15.0) -> None:
        """Until the subscriptions are live: a probe on a subscribed topic, published until
        it comes back. A broker sends the retained messages when a subscription is made,
        so by then every retained message there is has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            marker = uuid.uuid4().hex.encode()
            self.client.publish(probe, marker, qos=1)
            try:
                self.wait_for(lambda s, m=marker: s.topic == probe and s.payload == m, 1.0)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def latest(self, topic: str) -> Seen | None:
        with self.changed:
            return next((s for s in reversed(self.seen) if s.topic == topic), None)

    def wait_latest(self, topic: str, payload: str, timeout: float = 15.0) -> None:
        """Until the newest message on topic is payload."""

        def newest_is_it() -> bool:
            seen = self.latest(topic)
            return seen is not None and seen.text == payload

        eventually(newest_is_it, timeout=timeout, every=0.05)

    def clear(self) -> None:
        with self.changed:
            self.seen.clear()

    def send(
        self,
        topic: str,
        payload: str | bytes,
        *,
        retain: bool = False,
        correlation: bytes | None = None,
        response_topic: str | None = None,
    ) -> mqtt.MQTTMessageInfo:
        properties = None
        if correlation is not None or response_topic is not None:
            properties = Properties(PacketTypes.PUBLISH)
            if correlation is not None:
                properties.CorrelationData = correlation
            if response_topic is not None:
                properties.ResponseTopic = response_topic
        return self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
