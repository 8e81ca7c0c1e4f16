"""The bridge's MQTT connection: paho-mqtt in its own thread, its news handed to the loop.

paho's network thread connects, reconnects with a doubling back-off, keeps the session
and calls back; the callbacks only queue what happened and write a byte to a pipe that
the service's loop watches (as services/mailbox.py does for workers), so every decision,
request and file write stays in the service's one thread. Publishing is paho's own
thread-safe queue. The last will says `offline`, retained, on the availability topic.

Commands are acknowledged by hand (manual_ack): the loop acks a message only once it has
written its id down and done (or refused) it, so a crash before that lets the broker
deliver it again, where the ledger recognises it.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from proto import files

log = logging.getLogger(__name__)

SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}
PROTOCOLS = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}


class BadSettings(ValueError):
    """An [mqtt] setting the bridge cannot use; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    tls: bool
    ca_file: str | None
    username: str | None
    password: str | None
    protocol: str  # "3.1.1" or "5"
    keepalive_s: int
    reconnect_min_s: int
    reconnect_max_s: int
    session_expiry_s: int
    others: tuple[tuple[str, int], ...] = ()  # a cluster's other nodes, tried in turn

    @property
    def brokers(self) -> tuple[tuple[str, int], ...]:
        return ((self.host, self.port), *self.others)

    @property
    def url(self) -> str:
        """The broker, as status shows it (no credentials)."""
        nodes = ",".join(f"{host}:{port}" for host, port in self.brokers)
        return f"{'mqtts' if self.tls else 'mqtt'}://{nodes}"


def settings(section: dict[str, Any], data: Path) -> Settings:
    """[mqtt] read and checked; the password from its file (0600, as every secret). The
    url may name a cluster's nodes, `mqtt://n1:1883,n2:1883,n3:1883`: the bridge goes to
    the next one each time it reconnects."""
    scheme, _, rest = section["url"].partition("://")
    if scheme not in SCHEMES:
        raise BadSettings(f"mqtt.url must start mqtt:// or mqtts://, not {section['url']!r}")
    tls, default_port = SCHEMES[scheme]
    brokers = [_node(f"{scheme}://{node}", default_port) for node in rest.split(",")]
    if section["protocol"] not in PROTOCOLS:
        raise BadSettings(f"mqtt.protocol is 3.1.1 or 5, not {section['protocol']!r}")
    if section["ca_file"] and not tls:
        raise BadSettings("mqtt.ca_file is for mqtts:// only")
    low, high = section["reconnect_min_s"], section["reconnect_max_s"]
    if not 0 < low <= high:
        raise BadSettings("mqtt.reconnect_min_s must be above 0 and at most reconnect_max_s")
    (host, port), *others = brokers
    return Settings(
        host=host,
        port=port,
        tls=tls,
        ca_file=str(data / section["ca_file"]) if section["ca_file"] else None,
        username=section["username"] or None,
        password=_password(section["password_file"], data),
        protocol=section["protocol"],
        keepalive_s=section["keepalive_s"],
        reconnect_min_s=low,
        reconnect_max_s=high,
        session_expiry_s=section["session_expiry_s"],
        others=tuple(others),
    )


def _node(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise BadSettings("mqtt.url holds no credentials: use mqtt.username and password_file")
    if not parts.hostname or parts.path not in ("", "/"):
        raise BadSettings(f"mqtt.url names a broker host and port only: {url!r}")
    try:
        return parts.hostname, parts.port or default_port
    except ValueError as e:
        raise BadSettings(f"mqtt.url: {e}") from None


def _password(name: str, data: Path) -> str | None:
    if not name:
        return None
    raw = files.read_private(data / name)  # refused, naming it, if others can read it
    return raw.decode("utf-8").rstrip("\n")


# -- what the network thread hands the loop -------------------------------------------------
@dataclass(frozen=True)
class Connected:
    session_present: bool


@dataclass(frozen=True)
class Lost:
    why: str  # the broker refused us, or the connection dropped


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    correlation: bytes | None = None  # MQTT 5: CorrelationData
    response_topic: str | None = None  # MQTT 5: ResponseTopic


News = Connected | Lost | Incoming


class Link:
    """One client: a persistent session under client_id, subscribed to `subscribe`."""

    def __init__(self, s: Settings, client_id: str, will_topic: str, subscribe: list[str]) -> None:
        self.settings, self.subscriptions = s, subscribe
        self.connected = False
        self._refusal: str | None = None  # a CONNACK's or SUBACK's refusal, until the drop
        self._news: queue.Queue[News] = queue.Queue()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        v5 = s.protocol == "5"
        self.client = Rotating(
            s.brokers,
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if v5 else False,  # the broker keeps our subscription
            protocol=PROTOCOLS[s.protocol],
            manual_ack=True,
        )
        if s.username:
            self.client.username_pw_set(s.username, s.password)
        if s.tls:
            self.client.tls_set_context(ssl.create_default_context(cafile=s.ca_file))
        self.client.will_set(will_topic, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    @property
    def fd(self) -> int:
        return self._read

    def start(self) -> None:
        """Connect in the background; the first attempt, like every later one, is retried."""
        s, properties = self.settings, None
        if s.protocol == "5":  # kept across our absences, so queued commands wait for us
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = s.session_expiry_s
        self.client.connect_async(
            s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=properties
        )
        self.client.loop_start()

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        retain: bool,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)

    def ack(self, message: Incoming) -> None:
        if message.qos:
            self.client.ack(message.mid, message.qos)

    def news(self) -> list[News]:
        """What happened since the last call (in the loop, when fd is readable)."""
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass
        out: list[News] = []
        while True:
            try:
                out.append(self._news.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        """Disconnect cleanly (the broker then drops the will) and stop the thread; start()
        connects again."""
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            self.connected = False

    def close(self) -> None:
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- paho's thread ----------------------------------------------------------------------
    def _tell(self, news: News) -> None:
        self._news.put(news)
        try:
            os.write(self._write, b"\0")
        except OSError:
            pass  # closed: the bridge is stopping

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:  # the disconnection that follows says it (_on_disconnect)
            self._refusal = str(reason)
            return
        self.connected = True
        for topic in self.subscriptions:  # again at each connect: idempotent, and a
            if self.settings.protocol == "5":  # broker that lost our session gets it back
                # MQTT 5 keeps a message's retain flag even live, so a retained command
                # is refused at once, not only when a reconnection replays it
                options = SubscribeOptions(qos=1, retainAsPublished=True)
                self.client.subscribe_to(topic, options=options)
            else:
                self.client.subscribe_to(topic, qos=1)
        self._tell(Connected(flags.session_present))

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        topic = self.client.refused(mid, reason_codes)
        if topic is not None:  # the disconnection that follows says it
            self._refusal = f"the subscription to {topic} ({reason_codes[0]})"

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected = False
        refusal, self._refusal = self._refusal, None
        self._tell(
            Lost(f"the broker refused us: {refusal}" if refusal else f"disconnected: {reason}")
        )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._tell(Lost("could not reach the broker"))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        props = msg.properties
        correlation = getattr(props, "CorrelationData", None) if props else None
        response = getattr(props, "ResponseTopic", None) if props else None
        self._tell(
            Incoming(
                msg.topic,
                bytes(msg.payload),
                msg.qos,
                bool(msg.retain),
                msg.mid,
                correlation,
                response,
            )
        )


class Rotating(mqtt.Client):
    """paho's client, going to a cluster's next node at each reconnection. paho reconnects
    to the host it was given and refuses to change it while its loop runs (the host
    setter raises), so the node is set where paho reads it, just before it connects.

    It also holds each subscription to its SUBACK: a broker may refuse one in a connection it
    accepted (a clustered NATS whose JetStream has lost its leader with a node: CI's stop
    22, where the console heard no ack for 120 s while calling itself connected)."""

    def __init__(self, brokers: tuple[tuple[str, int], ...], *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._brokers, self._turn, self._first = brokers, 0, True
        self._asked: dict[int, str] = {}  # a SUBSCRIBE's mid -> its topic
        self.subscriptions_refused = 0

    def connect_async(self, host: str, port: int = 1883, *args: Any, **kw: Any) -> None:
        self._turn, self._first = 0, True
        super().connect_async(host, port, *args, **kw)

    @property
    def node(self) -> str:
        """The node it is on (or trying)."""
        return f"{self._host}:{self._port}"

    def reconnect(self) -> mqtt.MQTTErrorCode:
        if len(self._brokers) > 1 and not self._first:  # a reconnection: the next node
            self._turn = (self._turn + 1) % len(self._brokers)
            self._host, self._port = self._brokers[self._turn]  # paho 2.x's own fields
        self._first, self._asked = False, {}  # the last connection's SUBACKs never come
        return super().reconnect()

    def subscribe_to(self, topic: str, **kw: Any) -> None:
        """subscribe(), its SUBACK to be passed to refused() (from on_subscribe)."""
        _, mid = self.subscribe(topic, **kw)
        if mid is not None:  # else not connected: on_connect subscribes again
            self._asked[mid] = topic

    def refused(self, mid: int, reason_codes: list[ReasonCode]) -> str | None:
        """The topic a SUBACK refused, if it did. The connection is then dropped, so that
        paho connects again after its back-off (to the next node) and subscribes anew:
        connected but deaf is the one state a client must not stay in."""
        topic = self._asked.pop(mid, None)
        if topic is None or not any(code.is_failure for code in reason_codes):
            return None
        self.subscriptions_refused += 1
        sock = self.socket()
        if isinstance(sock, socket.socket):  # an SSLSocket is one too
            try:
                sock.shutdown(socket.SHUT_RDWR)  # paho's loop reads the end, and reconnects
            except OSError:
                pass  # already gone: paho reconnects anyway
        return topic


def response_properties(correlation: bytes | None) -> Properties | None:
    """MQTT 5: a response carries the request's correlation datum back."""
    if correlation is None:
        return None
    properties = Properties(PacketTypes.PUBLISH)
    properties.CorrelationData = correlation
    return properties
