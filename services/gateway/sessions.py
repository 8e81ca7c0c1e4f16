"""The app's sessions, their CSRF tokens, and the gateway's own login throttle (issue 13).

A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie (Secure on
TLS), known only to this gateway process: kept in its memory (as a SHA-256, so a dump of
the table gives no cookie), never on disk. So a restart of the gateway logs everyone out,
and a cookie minted by another lock's gateway is unknown here and refused. Each session
ends after `session_idle_s` without use and `session_max_s` after the login, whatever.

Policy checks the password and keeps the lockout of wrong ones (AppLogin, like L-20);
the gateway additionally throttles login and claim attempts per client address, so that
one client cannot spend the owner's lockout for everyone else at wire speed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

TOKEN_BYTES = 32  # 256 bits
MAX_SESSIONS = 64  # the oldest is dropped beyond this: memory stays bounded
MAX_CLIENTS = 1024  # addresses the throttle remembers at once


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass
class Session:
    csrf: str
    started: float
    seen: float

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.csrf.encode()
        )


class Sessions:
    """Live sessions by the hash of their token, oldest first."""

    def __init__(
        self, idle_s: float, max_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_s, self.max_s, self.clock = idle_s, max_s, clock
        self._live: OrderedDict[bytes, Session] = OrderedDict()

    def mint(self) -> tuple[str, Session]:
        """A new session: its cookie token (given once, to the browser) and its state."""
        token, now = new_token(), self.clock()
        session = Session(csrf=new_token(), started=now, seen=now)
        self._live[_key(token)] = session
        while len(self._live) > MAX_SESSIONS:
            self._live.popitem(last=False)
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session of a cookie's token, its idle time renewed; None when the
        token is unknown (another gateway's, or from before a restart) or expired."""
        if not token or len(token) > 2 * TOKEN_BYTES:
            return None
        key = _key(token)
        session = self._live.get(key)
        if session is None:
            return None
        now = self.clock()
        if now - session.seen > self.idle_s or now - session.started > self.max_s:
            del self._live[key]
            return None
        session.seen = now
        return session

    def alive(self, session: Session) -> bool:
        """Whether a session found earlier still stands (a stream checks on each ping)."""
        now = self.clock()
        live = any(s is session for s in self._live.values())
        return live and now - session.seen <= self.idle_s and now - session.started <= self.max_s

    def end(self, token: str | None) -> None:
        if token:
            self._live.pop(_key(token), None)

    def end_all(self) -> None:
        """A new claim replaces the password: every session made under the old one ends."""
        self._live.clear()

    def end_before(self, moment: float) -> None:
        """Ends the sessions started before moment (on this clock: CLOCK_MONOTONIC, which
        every process of the machine shares): a claim or a factory reset heard on the bus,
        stamped by policy, ends the sessions of the old password, not one minted since."""
        for key in [k for k, s in self._live.items() if s.started < moment]:
            del self._live[key]

    def __len__(self) -> int:
        return len(self._live)


@dataclass
class Throttle:
    """At most `attempts` per `window_s` from one client address (sliding window)."""

    attempts: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _seen: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, client: str) -> float | None:
        """Counts an attempt and answers None, or, when the client is over its budget,
        counts nothing and answers the seconds until it may try again."""
        now = self.clock()
        times = self._seen.pop(client, None) or deque()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        self._seen[client] = times  # now the most recent
        while len(self._seen) > MAX_CLIENTS:
            self._seen.popitem(last=False)
        if len(times) >= self.attempts:
            return max(self.window_s - (now - times[0]), 0.001)
        times.append(now)
        return None
