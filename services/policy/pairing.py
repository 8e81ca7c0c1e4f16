"""Pairing mode (L-17): SET held opens a window in which the owner's app claims the lock.

The claim names the lock's serial number and verification code (the ones system
information announces, L-16). Outside the window every claim is refused; wrong ones are
counted, and max_failures of them close the window early.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from proto.control import Done, refused
from proto.owner import PairClaim
from proto.policy import Audit, Pairing
from proto.wire import Envelope
from services.base import accepts


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class PairingCommands:
    """Mixed into PolicyService: its store, clocks, serial and verification code are used."""

    _pairing_until: float | None = None
    _pairing_failures = 0

    def _open_pairing(self, cause: str | None) -> None:
        window = self.config["pairing"]["window_s"]
        self._pairing_until, self._pairing_failures = self.clock() + window, 0
        wall = self.wall.now()
        until = (
            datetime.fromtimestamp(wall + window, self.tz).isoformat(timespec="seconds")
            if wall is not None
            else f"{window:.0f} s from now"
        )
        self.store.log("pairing-opened", source="button", detail=f"open until {until}", cause=cause)
        self.publish(Pairing(open=True, why="opened", seconds_left=window), cause)

    def _close_pairing(self, why: str, cause: str | None) -> None:
        self._pairing_until = None
        if why != "claimed":  # a claim is logged as "paired" with its own detail
            self.store.log("pairing-ended", reason=why, cause=cause)
        self.publish(Pairing(open=False, why=why), cause)

    def _pairing_open(self) -> bool:
        return self._pairing_until is not None and self.clock() < self._pairing_until

    def _pairing_tick(self, now: float) -> None:
        if self._pairing_until is not None and now >= self._pairing_until:
            self._close_pairing("ended", None)

    @accepts(PairClaim)
    def on_pair_claim(self, env: Envelope, peer: str) -> Done:
        b = env.body
        if not self._pairing_open():
            self.store.log("pair-refused", source="remote", reason="not-pairing", cause=env.trace)
            return refused("not-pairing", "hold SET on the lock to open pairing mode (L-17)")
        wrong = (
            "wrong-serial"
            if not same(b.serial, self.serial)
            else "wrong-code"
            if not same(b.code, self.verification_code)
            else None
        )
        if wrong is not None:
            self._pairing_failures += 1
            limit = self.config["pairing"]["max_failures"]
            self.store.log(
                "pair-refused",
                source="remote",
                reason=wrong,
                detail=f"failure {self._pairing_failures} of {limit}",
                cause=env.trace,
            )
            if self._pairing_failures >= limit:
                self._close_pairing("too-many-failures", env.trace)
            return refused(wrong, "the serial number or the verification code does not match")
        with self.store.transaction():
            self.store.db.execute(
                "INSERT OR REPLACE INTO settings VALUES ('paired', ?)", (str(self.wall.now()),)
            )
            self.store.append(
                "paired", source="remote", detail=f"serial {self.serial}", cause=env.trace
            )
        self.publish(Audit(kind="paired"), env.trace)
        self._close_pairing("claimed", env.trace)
        return Done(ok=True, detail="paired")
