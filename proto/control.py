"""Requests every service answers, and the one shape of a plain answer."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from proto.schema import Message


class StatusRequest(Message, family="ctl", event="status"):
    """Asks a service for its state and counters."""


class StatusReply(Message, family="ctl", event="status_reply"):
    service: str
    state: str
    pid: int
    uptime_s: float
    msgs_in: int
    msgs_out: int
    drops: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


class Done(Message, family="ctl", event="done"):
    """A plain answer: ok, or refused with a stable reason and a sentence for people."""

    ok: bool
    reason: str = ""
    detail: str = ""


def refused(reason: str, detail: str = "") -> Done:
    return Done(ok=False, reason=reason, detail=detail)


OK = Done(ok=True)
