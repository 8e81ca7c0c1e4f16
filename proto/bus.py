"""One process's sockets on the mesh, all CURVE-authenticated, on one ZeroMQ context."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

import zmq
from zmq.utils import z85

from proto import curve, trust
from proto.control import refused
from proto.freshness import Freshness
from proto.layout import Layout
from proto.schema import Message
from proto.wire import MAX_MESSAGE_BYTES, Envelope, Stamper, WireError, decode, encode

log = logging.getLogger(__name__)


class Counters:
    """Messages in and out, drops by reason, and sequence gaps.

    Drops and gaps are what an attack leaves behind, so they outlive a restart: load()
    and save() keep them in a small file (saved when changed, not on every message).
    """

    def __init__(self) -> None:
        self.msgs_in = 0
        self.msgs_out = 0
        self.drops: Counter[str] = Counter()
        self.gaps = 0
        self._lock = threading.Lock()  # the ZAP thread counts unknown keys
        self._saved: tuple[dict[str, int], int] = ({}, 0)

    def drop(self, reason: str, detail: str, where: str, logged: bool = True) -> None:
        with self._lock:
            self.drops[reason] += 1
        if logged:
            log.warning("dropped a message on %s: %s: %s", where, reason, detail)

    def missed(self, count: int, sender: str) -> None:
        if count > 0:
            self.gaps += count
            log.warning("missed %d message(s) from %s", count, sender)

    def persistent(self) -> tuple[dict[str, int], int]:
        with self._lock:
            return dict(self.drops), self.gaps

    @staticmethod
    def saved(path: Path) -> tuple[dict[str, int], int] | None:
        """The drops and gaps a service last saved; None if there are none, or (logged) if
        the file is bad."""
        try:
            saved = json.loads(path.read_text())
            return {str(k): int(v) for k, v in saved["drops"].items()}, int(saved["gaps"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("ignored the counters in %s: %s", path, e)
            return None

    def load(self, path: Path) -> None:
        """Take up the counts a previous run of this service left; a bad file is ignored."""
        saved = Counters.saved(path)
        if saved is None:
            return
        drops, gaps = saved
        with self._lock:
            self.drops.update(drops)
            self.gaps += gaps
        self._saved = self.persistent()

    def save(self, path: Path) -> None:
        """Write the counts atomically if they changed since the last save."""
        now = self.persistent()
        if now == self._saved:
            return
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"drops": now[0], "gaps": now[1]}))
            os.replace(tmp, path)
        except OSError as e:
            log.warning("could not save the counters in %s: %s", path, e)
            return
        self._saved = now


ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # where libzmq asks a context's handler (RFC 27)


def _zap_reply(request: list[bytes], status: bytes, text: bytes, user: bytes = b"") -> list[bytes]:
    """RFC 27's reply: version, the request's id (empty if it had none), status, text, user
    id, metadata."""
    request_id = request[1] if len(request) > 1 else b""
    return [b"1.0", request_id, status, text, user, b""]


class _Keyring:
    """The context's ZAP handler (RFC 27): admits only CURVE clients whose public key is in
    the lock's key folder, and names each by its identity, the User-Id its messages carry.

    A plain thread on a REP socket: pyzmq's ThreadAuthenticator runs an asyncio loop for
    this, and importing asyncio and zmq.asyncio cost 40 ms in every process of the mesh.
    """

    def __init__(
        self, ctx: zmq.Context[zmq.Socket[bytes]], keyring: dict[bytes, str], counters: Counters
    ) -> None:
        self.keyring, self.counters = keyring, counters
        self.refused: set[bytes] = set()
        self.only: dict[str, frozenset[str]] = {}  # ZAP domain: the identities it admits
        # bound before any server socket of the context, so no client is ever unchecked
        self._requests = ctx.socket(zmq.REP)
        self._requests.linger = 0
        self._requests.bind(ZAP_ENDPOINT)
        wake = f"inproc://zap-stop-{id(self)}"
        self._stop_in, self._stop_out = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        self._stop_in.bind(wake)
        self._stop_out.connect(wake)
        self._thread = threading.Thread(target=self._serve, name="zap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop_out.send(b"")
        self._thread.join()
        self._stop_out.close(linger=0)

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._requests, zmq.POLLIN)
        poller.register(self._stop_in, zmq.POLLIN)
        try:
            while self._stop_in not in dict(poller.poll()):
                request = self._requests.recv_multipart()
                try:
                    reply = self._answer(request)
                except Exception:
                    # without a handler libzmq admits every client: the thread must live on
                    log.exception("ZAP handler failed on a request; the client is refused")
                    reply = _zap_reply(request, b"500", b"handler error")
                self._requests.send_multipart(reply)
        finally:
            self._requests.close(linger=0)
            self._stop_in.close(linger=0)

    def _answer(self, request: list[bytes]) -> list[bytes]:
        """The reply to one request (_zap_reply)."""
        # a CURVE request: version, id, domain, address, routing id, mechanism, client key
        if (
            len(request) != 7
            or request[0] != b"1.0"
            or request[5] != b"CURVE"
            or len(request[6]) != 32
        ):
            return _zap_reply(request, b"400", b"only CURVE clients are admitted")
        domain, key = request[2].decode(errors="replace"), z85.encode(request[6])
        name = self.admitted(domain, key)
        if name is None:
            return _zap_reply(request, b"400", b"key not admitted")
        return _zap_reply(request, b"200", b"OK", name.encode())

    def admitted(self, domain: str, key: bytes) -> str | None:
        """The identity of key (Z85) if it may connect to domain; else None, counted."""
        name = self.keyring.get(key)
        admitted = self.only.get(domain)
        if name is not None and (admitted is None or name in admitted):
            return name
        # counted at every attempt, logged once: a refused client retries ten times a second
        first = key not in self.refused
        self.refused.add(key)
        reason, who = (
            ("unknown-key", f"CURVE key {key.decode()[:12]}…")
            if name is None
            else ("unauthorized", f"{name} may not connect to {domain}")
        )
        self.counters.drop(reason, who, "connect", first)
        return None


class Bus:
    """The sockets of one identity: publisher, command server, subscriptions, clients."""

    def __init__(
        self,
        layout: Layout,
        name: str,
        *,
        max_bytes: int = MAX_MESSAGE_BYTES,
        without: Iterable[str] = (),
    ) -> None:
        """without: the parts this lock is made without (mesh.without). Their keys stay in
        the key folder (a lock may be fitted with them later) but admit no one here."""
        self.layout, self.name, self.max_bytes = layout, name, max_bytes
        # A context of its own: the ZAP handler binds a fixed inproc address per context,
        # and a closed handler's bind is released later, by libzmq's reaper; on a shared
        # context the next Bus's handler could find it still taken.
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.identity = curve.load_identity(layout.keys, name)
        left_out = frozenset(without)
        self.keyring = {
            key: who for key, who in curve.load_keyring(layout.keys).items() if who not in left_out
        }
        self.counters = Counters()
        self.events = Stamper(name, channel="e")
        self.commands = Stamper(name, channel="c")
        self.fresh_events = Freshness()  # sessions and sequences heard, per channel:
        self.fresh_requests = Freshness()  # a sender's two Stampers are two series
        self._auth: _Keyring | None = None
        self._sockets: list[zmq.Socket[bytes]] = []
        self._filtered: set[zmq.Socket[bytes]] = set()  # subscribed to some types only

    # -- sockets -------------------------------------------------------------------------
    def _authenticator(self) -> _Keyring:
        if self._auth is None:
            self._auth = _Keyring(self.ctx, self.keyring, self.counters)
        return self._auth

    def _server(self, kind: int, endpoint: str, domain: str = "") -> zmq.Socket[bytes]:
        self._authenticator()
        sock = self._socket(kind)
        sock.curve_server = True
        sock.curve_secretkey = self.identity.secret
        sock.curve_publickey = self.identity.public
        if domain:
            sock.zap_domain = domain.encode()
        sock.bind(endpoint)
        return sock

    def bind_restricted(
        self, kind: int, endpoint: str, domain: str, admit: tuple[str, ...]
    ) -> zmq.Socket[bytes]:
        """A server socket off the bus (the face service's live video) that only the
        identities in admit may connect to: the same CURVE keys and ZAP handler, under a ZAP
        domain of its own; any other key is refused at the handshake and counted."""
        auth = self._authenticator()
        auth.only[domain] = frozenset(admit)  # before the bind: no client comes in unchecked
        return self._server(kind, endpoint, domain)

    def _client(self, kind: int, peer: str, endpoint: str) -> zmq.Socket[bytes]:
        sock = self._socket(kind)
        sock.curve_secretkey = self.identity.secret
        sock.curve_publickey = self.identity.public
        sock.curve_serverkey = curve.public_key(self.layout.keys, peer)
        sock.connect(endpoint)
        return sock

    def _socket(self, kind: int) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.linger = 0
        sock.maxmsgsize = self.max_bytes * 2  # the transport's own cap; decode() checks ours
        self._sockets.append(sock)
        return sock

    def bind_publisher(self) -> zmq.Socket[bytes]:
        sock = self._server(zmq.PUB, self.layout.pub(self.name))
        sock.sndhwm = 10000
        return sock

    def bind_commands(self) -> zmq.Socket[bytes]:
        return self._server(zmq.ROUTER, self.layout.cmd(self.name))

    def subscribe(
        self, peer: str, types: Iterable[type[Message]] | None = None
    ) -> zmq.Socket[bytes]:
        """One peer's events, all of them or only these types: one socket per peer, so the
        sender is known by key. The publisher filters, so a type nobody here handles
        never wakes this process (a keypad's keys woke every listener, the watchdog
        included, as the code went to policy: issue 12 item 6). Sequence gaps are
        counted only where every event is heard: a filtered stream has them by design."""
        sock = self._client(zmq.SUB, peer, self.layout.pub(peer))
        if types is None:
            sock.subscribe(b"")
            return sock
        for kind in types:
            sock.subscribe(kind.topic_of(peer).encode())
        self._filtered.add(sock)
        return sock

    def client(self, peer: str) -> "Client":
        return Client(self, peer)

    def __enter__(self) -> "Bus":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)
        self._sockets.clear()
        self._filtered.clear()
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if not self.ctx.closed:
            self.ctx.destroy(linger=0)  # and any socket made on it outside this Bus

    # -- messages ------------------------------------------------------------------------
    def publish(
        self, sock: zmq.Socket[bytes], body: Message, cause: str | None = None
    ) -> Envelope[Message]:
        return self.send_event(sock, self.events.stamp(body, cause))

    def send_event(self, sock: zmq.Socket[bytes], env: Envelope[Message]) -> Envelope[Message]:
        """Send an event stamped earlier (self.events.stamp): its id could be named as the
        cause of what was done before it went out."""
        sock.send_multipart(encode(env))
        self.counters.msgs_out += 1
        return env

    def receive_event(self, sock: zmq.Socket[bytes], peer: str) -> Envelope[Message] | None:
        """Read one event from a peer's publisher; None (counted, logged) if it is bad."""
        frames = [f.bytes for f in received(sock)]
        return self.receive_event_frames(frames, peer, whole=sock not in self._filtered)

    def receive_event_frames(
        self, frames: list[bytes], peer: str, *, whole: bool = True
    ) -> Envelope[Message] | None:
        """One event, checked: its envelope, its sender, the trust table, its freshness;
        whole: the stream has all of the peer's events, so a gap in it is a loss."""
        env = self.accept(frames, f"{peer} events")
        if env is None:
            return None
        try:
            _authorize(env, peer, "event")
            missed = self.fresh_events.admit(env)
        except WireError as e:
            self.counters.drop(e.reason, e.detail, f"{peer} events")
            return None
        self.counters.msgs_in += 1
        if whole:
            self.counters.missed(missed, peer)
        return env

    def accept(self, frames: list[bytes], where: str) -> Envelope[Message] | None:
        try:
            return decode(frames, max_bytes=self.max_bytes)
        except WireError as e:
            self.counters.drop(e.reason, e.detail, where)
            return None

    def receive_command(
        self, sock: zmq.Socket[bytes]
    ) -> tuple[list[bytes], str, Envelope[Message] | None]:
        """Read one request: (route, authenticated peer, envelope or None if dropped).

        A request the trust table forbids, one that is late or replayed, or one whose body
        does not fit its type is answered here with that refusal, so its sender hears why
        at once; garbage, and a request that lies about its sender, get no answer.
        """
        frames = received(sock)
        route, rest = [frames[0].bytes], [f.bytes for f in frames[1:]]
        peer = str(frames[-1].get("User-Id")) if len(frames) > 1 else ""
        env: Envelope[Message] | None = None
        try:
            env = decode(rest, max_bytes=self.max_bytes)
            _authorize(env, peer, "request")
            self.fresh_requests.admit_request(env)
        except WireError as e:
            self.counters.drop(e.reason, e.detail, f"commands from {peer}")
            answer_to = env.id if env is not None else e.answer_to
            if answer_to is not None and e.reason != "forged":
                self.reply(sock, route, refused(e.reason, e.detail), answer_to)
            return route, peer, None
        self.counters.msgs_in += 1
        return route, peer, env

    def reply(self, sock: zmq.Socket[bytes], route: list[bytes], body: Message, cause: str) -> None:
        sock.send_multipart(route + encode(self.commands.stamp(body, cause)))
        self.counters.msgs_out += 1


def received(sock: zmq.Socket[bytes]) -> list[zmq.Frame]:
    """One whole message, as Frames (the last one names the peer's User-Id). A frame says
    whether more follow: recv_multipart asks the socket instead (getsockopt RCVMORE),
    which doubled the cost of reading a request (issue 12 item 6)."""
    frames = [sock.recv(copy=False)]
    while frames[-1].more:
        frames.append(sock.recv(copy=False))
    return frames


def _authorize(env: Envelope[Message], peer: str, kind: trust.Kind) -> None:
    """The authenticated peer is the sender it claims, and the trust table lets it send this."""
    if env.sender != peer:
        raise WireError("forged", f"{peer} sent {env.type} as {env.sender}")
    why = trust.refusal(env.type, kind, peer)
    if why is not None:
        raise WireError("unauthorized", why)


class Client:
    """Requests to one peer with a deadline. No answer in time is None: a refusal, never a yes.

    After a timeout the socket is rebuilt, so a late answer cannot be taken for the next.
    """

    def __init__(self, bus: Bus, peer: str) -> None:
        self.bus, self.peer = bus, peer
        self._sock: zmq.Socket[bytes] | None = None

    def request(
        self,
        body: Message,
        *,
        timeout: float,
        cause: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sent: Callable[[], object] | None = None,
    ) -> Envelope[Message] | None:
        """The answer, or None; sent() is called as soon as the request has left, to do
        something while the peer works on it."""
        sock = self._socket()
        env = self.bus.commands.stamp(body, cause, timeout=timeout)
        sock.send_multipart(encode(env))
        self.bus.counters.msgs_out += 1
        if sent is not None:
            sent()
        deadline = clock() + timeout
        while (remaining := deadline - clock()) > 0:
            if not sock.poll(math.ceil(remaining * 1000)):
                continue  # loops until the deadline has passed: the request has expired
            reply = self._reply([f.bytes for f in received(sock)])
            if reply is not None and reply.cause == env.id:
                self.bus.counters.msgs_in += 1
                return reply
        log.warning("%s did not answer %s within %.1fs", self.peer, body.TYPE, timeout)
        self.close()
        return None

    def _reply(self, frames: list[bytes]) -> Envelope[Message] | None:
        """An answer from the peer asked (its CURVE key was pinned), of a type it may answer."""
        where = f"replies from {self.peer}"
        reply = self.bus.accept(frames, where)
        if reply is None:
            return None
        try:
            _authorize(reply, self.peer, "reply")
        except WireError as e:
            self.bus.counters.drop(e.reason, e.detail, where)
            return None
        return reply

    def _socket(self) -> zmq.Socket[bytes]:
        if self._sock is None:
            self._sock = self.bus._client(zmq.DEALER, self.peer, self.bus.layout.cmd(self.peer))
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self.bus._sockets.remove(self._sock)
            self._sock.close(linger=0)
            self._sock = None
