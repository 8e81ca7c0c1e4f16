"""A service that stops beating while its process still runs is stuck: have it killed.

supervisord restarts what dies, but not what hangs; the watchdog turns "alive but
stuck" into "dead", which supervisord knows how to handle.
"""

from __future__ import annotations

import logging
import xmlrpc.client
from typing import Any

from proto import supervisor_rpc
from proto.health import Heartbeat, MeshStatus, MeshStatusRequest
from proto.layout import SERVICES
from proto.wire import Envelope
from services.base import Service, accepts, hears

log = logging.getLogger(__name__)


class WatchdogService(Service):
    NAME = "watchdog"
    LISTENS = tuple(s for s in SERVICES if s != "watchdog")
    TICK_S = 0.25

    def setup(self) -> None:
        self.stuck_after = self.mesh["stuck_after_s"]
        self.beats: dict[str, tuple[float, Heartbeat]] = {}
        self.kills: dict[str, int] = {}
        self._killed_at: dict[str, float] = {}

    @hears(Heartbeat)
    def on_beat(self, env: Envelope) -> None:
        self.beats[env.sender] = (self.clock(), env.body)

    def verdict(self, name: str, now: float) -> tuple[str, float | None]:
        if name == self.NAME:
            return "healthy", 0.0
        if name not in self.beats:
            return "silent", None
        age = now - self.beats[name][0]
        return ("healthy" if age < self.stuck_after else "stale"), age

    def tick(self, now: float) -> None:
        for name in self.LISTENS:
            verdict, _ = self.verdict(name, now)
            recently = now - self._killed_at.get(name, -1e9) < 3 * self.stuck_after
            if verdict == "stale" and not recently:
                self._kill(name, now)

    def _kill(self, name: str, now: float) -> None:
        self._killed_at[name] = now
        log.error("%s stopped beating: having supervisord kill it to restart it", name)
        try:
            supervisor_rpc.proxy(self.layout.run).supervisor.signalProcess(name, "KILL")
            self.kills[name] = self.kills.get(name, 0) + 1
        except (OSError, xmlrpc.client.Fault) as e:
            log.warning("could not kill %s: %s", name, e)

    @accepts(MeshStatusRequest)
    def on_mesh_status(self, env: Envelope, peer: str) -> MeshStatus:
        now = self.clock()
        services: dict[str, dict[str, Any]] = {}
        for name in SERVICES:
            verdict, age = self.verdict(name, now)
            beat = self._heartbeat() if name == self.NAME else self.beats.get(name, (0, None))[1]
            entry: dict[str, Any] = beat.to_body() if beat is not None else {}
            entry.update(verdict=verdict, beat_age_s=None if age is None else round(age, 3),
                         watchdog_kills=self.kills.get(name, 0))
            services[name] = entry
        return MeshStatus(services=services)

    def status_detail(self) -> dict[str, Any]:
        return {"kills": dict(self.kills)}
