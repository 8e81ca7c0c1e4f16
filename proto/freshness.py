"""Late and replayed messages: the last sequence seen in each sender's session (issue 11).

A receiver keeps, per sender, the sessions it has heard and the last sequence number of
each. A message not newer than the last of its session is a replay. A session it has not
heard is a new one, unless the sender is one process (every service) and the session
started before the newest heard from it: only a replay can come from the past. A session
from another boot of the machine is stale. A request also carries its expiry, on the
machine's monotonic clock: past it, the sender has given up, and so does the receiver.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from proto.schema import Message
from proto.trust import MANY
from proto.wire import BOOT, MAX_REQUEST_LIFE_S, Envelope, Session, WireError

log = logging.getLogger(__name__)

KEEP_SESSIONS = 16  # per sender; the oldest is forgotten (a restarting service opens one each time)


class Freshness:
    """One channel's memory (events, or requests) of what each sender already sent."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, boot: str = BOOT) -> None:
        self.clock, self.boot = clock, boot
        self._last: dict[str, dict[Session, int]] = {}

    def admit_request(self, env: Envelope[Message]) -> None:
        """Raise WireError("expired"/"replayed"/"envelope") unless the request is fresh."""
        if env.expires is None:
            raise WireError("envelope", f"{env.type} from {env.sender} carries no expiry")
        now = self.clock()
        if now > env.expires:
            raise WireError(
                "expired", f"{env.type} from {env.sender}, {now - env.expires:.3f}s late"
            )
        if env.expires - now > MAX_REQUEST_LIFE_S:
            raise WireError("envelope", f"{env.type} from {env.sender} asks to live too long")
        self.admit(env)

    def admit(self, env: Envelope[Message]) -> int:
        """How many of the sender's messages in this session went missing before this one;
        raise WireError("replayed") if it is not newer than what was heard."""
        session = env.session
        if session.boot != self.boot:
            raise WireError("replayed", f"{env.sender}'s session {session} is from another boot")
        heard = self._last.setdefault(env.sender, {})
        last = heard.get(session)
        if last is None:
            return self._open(env, heard)
        if env.seq <= last:
            raise WireError("replayed", f"{env.type} from {env.sender}: seq {env.seq} after {last}")
        heard[session] = env.seq
        return env.seq - last - 1

    def _open(self, env: Envelope[Message], heard: dict[Session, int]) -> int:
        """Note a session not heard before; how many of its messages went missing."""
        session = env.session
        newest = max((s.start for s in heard), default=None)
        if env.sender not in MANY and newest is not None and session.start < newest:
            raise WireError(
                "replayed", f"{env.sender}'s session {session} is older than its newest"
            )
        if len(heard) >= KEEP_SESSIONS:
            del heard[min(heard, key=lambda s: s.start)]
        heard[session] = env.seq
        if newest is None:
            return 0  # the first we hear of it: we were not listening before
        log.info("%s opened a new session %s", env.sender, session)
        # it restarted while we listened: what it said in its new session before this was
        # lost (a subscriber reconnects only after the restart), as its Bolt at start
        return env.seq - 1
