"""A service that stops beating while its process still runs is stuck: have it killed.

supervisord restarts what dies, but not what hangs; the watchdog turns "alive but
stuck" into "dead", which supervisord knows how to handle.
"""

from __future__ import annotations

import logging
from typing import Any

from proto import config as configuration
from proto import witness
from proto.control import StatusReply, StatusRequest
from proto.health import Heartbeat, MeshStatus, MeshStatusRequest
from proto.layout import SERVICES
from proto.process import ProcessState
from proto.wire import Envelope
from services.base import Service, accepts, hears

log = logging.getLogger(__name__)


class WatchdogService(Service):
    NAME = "watchdog"
    LISTENS = tuple(s for s in SERVICES if s != "watchdog") + ("procevents",)
    TICK_S = 0.25
    STARTUP_GRACE = 3  # a fresh process may take this many stuck_after periods to beat
    WITNESS_EVERY_S = 2.0  # how often the log's head is asked of policy and witnessed

    def setup(self) -> None:
        self.fitted = configuration.services(self.config)  # mesh.without's are not here
        self.watched = tuple(s for s in self.fitted if s != self.NAME)
        self.stuck_after = self.mesh["stuck_after_s"]
        self.beats: dict[str, tuple[float, Heartbeat]] = {}
        self.started: dict[str, tuple[int, float]] = {}  # pid and time supervisord said RUNNING
        self.kills: dict[str, int] = {}
        self._next_witness = 0.0
        self.witness: witness.Witness | None = witness.read(self.layout.witness_file)

    @hears(Heartbeat)
    def on_beat(self, env: Envelope) -> None:
        self.beats[env.sender] = (self.clock(), env.body)

    @hears(ProcessState)
    def on_process(self, env: Envelope) -> None:
        if env.body.state == "RUNNING":
            self.started[env.body.name] = (env.body.pid, self.clock())

    def verdict(self, name: str, now: float) -> tuple[str, float | None]:
        """healthy, stale (stuck), starting, or silent (never heard since we started)."""
        if name == self.NAME:
            return "healthy", 0.0
        beat_at, _ = self.beats.get(name, (None, None))
        age = None if beat_at is None else now - beat_at
        if age is not None and age < self.stuck_after:
            return "healthy", age  # whichever process it is, it beats
        _, started = self.started.get(name, (None, None))
        if started is not None and (beat_at is None or started > beat_at):  # restarted since
            late = now - started > self.STARTUP_GRACE * self.stuck_after
            return ("stale" if late else "starting"), age
        return ("silent", None) if age is None else ("stale", age)

    def tick(self, now: float) -> None:
        for name in self.watched:
            if self.verdict(name, now)[0] == "stale":
                self._kill(name, now)
        if now >= self._next_witness and self.verdict("policy", now)[0] == "healthy":
            self._next_witness = now + self.WITNESS_EVERY_S
            self._witness_head()

    def _witness_head(self) -> None:
        """Keep the newest head of policy's log in a file of our own (issue 11): a store
        put back from an older copy then ends before it, whoever restarted what."""
        answer = self.request("policy", StatusRequest(), timeout=0.25)
        if answer is None or not isinstance(answer.body, StatusReply):
            return  # policy is down or busy: ask again next time
        head = witness.Head.from_body(answer.body.detail.get("audit_head"))
        if head is None:
            return
        try:
            self.witness, why = witness.observe(self.layout.witness_file, head)
        except OSError as e:
            log.warning("could not keep the log's head in %s: %s", self.layout.witness_file, e)
            return
        if why:
            log.error("the lock's store was rolled back: %s", why)

    def _kill(self, name: str, now: float) -> None:
        """Kill a stuck process; supervisord's word decides, since events can come late."""
        # imported when needed: xmlrpc.client (http, email) took 47 ms of every start
        import xmlrpc.client

        from proto import supervisor_rpc

        self.started[name] = (-1, now)  # no beat matches: the restart gets its grace period
        try:
            rpc = supervisor_rpc.proxy(self.layout.run).supervisor
            info = rpc.getProcessInfo(name)
            beat = self.beats.get(name, (0.0, None))[1]
            young = info["now"] - info["start"] < self.STARTUP_GRACE * self.stuck_after
            if info["statename"] != "RUNNING" or (
                young and (beat is None or beat.pid != info["pid"])
            ):
                return  # not running (supervisord handles it) or a fresh process still starting
            log.error("%s stopped beating: having supervisord kill it to restart it", name)
            rpc.signalProcess(name, "KILL")
            self.kills[name] = self.kills.get(name, 0) + 1
        except (OSError, xmlrpc.client.Fault) as e:
            log.warning("could not kill %s: %s", name, e)

    @accepts(MeshStatusRequest)
    def on_mesh_status(self, env: Envelope, peer: str) -> MeshStatus:
        now = self.clock()
        services: dict[str, dict[str, Any]] = {}
        for name in self.fitted:
            verdict, age = self.verdict(name, now)
            beat = self._heartbeat() if name == self.NAME else self.beats.get(name, (0, None))[1]
            entry: dict[str, Any] = beat.to_body() if beat is not None else {}
            entry.update(
                verdict=verdict,
                beat_age_s=None if age is None else round(age, 3),
                watchdog_kills=self.kills.get(name, 0),
            )
            services[name] = entry
        return MeshStatus(services=services)

    def status_detail(self) -> dict[str, Any]:
        seen = self.witness
        return {
            "kills": dict(self.kills),
            "audit_witness": seen.head.to_body() if seen else None,
            "rolled_back": seen.rolled_back if seen else "",
        }
