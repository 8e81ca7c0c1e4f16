"""Policy's challenges for phone keys (issue 16): fresh random nonces, each good for one
answer within a short time, on the monotonic clock that a wrong wall clock cannot move.

A nonce is taken (and so spent) before anything else of its answer is checked, so a
replayed or late answer is refused whatever it holds. Only a few are outstanding at once
(the oldest goes first), and the spent ones are remembered for a while only to name a
replay as such: a forgotten one is refused all the same, as unknown.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable

from proto.phonekey import NONCE_BYTES, Refused

SPENT_KEPT = 256


class Challenges:
    def __init__(self, clock: Callable[[], float], within_s: float, kept: int) -> None:
        self.clock, self.within_s, self.kept = clock, within_s, kept
        self._open: OrderedDict[bytes, float] = OrderedDict()  # nonce: its deadline
        self._spent: OrderedDict[bytes, None] = OrderedDict()

    def issue(self) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        self._open[nonce] = self.clock() + self.within_s
        while len(self._open) > self.kept:
            self._spend(self._open.popitem(last=False)[0])
        return nonce

    def take(self, nonce: bytes) -> None:
        """Spend the nonce; Refused `replayed`, `late` or `unknown-nonce` if it was not one
        issued, unspent and still within its time."""
        deadline = self._open.pop(nonce, None)
        if deadline is None:
            if nonce in self._spent:
                raise Refused("replayed", "this challenge was answered (or dropped) before")
            raise Refused("unknown-nonce", "no challenge of this lock has this nonce")
        self._spend(nonce)
        if self.clock() > deadline:
            raise Refused("late", f"a challenge is answered within {self.within_s:g} s")

    def _spend(self, nonce: bytes) -> None:
        self._spent[nonce] = None
        while len(self._spent) > SPENT_KEPT:
            self._spent.popitem(last=False)

    def clear(self) -> None:
        """After a factory reset: no challenge of before is answered."""
        for nonce in list(self._open):
            self._spend(nonce)
        self._open.clear()
