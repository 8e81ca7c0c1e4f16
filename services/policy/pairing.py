"""Pairing mode (L-17): SET held opens a window in which the owner's app claims the lock.

The claim names the lock's serial number and verification code (the ones system
information announces, L-16), and sets the owner's app password and app PIN (issue 13),
kept as hashes by the account (account.py); a new claim replaces both. Outside the window
every claim is refused; wrong ones are counted, and max_failures of them close the window
early.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from proto.control import Done, refused
from proto.owner import PairClaim
from proto.policy import Audit, Pairing
from proto.wire import Envelope
from services.base import accepts
from services.policy.account import Account
from services.policy.lock import Lock, owner_source
from services.policy.secrets import Identity


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class PairingMode:
    """The pairing window and the wrong claims made in it."""

    def __init__(self, lock: Lock, identity: Identity, account: Account) -> None:
        self.lock, self.identity, self.account = lock, identity, account
        self._until: float | None = None  # on the monotonic clock; None: closed
        self._failures = 0
        self._claimed_until: float | None = None  # a claim's window goes on (phone key)

    def open(self, cause: str | None) -> None:
        """SET held (L-17)."""
        lock = self.lock
        window = lock.config["pairing"]["window_s"]
        self._until, self._failures = lock.clock() + window, 0
        wall = lock.wall.now()
        until = (
            datetime.fromtimestamp(wall + window, lock.tz).isoformat(timespec="seconds")
            if wall is not None
            else f"{window:.0f} s from now"
        )
        lock.store.log("pairing-opened", source="button", detail=f"open until {until}", cause=cause)
        lock.publish(Pairing(open=True, why="opened", seconds_left=window), cause)

    def _close(self, why: str, cause: str | None) -> None:
        self._until = None
        if why != "claimed":  # a claim is logged as "paired" with its own detail
            self.lock.store.log("pairing-ended", reason=why, cause=cause)
        self.lock.publish(Pairing(open=False, why=why), cause)

    def _is_open(self) -> bool:
        return self._until is not None and self.lock.clock() < self._until

    def present(self) -> bool:
        """Someone is at the lock: pairing is open, or was claimed within its window (the
        owner's phone key is registered then, issue 16)."""
        after_claim = self._claimed_until is not None and self.lock.clock() < self._claimed_until
        return self._is_open() or after_claim

    def tick(self, now: float) -> None:
        if self._until is not None and now >= self._until:
            self._close("ended", None)

    @accepts(PairClaim)
    def on_pair_claim(self, env: Envelope[PairClaim], peer: str) -> Done:
        b = env.body
        store, source = self.lock.store, owner_source(peer)
        if not self._is_open():
            store.log("pair-refused", source=source, reason="not-pairing", cause=env.trace)
            return refused("not-pairing", "hold SET on the lock to open pairing mode (L-17)")
        wrong = (
            "wrong-serial"
            if not same(b.serial, self.identity.serial)
            else "wrong-code"
            if not same(b.code, self.identity.verification_code)
            else None
        )
        if wrong is not None:
            self._failures += 1
            limit = self.lock.config["pairing"]["max_failures"]
            store.log(
                "pair-refused",
                source=source,
                reason=wrong,
                detail=f"failure {self._failures} of {limit}",
                cause=env.trace,
            )
            if self._failures >= limit:
                self._close("too-many-failures", env.trace)
            return refused(wrong, "the serial number or the verification code does not match")
        hashes = self.account.hashes(b.password, b.pin)  # slow: outside the transaction
        replaced = "replaced the app password and PIN" if self.account.claimed() else ""
        with store.transaction():
            store.put_setting("paired", str(self.lock.wall.now()))
            self.account.keep(hashes)
            detail = ", ".join(filter(None, (f"serial {self.identity.serial}", replaced)))
            store.append("paired", source=source, detail=detail, cause=env.trace)
        self.lock.publish(Audit(kind="paired"), env.trace)
        self._claimed_until = self.lock.clock() + self.lock.config["pairing"]["window_s"]
        self._close("claimed", env.trace)
        return Done(ok=True, detail="paired")
