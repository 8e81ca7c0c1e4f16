"""The owner's commands, from the CLI (`cli`) or the app's gateway (`gateway`), and their
answers. Policy checks what an action needs beyond the sender's word: the app PIN for a
remote unlock, the password for a login (issue 13)."""

from __future__ import annotations

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


PASSWORD_CHARS = (8, 128)
PIN_DIGITS = (4, 8)


def password_shape(password: str) -> str | None:
    """What is wrong with a new app password, or None."""
    low, high = PASSWORD_CHARS
    if not low <= len(password) <= high:
        return f"a password has {low} to {high} characters, not {len(password)}"
    return None


def pin_shape(pin: str) -> str | None:
    """What is wrong with an app PIN, or None: 4 to 8 ASCII digits."""
    low, high = PIN_DIGITS
    if not (pin.isascii() and pin.isdigit() and low <= len(pin) <= high):
        return f"an app PIN is {low} to {high} digits"
    return None


class Listing(Message, family="owner", event="listing"):
    """A list of records: people, visitor codes, events, settings."""

    items: list[dict[str, Any]]


class PeopleRequest(Message, family="owner", event="people"):
    """Lists people with the counts of their credentials (L-33)."""


class PersonAdd(Message, family="owner", event="person_add"):
    name: str
    code: str = secret()
    role: str = one_of("admin", "user", default="user")


class PersonRename(Message, family="owner", event="person_rename"):
    number: str
    name: str


class PersonDelete(Message, family="owner", event="person_delete"):
    number: str


class ValiditySet(Message, family="owner", event="validity"):
    """L-7: a window (epoch seconds, None = open) and weekly slots [days mask, start, end]."""

    number: str
    start: float | None = None
    end: float | None = None
    slots: list[list[int]] = checked(weekly_slots, default_factory=list)


class DuressSet(Message, family="owner", event="duress"):
    number: str
    code: str = secret()


class VisitorAdd(Message, family="owner", event="visitor_add"):
    """L-9: a temporary passcode with a window and a use limit (None: unlimited)."""

    label: str
    code: str = secret()
    start: float | None = None
    end: float | None = None
    uses: int | None = None


class VisitorDelete(Message, family="owner", event="visitor_delete"):
    label: str


class VisitorsRequest(Message, family="owner", event="visitors"):
    """Lists visitor codes (never the codes)."""


class SettingsRequest(Message, family="owner", event="settings"):
    """Lists the owner's settings (L-36)."""


class SettingSet(Message, family="owner", event="setting_set"):
    name: str
    value: str


class LockoutRelease(Message, family="owner", event="lockout_release"):
    """Ends a lockout at once (L-20)."""


class RemoteUnlock(Message, family="owner", event="remote_unlock"):
    """Unlock from the app, when remote unlock is enabled (L-18, L-32), confirmed with the
    app PIN set at the claim: policy checks it, so a hijacked gateway cannot unlock."""

    pin: str = secret(check=pin_shape)


class RemoteLock(Message, family="owner", event="remote_lock"):
    """Lock from the app (L-32): never needs the PIN, locking is always safe."""


class AppLogin(Message, family="owner", event="app_login"):
    """The gateway asks policy whether a login's password is the owner's (issue 13).
    Policy keeps the password's hash, counts wrong ones toward a lockout like L-20's and
    logs every attempt; the gateway only mints the session."""

    password: str = secret(check=password_shape)


class HomeRequest(Message, family="owner", event="home"):
    """What the app's Home screen shows (L-31)."""


class Home(Message, family="owner", event="home_reply"):
    """The lock as policy knows it now (L-31). bolt: locked, unlocked, moving, jammed or
    unknown; door: open, closed or unknown; battery from the power service's last word
    (None until it spoke); alarms: the names of the ones active now; mode: the operating
    mode in force (issue 15: a scheduled passage outside its slots is normal)."""

    bolt: str
    door: str
    battery_percent: float | None
    battery_volts: float | None
    external_power: bool
    video_allowed: bool
    wifi: bool
    bluetooth: str  # the ble radio (issue 16): absent, off, on, advertising, connected
    alarms: list[str]
    locked_out: bool
    remote_unlock: bool
    claimed: bool
    mode: str


class EventsRequest(Message, family="owner", event="events"):
    """The event log, newest first, filtered (L-35)."""

    since: float | None = None
    person: str | None = None
    kind: str | None = None
    limit: int = between(1, 1000, default=100)
    before: int | None = None  # a seq: the page that ends just before it (paging back)


class AuditVerify(Message, family="owner", event="audit_verify"):
    """Re-checks the event log's hash chain."""


class AuditReport(Message, family="owner", event="audit_report"):
    intact: bool
    checked: int
    first_bad: int | None = None
    why: str = ""


class PairClaim(Message, family="owner", event="pair"):
    """The owner's app claims the lock while pairing is open (L-17): serial and code, and
    the owner's new password (app logins) and app PIN (remote unlock), which policy keeps
    only as hashes. A new claim, again at the door in pairing mode, replaces both."""

    serial: str
    code: str = secret()
    password: str = secret(check=password_shape)
    pin: str = secret(check=pin_shape)


# -- issue 15: Matter's UserStatus, CredentialRule and OperatingMode --------------------
OPERATING_MODES = ("normal", "vacation", "privacy", "no-remote", "passage")


class PersonStatus(Message, family="owner", event="person_status"):
    """Disable a person without deleting them (Matter's UserStatus occupied-disabled),
    or enable them again: every credential of theirs is refused while disabled."""

    number: str
    enabled: bool


class CredentialRuleSet(Message, family="owner", event="credential_rule"):
    """Matter's CredentialRule: how many different credentials the person shows at the
    door, within lockout.factor_window_s (single 1, dual 2, tri 3)."""

    number: str
    rule: str = one_of("single", "dual", "tri")


class OperatingModeSet(Message, family="owner", event="operating_mode"):
    """Matter's OperatingMode. passage unlocks the door (always, or in weekly slots), so
    it is a remote unlock: remote unlock on and, while RequirePINforRemoteOperation is,
    the app PIN, checked by policy. pin is empty for the other modes."""

    mode: str = one_of(*OPERATING_MODES)
    slots: list[list[int]] = checked(weekly_slots, default_factory=list)
    pin: str = secret(default="")


class OperatingModeRequest(Message, family="owner", event="operating_mode_get"):
    """The operating mode as set, and whether passage holds the bolt open now."""


class OperatingMode(Message, family="owner", event="operating_mode_reply"):
    mode: str
    slots: list[list[int]]
    effective: str  # the mode in force now: passage outside its slots is normal
