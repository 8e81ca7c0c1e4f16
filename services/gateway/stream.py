"""Live updates for the app: Server-Sent Events fed by what the gateway hears (issue 13).

Each open /api/stream is a Subscriber with a bounded queue. Whatever the gateway hears
that may change Home (the bolt, the door, the battery, an alarm, a change of settings or
people) makes the hub ask policy for Home and for the newest rows of the event log, and
send what changed: `home` with the new /api/home body, `event` for each new row. Rows
that no heard event announces (a refused code at the keypad) come with the next poll,
every POLL_S while someone watches. Enrolment steps go out as `enrol` as heard.

Everything here runs in the HTTP thread's event loop; the bus side hands events over
with call_soon_threadsafe. A subscriber too slow to take its queue is closed: its
EventSource reconnects and is sent Home afresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from proto.biometric import KIND_OF
from proto.owner import EventsRequest, Home, HomeRequest, Listing
from proto.schema import Message
from services.gateway.sessions import Session

log = logging.getLogger(__name__)

QUEUE = 64  # events waiting for one slow page before it is cut off
PING_S = 15.0  # APP.md: a comment line this often keeps proxies and the page awake
POLL_S = 5.0  # the event log is read this often while someone watches
ROWS = 50  # newest rows read per look at the log
ENROL_TYPES = ("biometric.enrol_step", "biometric.unreadable", "biometric.enrolled")
CATCH_UP = 10  # readings of Home at most, RETRY_S apart, until policy has heard the motor
RETRY_S = 0.02


def heard_state(type_name: str, body: dict[str, Any]) -> tuple[str, str] | None:
    """The Home field and value a motor event says: policy hears the same event, maybe
    after the gateway has asked it for Home."""
    if type_name == "motor.door" and isinstance(body.get("open"), bool):
        return "door", "open" if body["open"] else "closed"
    if type_name == "motor.bolt" and isinstance(body.get("state"), str):
        return "bolt", body["state"]
    return None


Ask = Callable[[Message], Awaitable[Message | None]]


def frame(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


PING = b": ping\n\n"


@dataclass(eq=False)
class Subscriber:
    session: Session
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE))

    def send(self, chunk: bytes | None) -> bool:
        """False when the page is too far behind: it is cut off (None ends its stream)."""
        try:
            self.queue.put_nowait(chunk)
            return True
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False


def enrol_data(type_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """An enrolment step as the page shows it: the kind in Matter's words (face,
    fingerprint, palm-vein), the panel's prompt id, and whether it ended."""
    kind = KIND_OF.get(body.get("modality", ""), body.get("modality", ""))
    data: dict[str, Any] = {
        "kind": kind,
        "person": body.get("person", ""),
        "prompt": body.get("step", ""),
        "step": None,
        "of": None,
        "done": False,
        "failed": False,
    }
    params = body.get("params") or {}
    for key, name in (("count", "step"), ("of", "of")):
        value = params.get(key, "")
        if isinstance(value, str) and value.isdigit():
            data[name] = int(value)
    if type_name == "biometric.enrolled":
        ok = bool(body.get("ok"))
        data.update(prompt="enrolled" if ok else "enrol-failed", done=ok, failed=not ok,
                    reason=body.get("reason", ""), detail=body.get("detail", ""))  # fmt: skip
    return data


class Hub:
    def __init__(self, ask: Ask, home_body: Callable[[Home], dict[str, Any]]) -> None:
        self.ask, self.home_body = ask, home_body
        self.subscribers: set[Subscriber] = set()
        self.last_home: dict[str, Any] | None = None
        self.last_seq: int | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._again = False
        self._poller: asyncio.Task[None] | None = None
        self._expected: dict[str, str] = {}  # what the motor said that Home must show

    # -- the pages -------------------------------------------------------------------------
    async def join(self, session: Session) -> Subscriber:
        """A new page's subscriber, sent Home as it is now before anything else."""
        if self.last_seq is None:
            await self._read_log()  # the log's place: only rows after it are news
        await self._read_home()
        sub = Subscriber(session)
        if self.last_home is not None:
            sub.send(frame("home", self.last_home))
        self.subscribers.add(sub)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def drop(self, keep: Callable[[Session], bool]) -> None:
        """Ends the streams of sessions that no longer stand (logout, a new claim)."""
        for sub in list(self.subscribers):
            if not keep(sub.session):
                sub.send(None)
                self.subscribers.discard(sub)

    def close(self) -> None:
        self.drop(lambda session: False)
        for task in (self._poller, self._refreshing):
            if task is not None:
                task.cancel()

    def broadcast(self, name: str, data: Any) -> None:
        chunk = frame(name, data)
        for sub in list(self.subscribers):
            if not sub.send(chunk):
                log.info("a page fell %d events behind: its stream is closed", QUEUE)
                self.subscribers.discard(sub)

    # -- what the gateway hears --------------------------------------------------------------
    def heard(self, type_name: str, body: dict[str, Any]) -> None:
        if not self.subscribers:
            return
        if type_name in ENROL_TYPES:
            self.broadcast("enrol", enrol_data(type_name, body))
        said = heard_state(type_name, body)
        if said is not None:
            self._expected[said[0]] = said[1]
        self.refresh()

    def refresh(self) -> None:
        """Home and the log read again soon; one reading at a time, one more if asked
        meanwhile (a burst of events costs two readings, not one each)."""
        if self._refreshing is not None and not self._refreshing.done():
            self._again = True
            return
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        again = True
        while again and self.subscribers:
            self._again = False
            await self._read_home()
            await self._read_log()
            again = self._again

    async def _read_home(self) -> None:
        """Home as policy says it; asked again, briefly, while policy has not yet heard
        the motor event the gateway heard (its loop may answer before it reads that)."""
        waited = dict(self._expected)
        for _ in range(CATCH_UP):
            home = await self.ask(HomeRequest())
            if not isinstance(home, Home):
                return
            body = self.home_body(home)
            if body != self.last_home:
                self.last_home = body
                self.broadcast("home", body)
            if all(body.get(k) == v for k, v in waited.items()):
                break
            await asyncio.sleep(RETRY_S)
        for key, value in waited.items():  # caught up, or policy sees it otherwise: its
            if self._expected.get(key) == value:  # word stands; newer news is kept
                del self._expected[key]

    async def _read_log(self) -> None:
        rows = await self.ask(EventsRequest(limit=ROWS))
        if not isinstance(rows, Listing):
            return
        seqs = [r["seq"] for r in rows.items if isinstance(r.get("seq"), int)]
        if self.last_seq is None:  # the first look: only what comes after it is news
            self.last_seq = max(seqs, default=0)
            return
        if seqs and max(seqs) < self.last_seq:  # a factory reset started a new log
            self.last_seq = 0
        for row in sorted(rows.items, key=lambda r: r.get("seq", 0)):
            if isinstance(row.get("seq"), int) and row["seq"] > self.last_seq:
                self.last_seq = row["seq"]
                self.broadcast("event", row)

    async def _poll(self) -> None:
        while self.subscribers:
            self.refresh()
            await asyncio.sleep(POLL_S)
