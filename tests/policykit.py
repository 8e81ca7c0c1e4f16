"""Test support: policy's parts in this process, on a real store in a temporary folder, with
a hand-set monotonic clock and an outlet that records what policy publishes and answers
its requests as the test says (no sockets: what is tested is policy's own logic)."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from proto.config import DEFAULTS
from proto.schema import Message
from proto.wire import Envelope
from services.policy.lock import Lock

SECRET = bytes(range(32))
_ids = itertools.count(1)


def envelope(body: Message, sender: str = "cli", cause: str | None = None) -> Envelope[Any]:
    n = next(_ids)
    return Envelope(f"{body.TYPE}", sender, n, 1.7e9, float(n), f"id{n}", cause, body)


@dataclass
class Clock:
    """CLOCK_MONOTONIC, moved by the test."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


Answer = Callable[[Message], Message | None]  # None: the peer does not answer


@dataclass
class Outlet:
    """What policy publishes and asks, kept; answers[peer] answers its requests."""

    answers: dict[str, Answer] = field(default_factory=dict)
    published: list[Message] = field(default_factory=list)
    asked: list[tuple[str, Message, float | None]] = field(default_factory=list)
    drops: list[tuple[str, str, str]] = field(default_factory=list)

    def publish(self, body: Message, cause: str | None = None) -> Envelope[Message]:
        self.published.append(body)
        return envelope(body, "policy", cause)

    def stamp_event(self, body: Message, cause: str | None = None) -> Envelope[Message]:
        return envelope(body, "policy", cause)

    def publish_stamped(self, env: Envelope[Message]) -> Envelope[Message]:
        self.published.append(env.body)
        return env

    def request(
        self,
        peer: str,
        body: Message,
        *,
        cause: str | None = None,
        timeout: float | None = None,
        sent: Callable[[], object] | None = None,
    ) -> Envelope[Message] | None:
        self.asked.append((peer, body, timeout))
        if sent is not None:
            sent()
        answer = self.answers.get(peer, lambda _: None)(body)
        return None if answer is None else envelope(answer, peer)

    def counted_drop(self, reason: str, detail: str, where: str) -> None:
        self.drops.append((reason, detail, where))

    def of_type(self, kind: type) -> list[Any]:
        return [m for m in self.published if isinstance(m, kind)]


def config(**sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    merged = copy.deepcopy(DEFAULTS)
    for name, values in sections.items():
        merged[name].update(values)
    return merged


def make_lock(data: Path, clock: Clock, outlet: Outlet, **sections: dict[str, Any]) -> Lock:
    """A Lock on DATA/lock.db; a second one on the same folder is policy restarted."""
    data.mkdir(parents=True, exist_ok=True)
    return Lock(data, config(**sections), SECRET, clock=clock, outlet=outlet)


def events(lock: Lock, kind: str | None = None) -> list[dict[str, Any]]:
    return lock.store.events(1000, kind=kind)
