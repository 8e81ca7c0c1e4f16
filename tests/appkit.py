"""Test support for the owner's app (issue 13): a browser's side of the gateway's HTTP API,
on http.client so that a test controls every byte (headers, raw bodies, chunking), and a
lock claimed in pairing mode through that API."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Callable, Iterator

from proto.policy import Pairing
from services.policy.secrets import identity, read_device_secret
from tests.meshkit import Lock, eventually, is_type

PASSWORD, PIN = "correct horse battery", "4711"
# SET held half a second opens pairing (L-17); the app on any free port.
CONFIG = "[motor]\nlong_press_s = 0.5\n[gateway]\nport = 0\n"
CHANGING = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Answer:
    status: int
    body: Any  # the JSON, or the raw bytes when the answer is not JSON
    headers: http.client.HTTPMessage

    def __repr__(self) -> str:
        return f"<{self.status} {str(self.body)[:300]}>"


@dataclass
class App:
    """One browser: its cookie and its CSRF token, kept from the answers it gets."""

    url: str
    cookie: str | None = None
    csrf: str | None = None
    tls: ssl.SSLContext | None = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        where = urllib.parse.urlsplit(self.url)
        if where.scheme == "https":
            return http.client.HTTPSConnection(
                where.hostname or "", where.port, timeout=timeout, context=self.tls
            )
        return http.client.HTTPConnection(where.hostname or "", where.port, timeout=timeout)

    def headers(self, method: str, csrf: bool = True) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.cookie:
            headers["Cookie"] = f"lm_session={self.cookie}"
        if csrf and self.csrf and method in CHANGING:
            headers["X-CSRF-Token"] = self.csrf
        return headers

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        csrf: bool = True,
        timeout: float = 15.0,
    ) -> Answer:
        sent = self.headers(method, csrf)
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            sent.setdefault("Content-Type", "application/json")
        sent.update(headers or {})
        conn = self._connection(timeout)
        try:
            conn.request(method, path, body=raw, headers=sent)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        self._keep(response.headers)
        try:
            parsed: Any = json.loads(data) if data else None
        except ValueError:
            parsed = data
        if isinstance(parsed, dict) and isinstance(parsed.get("csrf"), str):
            self.csrf = parsed["csrf"]
        return Answer(response.status, parsed, response.headers)

    def _keep(self, headers: http.client.HTTPMessage) -> None:
        """The session cookie as a browser keeps it: set, replaced, or deleted."""
        for line in headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            if "lm_session" in jar:
                morsel = jar["lm_session"]
                gone = not morsel.value or morsel["max-age"] == "0"
                self.cookie = None if gone else morsel.value

    def get(self, path: str, **kw: Any) -> Answer:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.call("POST", path, body, **kw)

    def login(self, password: str = PASSWORD) -> Answer:
        return self.post("/api/login", {"password": password})

    def stream(self, timeout: float = 20.0) -> Stream:
        conn = self._connection(timeout)
        conn.request("GET", "/api/stream", headers=self.headers("GET"))
        response = conn.getresponse()
        assert response.status == 200, (response.status, response.read())
        return Stream(conn, response)


@dataclass
class Stream:
    """An open /api/stream: its events, read as they come."""

    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse
    seen: list[tuple[str, Any]] = field(default_factory=list)
    comments: int = 0

    def events(self) -> Iterator[tuple[str, Any]]:
        name, data = "", ""
        while True:
            line = self.response.readline().decode()
            if not line:
                return  # the server ended it
            line = line.rstrip("\n")
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line == "" and name:
                self.seen.append((name, json.loads(data)))
                yield name, json.loads(data)
                name, data = "", ""

    def wait_for(
        self, name: str, match: Callable[[Any], bool] = lambda data: True, timeout: float = 15.0
    ) -> Any:
        for seen_name, data in self.seen:
            if seen_name == name and match(data):
                return data
        deadline = time.monotonic() + timeout
        try:
            for seen_name, data in self.events():
                if seen_name == name and match(data):
                    return data
                if time.monotonic() > deadline:
                    break
        except (TimeoutError, socket.timeout):
            pass
        raise AssertionError(f"no {name} event within {timeout}s; seen {self.seen[-5:]}")

    def close(self) -> None:
        self.conn.close()


def app_url(lock: Lock) -> str:
    """The URL the gateway serves on, from `lockmesh status` (issue 13)."""
    return eventually(lambda: lock.status()["services"]["gateway"]["detail"].get("url"))


def open_pairing(lock: Lock) -> None:
    """SET held (L-17): pairing mode until claimed or window_s."""
    eventually(lambda: lock.status()["services"]["motor"]["detail"]["set_button"] == "released")
    watch = lock.watcher()
    try:
        lock.cli("sim", "button", "set-long")
        watch.wait_for(is_type(Pairing, open=True))
    finally:
        watch.close()


def lock_identity(lock: Lock) -> tuple[str, str]:
    """The serial number and verification code, as the menu's system information says."""
    who = identity(read_device_secret(lock.layout.data / "device.secret"))
    return who.serial, who.verification_code


def claim(app: App, lock: Lock, password: str = PASSWORD, pin: str = PIN) -> Answer:
    serial, code = lock_identity(lock)
    return app.post(
        "/api/claim", {"serial": serial, "code": code, "password": password, "pin": pin}
    )


def claimed_app(lock: Lock) -> App:
    """A browser logged in to a lock it has just claimed."""
    app = App(app_url(lock))
    open_pairing(lock)
    answer = claim(app, lock)
    assert answer.status == 200, answer
    return app


def events(app: App, **query: Any) -> list[dict[str, Any]]:
    answer = app.get("/api/events?" + urllib.parse.urlencode(query))
    assert answer.status == 200, answer
    return answer.body["items"]
