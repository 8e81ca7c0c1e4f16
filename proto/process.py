"""supervisord's process state changes, republished on the bus so restarts show in the tap."""

from __future__ import annotations

from proto.schema import Message


class ProcessState(Message, family="process", event="state"):
    name: str
    state: str  # supervisord's: STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL, …
    from_state: str
    pid: int = 0
