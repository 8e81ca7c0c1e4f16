"""Liveness: every service beats on health.<service>.beat; the watchdog sums them up."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from proto.schema import Message


class Heartbeat(Message, family="health", event="beat"):
    state: str  # what the service is doing: "ready", "driving", "degraded: …"
    pid: int
    uptime_s: float
    lag_ms: float  # how late the loop was for its last tick: "alive but stuck" shows here
    msgs_in: int
    msgs_out: int
    drops: dict[str, int] = field(default_factory=dict)
    gaps: int = 0  # messages missed from peers, by their sequence numbers


class MeshStatusRequest(Message, family="health", event="mesh"):
    """Asks the watchdog what it last heard from every service."""


class MeshStatus(Message, family="health", event="mesh_reply"):
    # per service: the last Heartbeat's fields plus "beat_age_s" and "verdict"
    services: dict[str, dict[str, Any]]
