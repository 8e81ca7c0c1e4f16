"""A building's console pushing visitor codes to this door over MQTT (issue 17, L-9).

The bridge relays the console's sealed push untouched (fleet.push); this part opens it
with the fleet key the owner gave the door (fleet.key_set), checks it fully
(proto/fleet.py: the shape, this door's serial, the time, the seal, the sealed body),
refuses an id it has answered before, and adds the visitor code as the owner's
VisitorAdd does: L-4's rules, the window and uses, logged with the source `fleet`. Its
answer is signed with the same key, with the audit head after the change, so the console
knows each door's outcome and log head without trusting the broker.

A refusal of a push that opened (stale, wrong serial, bad body) or failed its seal is
logged in the event log; a replay of one taken, and junk that is not a push at all, are
only counted (status `fleet`), so a broker replaying or flooding cannot fill the log.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from proto import fleet
from proto.bridge import FleetAck, FleetKeySet, FleetPush
from proto.control import OK, Done, refused
from proto.policy import Audit
from proto.wire import Envelope
from services.base import accepts
from services.policy.changes import Changes
from services.policy.lock import Lock, owner_source

KEY = "fleet_key"  # settings rows (a factory reset erases them, L-30)
SEEN = "fleet_seen"  # {id: [at, ok, reason]}: the pushes answered, for replays
SEEN_KEPT = 1024  # ids remembered; older ones are stale by their time anyway
LOGGED = ("wrong-serial", "stale", "bad-seal", "bad-body", "time-unknown")  # in the event log


class Fleet:
    def __init__(self, lock: Lock, changes: Changes, serial: str) -> None:
        self.lock, self.changes, self.serial = lock, changes, serial
        self.refusals: Counter[str] = Counter()
        self.taken = 0

    def key(self) -> bytes | None:
        raw = self.lock.store.setting(KEY)
        return bytes.fromhex(raw) if raw else None

    def status(self) -> dict[str, Any]:
        return {"key": self.key() is not None, "taken": self.taken, "refused": dict(self.refusals)}

    # -- the owner's word --------------------------------------------------------------------
    @accepts(FleetKeySet)
    def on_key_set(self, env: Envelope[FleetKeySet], peer: str) -> Done:
        source = owner_source(peer)
        if not env.body.key:
            self.lock.store.log("fleet-key-cleared", source=source, cause=env.trace)
            with self.lock.store.transaction():
                self.lock.store.put_setting(KEY, "")
            return OK
        try:
            key = fleet.key_from_hex(env.body.key)
        except fleet.Refused as e:
            return refused(e.reason, str(e))
        replaced = "replaced the fleet key" if self.key() else ""
        with self.lock.store.transaction():
            self.lock.store.put_setting(KEY, key.hex())
            self.lock.store.append("fleet-key-set", source=source, cause=env.trace, detail=replaced)
        self.lock.publish(Audit(kind="fleet-key-set"), env.trace)
        return OK

    # -- the console's push ------------------------------------------------------------------
    @accepts(FleetPush)
    def on_push(self, env: Envelope[FleetPush], peer: str) -> FleetAck:
        key = self.key()
        if key is None:
            return self._refuse(None, None, "fleet-off", "this door takes no fleet pushes", env)
        ident: str | None = None
        try:
            ident = fleet.header(env.body.payload)["id"]
            push = fleet.open_push(key, self.serial, env.body.payload, self.lock.wall.now())
        except fleet.Refused as e:  # signed only once the seal opened: else anyone's junk
            signer = key if e.sealed else None
            return self._refuse(signer, ident if e.sealed else None, e.reason, str(e), env)
        if push.visitor is None:  # audit_head: nothing done, the head signed
            return self._ack(key, push.id, True, "")
        seen = self._seen()
        if push.id in seen:  # a replay, or the console asking again: never done twice
            _, ok, reason = seen[push.id]
            self.refusals["replayed"] += 1  # counted, not logged: a broker may replay forever
            return self._ack(key, push.id, bool(ok), str(reason), again=True)
        answer = self._add(push, env)
        seen[push.id] = [push.at, answer.ok, answer.reason]
        while len(seen) > SEEN_KEPT:
            seen.pop(next(iter(seen)))
        with self.lock.store.transaction():
            self.lock.store.put_setting(SEEN, json.dumps(seen))
        if answer.ok:
            self.taken += 1
        else:
            self.refusals[answer.reason] += 1
        return self._ack(key, push.id, answer.ok, answer.reason)

    def _add(self, push: fleet.Push, env: Envelope[FleetPush]) -> Done:
        v = push.visitor
        assert v is not None  # an audit_head push is answered before
        answer = self.changes.rule_answer(v.code)
        if not answer.ok:
            self.lock.store.log("fleet-refused", source="fleet", cause=env.trace,
                                reason=answer.reason, detail=v.label)  # fmt: skip
            return answer
        return self.changes.add_visitor(
            env, v.label, v.code, (v.start, v.end), v.uses, source="fleet"
        )

    def _seen(self) -> dict[str, list[Any]]:
        raw = self.lock.store.setting(SEEN)
        try:
            seen = json.loads(raw) if raw else {}
        except ValueError:
            seen = {}
        return seen if isinstance(seen, dict) else {}

    def _refuse(
        self,
        key: bytes | None,
        ident: str | None,
        reason: str,
        detail: str,
        env: Envelope[FleetPush],
    ) -> FleetAck:
        self.refusals[reason] += 1
        if reason in LOGGED:
            self.lock.store.log("fleet-refused", source="fleet", cause=env.trace,
                                reason=reason, detail=detail)  # fmt: skip
        else:
            self.lock.drop("malformed", f"fleet push: {reason}: {detail}", "fleet")
        return self._ack(key, ident, False, reason)

    def _ack(
        self, key: bytes | None, ident: str | None, ok: bool, reason: str, *, again: bool = False
    ) -> FleetAck:
        head = self.lock.store.head()
        shown = {"count": head.count, "last": head.last.hex()} if head else None
        payload = fleet.make_ack(key, self.serial, ident, ok, reason, again=again, head=shown)
        return FleetAck(payload=payload)
