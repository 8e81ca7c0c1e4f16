"""The bench's side of the owner app's HTTP API (issue 13): keep-alive connections that
carry the owner's session, a page's event stream read in a thread, and what /proc says
of a process.

The clients are http.client connections, one per worker thread of an open loop
(benchkit.OpenLoop): a worker sends a request and blocks in recv, the GIL released, so
50 of them cost the bench little; what they do cost is measured (the bench's own CPU
time per request, and the requests sent late).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import queue
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from ops.benchkit import Failed

COOKIE = "lm_session"
CSRF_HEADER = "X-CSRF-Token"
CHANGING = ("POST", "PUT", "PATCH", "DELETE")
TIMEOUT_S = 15.0  # past the gateway's own 2.5 s wait for policy: a stuck gateway fails
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@dataclass
class Owner:
    """The owner's session, shared by every connection of the bench (a browser's tabs
    share its cookie too): logging in 50 times would hit the gateway's login throttle."""

    cookie: str | None = None
    csrf: str | None = None
    pinned: str | None = None  # on TLS: the device certificate's SHA-256, as the app pins

    def headers(self, method: str, has_body: bool) -> dict[str, str]:
        headers = {}
        if self.cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        if method in CHANGING and self.csrf:
            headers[CSRF_HEADER] = self.csrf
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def keep(self, response: http.client.HTTPResponse, body: Any) -> None:
        for line in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            if COOKIE in jar:
                self.cookie = jar[COOKIE].value or None
        if isinstance(body, dict) and isinstance(body.get("csrf"), str):
            self.csrf = body["csrf"]


class Connection:
    """One client: a keep-alive connection, opened again if the server closed it idle."""

    def __init__(self, url: str, owner: Owner) -> None:
        where = urllib.parse.urlsplit(url)
        self.https = where.scheme == "https"
        self.host, self.port = where.hostname or "127.0.0.1", where.port
        self.owner = owner
        self._conn: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        if not self.https:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
            conn.connect()
            return conn
        context = ssl.create_default_context()  # self-signed: pinned below, as the app does
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT_S,
                                           context=context)  # fmt: skip
        conn.connect()
        der = conn.sock.getpeercert(binary_form=True) or b""
        digest = hashlib.sha256(der).hexdigest().upper()
        seen = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
        if seen != self.owner.pinned:
            conn.close()
            raise Failed(f"the gateway's certificate is {seen}, not the lock's")
        return conn

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON body or raw bytes). A GET on a connection the server had closed
        is sent once more on a new one; anything else that fails is the caller's."""
        raw = None if body is None else json.dumps(body).encode()
        headers = self.owner.headers(method, raw is not None)
        while True:
            reused = self._conn is not None
            conn = self._conn or self._open()
            try:
                conn.request(method, path, body=raw, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except ConnectionError:  # reset, broken pipe, the server's idle close
                conn.close()
                self._conn = None
                if not (reused and method == "GET"):
                    raise
        self._conn = None if response.will_close else conn
        try:
            parsed: Any = json.loads(data) if data else None
        except ValueError:
            parsed = data
        self.owner.keep(response, parsed)
        return response.status, parsed

    def expect(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, answer = self.call(method, path, body)
        if got != status:
            raise Failed(f"{method} {path}: {got} {str(answer)[:200]}")
        return answer

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Page:
    """A page's /api/stream, read in a thread: (monotonic time read, event, data)."""

    def __init__(self, url: str, owner: Owner) -> None:
        self.events: queue.SimpleQueue[tuple[float, str, Any] | None] = queue.SimpleQueue()
        conn = Connection(url, owner)._open()
        conn.request("GET", "/api/stream", headers=owner.headers("GET", False))
        response = conn.getresponse()
        if response.status != 200:
            raise Failed(f"GET /api/stream: {response.status} {response.read()[:200]!r}")
        self._http, self._response = conn, response
        self._thread = threading.Thread(target=self._read, name="page", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name, data = "", ""
        try:
            while line := self._response.readline():
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    name = text[len("event: ") :]
                elif text.startswith("data: "):
                    data = text[len("data: ") :]
                elif text == "" and name:
                    self.events.put((time.monotonic(), name, json.loads(data)))
                    name, data = "", ""
        except (OSError, ValueError):  # closed under us, at the end
            pass
        self.events.put(None)

    def wait_for(self, name: str, match: Any, timeout: float) -> float:
        """The monotonic time the page read the first such event from now on."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                raise Failed("the gateway ended the page's stream")
            read, seen, data = item
            if seen == name and match(data):
                return read
        raise Failed(f"the page had no {name} event within {timeout:.0f} s")

    def drain(self) -> None:
        while True:
            try:
                if self.events.get_nowait() is None:
                    raise Failed("the gateway ended the page's stream")
            except queue.Empty:
                return

    def close(self) -> None:
        try:  # the reader reads the end of the stream and stops; then the socket closes
            self._http.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._http.close()


# -- what /proc says of a process -------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime: fields 14 and 15


def memory_kib(pid: int) -> dict[str, int]:
    """Resident set now (VmRSS) and its peak so far (VmHWM), in KiB."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return {"rss_kib": found["VmRSS"], "peak_kib": found["VmHWM"]}
