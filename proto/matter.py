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
