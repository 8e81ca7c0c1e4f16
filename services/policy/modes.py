"""Matter's OperatingMode (issue 15): normal, vacation, privacy, no-remote and passage.

The mode is kept in the store as set; the mode *in force* is passage only within its
weekly slots (all the time when it has none), and normal outside them. A lock that
lost the time is never in a scheduled passage: the bolt is not held open on a guess.
Setting passage unlocks the door, so it needs what a remote unlock needs (L-18, issue
13): remote unlock on and, while RequirePINforRemoteOperation is on, the app PIN.
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from proto.control import OK, Done, refused
from proto.owner import OperatingMode, OperatingModeRequest, OperatingModeSet
from proto.policy import Audit
from proto.wire import Envelope
from services.base import accepts
from services.policy.actuation import Actuation
from services.policy.lock import Lock, owner_source
from services.policy.people import days_from_mask
from services.policy.rules import Slot

if TYPE_CHECKING:  # board.py imports the decider, which imports this module
    from services.policy.board import Board

KEY = "operating_mode"  # its settings row: {"mode": ..., "slots": [[mask, start, end]]}


def stored(raw: str | None) -> tuple[str, list[list[int]]]:
    """The mode and passage slots as kept; a damaged row is normal mode, no slots."""
    try:
        value = json.loads(raw or "{}")
        return str(value.get("mode", "normal")), [list(map(int, s)) for s in value["slots"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return "normal", []


def in_force(mode: str, slots: list[list[int]], wall: float | None, tz: tzinfo) -> str:
    """The mode the rules apply now: a scheduled passage outside its slots is normal."""
    if mode != "passage" or not slots:
        return mode
    if wall is None:  # the time is lost: the bolt is not held open on a guess
        return "normal"
    local = datetime.fromtimestamp(wall, tz)
    inside = any(Slot(days_from_mask(m), a, b).contains(local) for m, a, b in slots)
    return "passage" if inside else "normal"


def mode_now(lock: Lock) -> str:
    """The mode in force for this lock now."""
    mode, slots = stored(lock.store.setting(KEY))
    return in_force(mode, slots, lock.wall.now(), lock.tz)


class OperatingModes:
    """Setting the mode, its status, and passage's bolt held open (ticked)."""

    def __init__(self, lock: Lock, actuation: Actuation, board: Board, remote_refusal: Any) -> None:
        # remote_refusal(pin) -> (reason, detail) | None: the remote unlock's own check
        self.lock, self.actuation, self.board = lock, actuation, board
        self.remote_refusal = remote_refusal
        self._was = self.now()  # passage in force at start: nothing to drive (as it was)

    def kept(self) -> tuple[str, list[list[int]]]:
        return stored(self.lock.store.setting(KEY))

    def now(self) -> str:
        return mode_now(self.lock)

    @accepts(OperatingModeRequest)
    def on_request(self, env: Envelope[OperatingModeRequest], peer: str) -> OperatingMode:
        mode, slots = self.kept()
        return OperatingMode(mode=mode, slots=slots, effective=self.now())

    @accepts(OperatingModeSet)
    def on_set(self, env: Envelope[OperatingModeSet], peer: str) -> Done:
        b, source = env.body, owner_source(peer)
        if b.slots and b.mode != "passage":
            return refused("bad-value", "only passage mode takes weekly slots")
        if b.mode == "passage":
            why = self.remote_refusal(b.pin, env, source)
            if why is not None:
                return refused(*why)
        value = json.dumps({"mode": b.mode, "slots": b.slots})
        self.lock.store.set_setting(KEY, value, source=source, cause=env.trace)
        self.lock.publish(Audit(kind="operating-mode", detail=b.mode), env.trace)
        self.tick(self.lock.clock(), cause=env.trace)
        return OK

    def tick(self, now: float, cause: str | None = None) -> None:
        """Passage coming into force unlocks (source schedule); leaving it locks, once the
        door is closed."""
        mode = self.now()
        was, self._was = self._was, mode
        if mode == was or "passage" not in (mode, was):
            return
        why = cause or f"passage-{'start' if mode == 'passage' else 'end'}-{now:.3f}"
        self.lock.store.log("operating-mode", source="schedule", detail=f"{was} -> {mode}")
        if mode == "passage":
            self.actuation.actuate("unlock", source="schedule", cause=why, method="passage")
        else:
            self.board.lock_when_closed(why)
