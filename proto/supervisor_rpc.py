"""Talking to the mesh's supervisord over its unix socket (XML-RPC)."""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport


def socket_path(run: Path) -> Path:
    return run / "supervisor.sock"


def proxy(run: Path) -> Any:
    transport = SupervisorTransport(None, None, f"unix://{socket_path(run)}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def processes(run: Path) -> dict[str, dict[str, Any]]:
    """supervisord's view of every program, by name; empty when it is not running."""
    try:
        return {p["name"]: p for p in proxy(run).supervisor.getAllProcessInfo()}
    except (OSError, xmlrpc.client.Fault):
        return {}
