"""Names from the Matter Door Lock cluster (0x0101), so the lock can be bridged later.

The wire and the audit log carry the kebab-case names; the numbers are Matter's.
Palm vein has no Matter credential type: it is ours, with no number.
"""

from __future__ import annotations

USER_TYPES = {
    "unrestricted": 0,
    "year-day-schedule": 1,
    "week-day-schedule": 2,
    "programming": 3,
    "non-access": 4,
    "forced": 5,
    "disposable": 6,
    "expiring": 7,
    "schedule-restricted": 8,
    "remote-only": 9,
}
CREDENTIAL_TYPES = {
    "programming-pin": 0,
    "pin": 1,
    "rfid": 2,
    "fingerprint": 3,
    "finger-vein": 4,
    "face": 5,
    "palm-vein": None,
}
OPERATION_SOURCES = {
    "unspecified": 0,
    "manual": 1,
    "proprietary-remote": 2,
    "keypad": 3,
    "auto": 4,
    "button": 5,
    "schedule": 6,
    "remote": 7,
    "rfid": 8,
    "biometric": 9,
}
ALARM_CODES = {
    "lock-jammed": 0,
    "lock-factory-reset": 1,
    "lock-radio-power-cycled": 3,
    "wrong-code-entry-limit": 4,
    "front-escutcheon-removed": 5,
    "door-forced-open": 6,
    "door-ajar": 7,
    "forced-user": 8,
}
OPERATION_ERRORS = {
    "unspecified": 0,
    "invalid-credential": 1,
    "disabled-user-denied": 2,
    "restricted": 3,
    "insufficient-battery": 4,
}

# -- the event log as Matter's Door Lock events (issue 15: `lockmesh events --matter`) ----
EVENT_IDS = {
    "DoorLockAlarm": 0x00,
    "DoorStateChange": 0x01,
    "LockOperation": 0x02,
    "LockOperationError": 0x03,
    "LockUserChange": 0x04,
}
LOCK_OPERATION_TYPES = {"lock": 0, "unlock": 1, "non-access-user-event": 2, "forced-user-event": 3}
LOCK_DATA_TYPES = {
    "unspecified": 0,
    "programming-code": 1,
    "user-index": 2,
    "week-day-schedule": 3,
    "year-day-schedule": 4,
    "holiday-schedule": 5,
    "pin": 6,
    "rfid": 7,
    "fingerprint": 8,
    "finger-vein": 9,
    "face": 10,
}
DATA_OPERATION_TYPES = {"add": 0, "clear": 1, "modify": 2}

# The one table of our names that are not Matter's, to the Matter name they stand for
# (None: Matter has nothing like it, and the row is left out of --matter), by field:
# sources: who acted, as the log names them
SOURCE_NAMES: dict[str, str] = {
    "face": "biometric",
    "biometric": "biometric",
    "app": "remote",  # the owner's app, through the gateway
    "bridge": "remote",  # Home Assistant over MQTT
    "fleet": "remote",  # a building's console (issue 17)
    "ble": "proprietary-remote",  # a phone key at the door: no Matter source for it
    "policy": "unspecified",  # the lock itself (a lockout's end)
}
# credentials: palm vein has no Matter credential type
METHOD_NAMES: dict[str, str | None] = {
    "palm-vein": None,
    "mechanical-key": None,
    "remote": None,
    "ble": None,
    "passage": None,
}
# alarms beyond Matter's AlarmCodeEnum
ALARM_NAMES: dict[str, str | None] = {
    "daily-failure-limit": "wrong-code-entry-limit",  # issue 15's long-window guard
    "wrong-pin-entry-limit": "wrong-code-entry-limit",  # the app PIN's (issue 13)
    "wrong-password-entry-limit": None,
    "inside-opening-while-away": None,  # L-22
    "low-battery": None,  # Matter's Power Source cluster, not Door Lock
    "drive-interrupted": None,
}
# refusals: Matter's OperationErrorEnum; any other (a lockout, a mode, a window) "restricted"
REASON_ERRORS: dict[str, str] = {
    "invalid-credential": "invalid-credential",
    "too-long": "invalid-credential",
    "not-digits": "invalid-credential",
    "no-template": "invalid-credential",
    "not-live": "invalid-credential",
    "factor-timeout": "invalid-credential",
    "wrong-pin": "invalid-credential",
    "user-disabled": "disabled-user-denied",
    "insufficient-battery": "insufficient-battery",
}
# changes to people and credentials: (LockDataType, DataOperationType)
USER_CHANGES: dict[str, tuple[str, str]] = {
    "person-added": ("user-index", "add"),
    "person-deleted": ("user-index", "clear"),
    "person-renamed": ("user-index", "modify"),
    "person-enabled": ("user-index", "modify"),
    "person-disabled": ("user-index", "modify"),
    "credential-rule-set": ("user-index", "modify"),
    "validity-set": ("week-day-schedule", "modify"),
    "duress-set": ("pin", "add"),
    "visitor-added": ("pin", "add"),
    "visitor-deleted": ("pin", "clear"),
}


def _source(name: str | None) -> int:
    named = SOURCE_NAMES.get(name or "", name or "unspecified")
    return OPERATION_SOURCES.get(str(named), OPERATION_SOURCES["unspecified"])


def _user(person: str | None) -> int | None:
    return int(person) if person and person.isdigit() else None


def _credentials(method: str | None) -> list[dict[str, int]] | None:
    if method is None or METHOD_NAMES.get(method, method) is None:
        return None
    number = CREDENTIAL_TYPES.get(method)
    return None if number is None else [{"CredentialType": number}]


def matter_event(row: dict[str, object]) -> tuple[str, dict[str, object]] | None:
    """A log row as (Matter event name, its fields with Matter's numbers), or None when
    the row has no Matter event (a setting, the doorbell, a decision before its drive)."""
    named = row.get("source")
    kind, source = str(row.get("kind")), _source(named if isinstance(named, str) else None)
    person, method = row.get("person"), row.get("method")
    user = _user(person if isinstance(person, str) else None)
    creds = _credentials(method if isinstance(method, str) else None)
    if kind in ("lock", "unlock"):
        op = {"LockOperationType": LOCK_OPERATION_TYPES[kind], "OperationSource": source}
        return "LockOperation", {**op, "UserIndex": user, "Credentials": creds}
    if kind in ("refused", "actuation-failed"):
        reason = str(row.get("reason"))
        error = REASON_ERRORS.get(reason, "restricted")
        action = "lock" if str(row.get("detail") or "").startswith("lock") else "unlock"
        return "LockOperationError", {
            "LockOperationType": LOCK_OPERATION_TYPES[action],
            "OperationSource": source,
            "OperationError": OPERATION_ERRORS[error if kind == "refused" else _drive(reason)],
            "UserIndex": user,
            "Credentials": creds,
        }
    if kind == "alarm":
        code = str(row.get("reason"))
        named = ALARM_NAMES.get(code, code)
        if named is None or named not in ALARM_CODES:
            return None
        return "DoorLockAlarm", {"AlarmCode": ALARM_CODES[str(named)]}
    change = USER_CHANGES.get(kind)
    if change is None and kind == "template-added":
        data = str(method) if method in LOCK_DATA_TYPES else "unspecified"
        change = (data, "add")
    if change is None:
        return None
    data_type, operation = change
    return "LockUserChange", {
        "LockDataType": LOCK_DATA_TYPES[data_type],
        "DataOperationType": DATA_OPERATION_TYPES[operation],
        "OperationSource": source,
        "UserIndex": user,
    }


def _drive(reason: str) -> str:
    """A drive that failed: the battery is Matter's; a jam or a silent motor unspecified."""
    return "insufficient-battery" if reason == "insufficient-battery" else "unspecified"
