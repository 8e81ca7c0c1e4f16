"""Offline visitor codes at the door (issue 16): proto/offline_codes.py's construction,
checked by policy when a passcode entry matched no stored code.

The entry must be exactly one code (ten digits): L-19's extra digits around a code would
let one entry try several, multiplying the chance of a random one. The codes valid during
the current hour are computed once per hour (1,392 HMACs, a few milliseconds) and looked
up; an entry that is none of them is refused as any wrong code is, and counts toward
L-20's lockout. A lock that lost the time accepts none (L-7's rule): such an entry is
refused `time-unknown` and counted. A `once` code is spent on disk before its unlock is
decided (never when the lockout would refuse it anyway), so a restart does not give it
back, and a power cut after the write loses the use rather than granting a second one.
"""

from __future__ import annotations

from typing import Any, Callable

from proto import offline_codes as codes
from proto.offline_codes import CodeSpec
from proto.policy import Decision
from proto.wire import Envelope
from services.policy import rules
from services.policy.decider import Decider
from services.policy.lock import Lock

SPENT = "offline_used:"  # settings rows: + start hour:hours:seq of a spent once code


class OfflineCodes:
    def __init__(self, lock: Lock, decider: Decider, secret: Callable[[], bytes | None]) -> None:
        self.lock, self.decider, self.secret = lock, decider, secret
        self._table: tuple[bytes, int, dict[str, list[CodeSpec]]] | None = None

    def judge(self, entry: str, env: Envelope[Any]) -> Decision | None:
        """The decision on an entry that may be an offline code; None when it cannot be
        one (another length, or no owner's phone to share a secret with)."""
        secret = self.secret()
        if len(entry) != codes.DIGITS or secret is None:
            return None
        now = self.lock.wall.now()
        if now is None:
            return self.decider.judge(
                rules.Attempt("pin"), env, source="keypad", why="time-unknown"
            )
        found = self._valid(secret, codes.hour_of(now)).get(entry, [])
        spec = next((s for s in found if not self._spent(s)), None)
        if spec is None:
            why = "uses-exhausted" if found else None
            return self.decider.judge(rules.Attempt("pin"), env, source="keypad", why=why)
        if spec.kind == "once" and not self.decider.locked_out():
            self._spend(spec, now)
        window = rules.Validity(spec.start, spec.end)
        attempt = rules.Attempt("pin", person=spec.name(), validity=window)
        return self.decider.judge(attempt, env, source="keypad")

    def _valid(self, secret: bytes, hour: int) -> dict[str, list[CodeSpec]]:
        if self._table is None or self._table[:2] != (secret, hour):
            self._table = (secret, hour, codes.table(secret, hour))
        return self._table[2]

    @staticmethod
    def _row(spec: CodeSpec) -> str:
        return f"{SPENT}{spec.start_hour}:{spec.hours}:{spec.seq}"

    def _spent(self, spec: CodeSpec) -> bool:
        return spec.kind == "once" and self.lock.store.setting(self._row(spec)) is not None

    def _spend(self, spec: CodeSpec, now: float) -> None:
        """Kept until the code's window is over; older ones are cleared on the way."""
        store = self.lock.store
        with store.transaction():
            store.db.execute(
                "DELETE FROM settings WHERE key LIKE ? AND CAST(value AS REAL) <= ?",
                (f"{SPENT}%", now),
            )
            store.put_setting(self._row(spec), str(spec.end))
