"""Touched keys sampled over time, turned into key events: debounce, hold, wake, palm. No I/O.

A polling loop feeds KeyScanner.feed(now, touched) with its own clock; the scanner never
reads one. The rules, in order:

1. Debounce. The raw set of touched keys must read the same for debounce_s (from the
   first sample that showed it to a later sample) before it becomes the stable set; a
   contact or a gap shorter than that changes nothing. Latency: debounce_s, rounded up to
   the next sample.
2. A contact is one key alone in the stable set, from the moment it settles to the moment
   the stable set changes again. A bounce inside it (shorter than debounce_s) does not
   split it.
3. Palm. Two keys or more in the stable set: a hand, a sleeve, rain. Nothing is emitted
   for it, a contact under way ends there (released if anything was emitted for it, and
   a hold key's pending press is dropped), and the panel stays blocked until no key is
   touched at all. Rolling from one key to the next (the overlap shorter than debounce_s)
   is no palm: the first contact ends, the next begins.
4. Wake. The first contact after sleep() or after idle_s without any contact emits
   "touch" instead of its press: a touch only wakes the panel (L-11). A hold key's hold
   still counts during that contact, so holding 0 on a sleeping panel still mutes (L-21).
5. Press. A key without a hold meaning is pressed the moment its contact settles: digits
   answer at once. A key with one ("0" -> "hold-0") cannot be told from a hold yet then,
   so its press is emitted when the contact ends before hold_s, together with its release.
6. Hold. A hold key touched for hold_s (from the first sample of the contact) emits its
   hold input once, and never the ordinary press for that contact. Latency: hold_s,
   rounded up to the next sample.
7. Release. Every contact that emitted anything (touch, press, hold) emits exactly one
   release of its key when it ends; a press therefore always has exactly one release.

Events carry the time of the sample that produced them, so they come out in time order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["touch", "press", "hold", "release"]
HOLDS = {"0": "hold-0"}  # L-21: 0 held until it flashes twice


@dataclass(frozen=True)
class KeyEvent:
    at: float
    kind: Kind
    key: str  # the physical key touched
    input: str | None  # what the menu gets (proto.keypad.INPUTS); None for a release


@dataclass
class _Contact:
    key: str
    started: float  # the first raw sample of it, which hold_s counts from
    opened: bool = False  # something was emitted, so a release is owed
    woke: bool = False
    held: bool = False


class KeyScanner:
    def __init__(
        self,
        debounce_s: float = 0.03,
        hold_s: float = 3.0,
        idle_s: float = 20.0,
        holds: Mapping[str, str] | None = None,
    ) -> None:
        if not 0 < debounce_s < hold_s:
            raise ValueError("need 0 < debounce_s < hold_s")
        self.debounce_s, self.hold_s, self.idle_s = debounce_s, hold_s, idle_s
        self.holds = dict(HOLDS if holds is None else holds)
        self._stable: frozenset[str] = frozenset()
        self._raw: frozenset[str] = frozenset()
        self._raw_since = 0.0
        self._last: float | None = None
        self._contact: _Contact | None = None
        self._palm = False
        self._asleep = True
        self._last_contact_end = 0.0

    def sleep(self) -> None:
        """The panel went to sleep: the next contact only wakes it."""
        self._asleep = True

    def feed(self, now: float, touched: frozenset[str]) -> list[KeyEvent]:
        if self._last is not None and now < self._last:
            raise ValueError(f"samples out of order: {now} after {self._last}")
        self._last = now
        if touched != self._raw:
            self._raw, self._raw_since = touched, now
        events: list[KeyEvent] = []
        if self._raw != self._stable and now - self._raw_since >= self.debounce_s:
            events += self._settle(now, self._raw, self._raw_since)
        events += self._hold(now)
        return events

    def _settle(self, now: float, stable: frozenset[str], since: float) -> list[KeyEvent]:
        self._stable = stable
        events: list[KeyEvent] = []
        contact = self._contact
        if contact is not None and stable != {contact.key}:
            events += self._end(now, contact, palm=len(stable) > 1)
        if len(stable) > 1:
            self._palm = True
        elif not stable:
            self._palm = False
        elif not self._palm and self._contact is None:
            events += self._begin(now, next(iter(stable)), since)
        return events

    def _begin(self, now: float, key: str, since: float) -> list[KeyEvent]:
        contact = self._contact = _Contact(key, started=since)
        if self._asleep or now - self._last_contact_end >= self.idle_s:
            self._asleep = False
            contact.woke = contact.opened = True
            return [KeyEvent(now, "touch", key, "touch")]
        if key not in self.holds:
            contact.opened = True
            return [KeyEvent(now, "press", key, key)]
        return []  # a hold key: press or hold, not known yet

    def _end(self, now: float, contact: _Contact, palm: bool) -> list[KeyEvent]:
        self._contact, self._last_contact_end = None, now
        events = []
        if contact.key in self.holds and not (contact.opened or palm):
            events.append(KeyEvent(now, "press", contact.key, contact.key))
            contact.opened = True
        if contact.opened:
            events.append(KeyEvent(now, "release", contact.key, None))
        return events

    def _hold(self, now: float) -> list[KeyEvent]:
        contact = self._contact
        if (
            contact is None
            or contact.held
            or contact.key not in self.holds
            or now - contact.started < self.hold_s
        ):
            return []
        contact.held = contact.opened = True
        return [KeyEvent(now, "hold", contact.key, self.holds[contact.key])]
