"""The two baselines every mesh bench runs beside its paths, block for block.

raw: a pyzmq DEALER to a ROUTER echo thread over ipc://, in this process: no CURVE, no
msgpack, no second process; the floor of a round trip from Python.

transport: what the mesh's transport costs by itself: the same socket types (DEALER
here, ROUTER in a child process) with CURVE on both, a request shaped like a passcode
check packed and unpacked with msgpack, answered with a decision packed the same way.
What it leaves out is our code: envelope and schema checks, the handler, the store. A
mesh path's ratio to it is what our code adds to the transport.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import msgpack
import zmq

from ops.benchkit import Connect, Failed, Once, OpenLoop
from proto.policy import Decision, VerifyPasscode
from proto.wire import Stamper, encode

POLL_MS = 50  # the echo loops wake this often to see whether to stop


def sample_frames() -> tuple[list[bytes], list[bytes]]:
    """A passcode check and an answer, as the mesh's wire encodes them today."""
    request = encode(Stamper("keypad", channel="c").stamp(VerifyPasscode(entry="246813")))
    answer = encode(
        Stamper("policy", channel="c").stamp(
            Decision(granted=True, method="pin", person="001"), "keypad-0-c1"
        )
    )
    return request, answer


class Baselines:
    """Both baselines' servers, up for the whole bench; runners to interleave."""

    def __init__(self, workers: int = 8) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="lmb")
        self.request, self.answer = sample_frames()
        self._ctx: zmq.Context = zmq.Context.instance()
        self._stop = threading.Event()
        raw_endpoint = f"ipc://{self._dir.name}/raw"
        self._raw = threading.Thread(target=_raw_echo, args=(raw_endpoint, self._stop), daemon=True)
        self._raw.start()
        try:
            self._child, self._child_stop, curve = _start_transport_echo(
                f"ipc://{self._dir.name}/curve", self.answer
            )
        except Failed:
            self._stop.set()
            raise
        self.runners = [
            OpenLoop("raw", self._raw_client(raw_endpoint), workers),
            OpenLoop("transport", self._curve_client(*curve), workers),
        ]

    def _raw_client(self, endpoint: str) -> Connect:
        @contextmanager
        def connect() -> Iterator[Once]:
            sock = self._ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(endpoint)
            frames = self.request

            def once() -> None:
                sock.send_multipart(frames)
                if not sock.poll(5000):
                    raise Failed("the raw echo did not answer")
                sock.recv_multipart()

            try:
                yield once
            finally:
                sock.close()

        return connect

    def _curve_client(self, endpoint: str, server_public: bytes) -> Connect:
        body = msgpack.unpackb(self.request[1], raw=False)
        topic = self.request[0]

        @contextmanager
        def connect() -> Iterator[Once]:
            sock = self._ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
            sock.curve_serverkey = server_public
            sock.connect(endpoint)

            def once() -> None:
                sock.send_multipart([topic, msgpack.packb(body, use_bin_type=True)])
                if not sock.poll(5000):
                    raise Failed("the CURVE echo did not answer")
                msgpack.unpackb(sock.recv_multipart()[1], raw=False)

            try:
                yield once
            finally:
                sock.close()

        return connect

    def close(self) -> None:
        for runner in self.runners:
            runner.close()
        self._stop.set()
        self._child_stop.set()
        self._raw.join(timeout=5)
        self._child.join(timeout=5)
        if self._child.is_alive():
            self._child.kill()
        self._dir.cleanup()

    def __enter__(self) -> "Baselines":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _raw_echo(endpoint: str, stop: threading.Event) -> None:
    sock: zmq.Socket = zmq.Context.instance().socket(zmq.ROUTER)
    sock.linger = 0
    sock.bind(endpoint)
    while not stop.is_set():
        if sock.poll(POLL_MS):
            sock.send_multipart(sock.recv_multipart())
    sock.close()


def _start_transport_echo(endpoint: str, answer: list[bytes]) -> tuple[Any, Any, tuple]:
    ctx = multiprocessing.get_context("spawn")
    public, secret = zmq.curve_keypair()
    stop, ready = ctx.Event(), ctx.Event()
    child = ctx.Process(
        target=transport_echo, args=(endpoint, public, secret, answer, stop, ready), daemon=True
    )
    child.start()
    if not ready.wait(20):
        child.kill()
        raise Failed("the CURVE echo process did not start")
    return child, stop, (endpoint, public)


def transport_echo(
    endpoint: str, public: bytes, secret: bytes, answer: list[bytes], stop: Any, ready: Any
) -> None:
    """The child process: a CURVE ROUTER that unpacks each request and packs an answer."""
    sock: zmq.Socket = zmq.Context().socket(zmq.ROUTER)
    sock.linger = 0
    sock.curve_server = True
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.bind(endpoint)
    topic, body = answer[0], msgpack.unpackb(answer[1], raw=False)
    ready.set()
    while not stop.is_set():
        if sock.poll(POLL_MS):
            route, _, packed = sock.recv_multipart()
            msgpack.unpackb(packed, raw=False)
            sock.send_multipart([route, topic, msgpack.packb(body, use_bin_type=True)])
    sock.close()
