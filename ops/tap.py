"""The tap: every message of every service, decoded, live; and recordings of it.

It listens on each publisher with a SUB socket of its own (ZeroMQ PUB never waits for a
slow subscriber, so the tap cannot slow the mesh: at worst it misses messages, and says
how many by their sequence numbers).
"""

from __future__ import annotations

import fnmatch
import json
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Iterator

import msgpack
import zmq

from proto.bus import Bus
from proto.layout import PUBLISHERS
from proto.wire import Envelope, WireError, decode, fields

SETTLE_S = 2.0  # how long the tap waits to hear each publisher before saying it listens


def matches(topic: str, globs: list[str]) -> bool:
    return not globs or any(fnmatch.fnmatchcase(topic, g) for g in globs)


def as_json(env: Envelope) -> dict[str, Any]:
    """The stable JSON shape of one message (README: "The tap")."""
    return {"topic": env.topic, **fields(env, env.body.redacted())}


def as_line(env: Envelope) -> str:
    clock = datetime.fromtimestamp(env.wall).strftime("%H:%M:%S.%f")[:-3]
    cause = f" <- {env.cause}" if env.cause else ""
    body = json.dumps(env.body.redacted(), separators=(",", ":"), default=str)
    return f"{clock} {env.topic:<28} {env.id}{cause} {body}"


class Tap:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.poller = zmq.Poller()
        self.peers: dict[zmq.Socket, str] = {}
        for name in PUBLISHERS:
            sock = bus.subscribe(name)
            self.peers[sock] = name
            self.poller.register(sock, zmq.POLLIN)

    def frames(self, timeout: float | None) -> Iterator[tuple[str, list[bytes]]]:
        """(publisher, frames) as they come, for timeout seconds in all (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or (left := deadline - time.monotonic()) > 0:
            ready = self.poller.poll(1000 if deadline is None else max(1, int(left * 1000)))
            for sock, _ in ready:
                yield self.peers[sock], sock.recv_multipart()

    def settle(self, limit: float = SETTLE_S) -> set[str]:
        """Wait until every publisher has been heard (heartbeats), or limit; who was heard."""
        heard: set[str] = set()
        deadline = time.monotonic() + limit
        while heard != set(PUBLISHERS) - {"procevents"} and time.monotonic() < deadline:
            for peer, _ in self.frames(0.05):
                heard.add(peer)
                break
        return heard


def record_line(out: IO[bytes], frames: list[bytes]) -> None:
    out.write(msgpack.packb([time.time(), frames], use_bin_type=True))
    out.flush()


def read_recording(path: Path) -> Iterator[Envelope]:
    """The messages of a recording, decoded and checked as a receiver would."""
    with open(path, "rb") as f:
        for _, frames in msgpack.Unpacker(f, raw=False):
            try:
                yield decode(frames)
            except WireError:
                continue
