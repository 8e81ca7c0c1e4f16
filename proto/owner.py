"""The owner's commands (from the CLI until the app exists) and their answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proto.schema import Message, between, checked, one_of, secret

MINUTES_A_DAY = 24 * 60


def weekly_slots(slots: list[list[int]]) -> str | None:
    """What is wrong with a list of weekly slots, or None (L-7): each is [days mask
    (Matter's DaysMask, bit 0 Sunday … bit 6 Saturday, at least one day), start minute,
    end minute], the start before the end, both within one day."""
    for i, slot in enumerate(slots):
        if len(slot) != 3:
            return f"slot {i} has {len(slot)} numbers, not [days mask, start, end]"
        mask, start, end = slot
        if not 0 < mask < 128:
            return f"slot {i}: days mask {mask} is not 1..127"
        if not 0 <= start < end <= MINUTES_A_DAY:
            return f"slot {i}: {start}-{end} is not start < end within 0..{MINUTES_A_DAY}"
    return None


@dataclass(frozen=True)
class Listing(Message, family="owner", event="listing"):
    """A list of records: people, visitor codes, events, settings."""

    items: list[dict[str, Any]]


@dataclass(frozen=True)
class PeopleRequest(Message, family="owner", event="people"):
    """Lists people with the counts of their credentials (L-33)."""


@dataclass(frozen=True)
class PersonAdd(Message, family="owner", event="person_add"):
    name: str
    code: str = secret()
    role: str = one_of("admin", "user", default="user")


@dataclass(frozen=True)
class PersonRename(Message, family="owner", event="person_rename"):
    number: str
    name: str


@dataclass(frozen=True)
class PersonDelete(Message, family="owner", event="person_delete"):
    number: str


@dataclass(frozen=True)
class ValiditySet(Message, family="owner", event="validity"):
    """L-7: a window (epoch seconds, None = open) and weekly slots [days mask, start, end]."""

    number: str
    start: float | None = None
    end: float | None = None
    slots: list[list[int]] = checked(weekly_slots, default_factory=list)


@dataclass(frozen=True)
class DuressSet(Message, family="owner", event="duress"):
    number: str
    code: str = secret()


@dataclass(frozen=True)
class VisitorAdd(Message, family="owner", event="visitor_add"):
    """L-9: a temporary passcode with a window and a use limit (None: unlimited)."""

    label: str
    code: str = secret()
    start: float | None = None
    end: float | None = None
    uses: int | None = None


@dataclass(frozen=True)
class VisitorDelete(Message, family="owner", event="visitor_delete"):
    label: str


@dataclass(frozen=True)
class VisitorsRequest(Message, family="owner", event="visitors"):
    """Lists visitor codes (never the codes)."""


@dataclass(frozen=True)
class SettingsRequest(Message, family="owner", event="settings"):
    """Lists the owner's settings (L-36)."""


@dataclass(frozen=True)
class SettingSet(Message, family="owner", event="setting_set"):
    name: str
    value: str


@dataclass(frozen=True)
class LockoutRelease(Message, family="owner", event="lockout_release"):
    """Ends a lockout at once (L-20)."""


@dataclass(frozen=True)
class RemoteUnlock(Message, family="owner", event="remote_unlock"):
    """Unlock from the app, when remote unlock is enabled (L-18, L-32)."""


@dataclass(frozen=True)
class EventsRequest(Message, family="owner", event="events"):
    """The event log, newest first, filtered (L-35)."""

    since: float | None = None
    person: str | None = None
    kind: str | None = None
    limit: int = between(1, 1000, default=100)


@dataclass(frozen=True)
class AuditVerify(Message, family="owner", event="audit_verify"):
    """Re-checks the event log's hash chain."""


@dataclass(frozen=True)
class AuditReport(Message, family="owner", event="audit_report"):
    intact: bool
    checked: int
    first_bad: int | None = None
    why: str = ""


@dataclass(frozen=True)
class PairClaim(Message, family="owner", event="pair"):
    """The owner's app claims the lock while pairing is open (L-17): serial and code."""

    serial: str
    code: str = secret()
