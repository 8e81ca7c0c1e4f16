"""Commands from the broker: read strictly, refused with a reason, and done once each.

A command is what HA's lock sends through the discovery's command template, a JSON object
`{"action": "LOCK"|"UNLOCK", "code": "<PIN>"|null, "id": "<unique>"}`, or HA's bare
`LOCK` (no template). QoS 1 delivers at least once, so an unlock must carry an id (in the
payload, or an MQTT 5 correlation datum) that the bridge remembers on disk before acting:
a redelivered or replayed command with a known id is not done again. The PIN is checked by
policy, never here, and never logged.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from proto import files
from proto.owner import pin_shape

log = logging.getLogger(__name__)

MAX_PAYLOAD = 1024  # bytes: a command is a few dozen
MAX_ID = 128  # characters of a command id
ACTIONS = {"LOCK": "lock", "UNLOCK": "unlock"}  # HA's payload_lock / payload_unlock
FIELDS = frozenset({"action", "code", "id"})
REMEMBERED = 512  # command ids kept: far more than a broker redelivers after a reconnect


class Refused(ValueError):
    """A command not done; reason is a short code (counted), the message a sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Command:
    action: str  # lock or unlock
    code: str | None = None
    id: str | None = None


def parse(payload: bytes, correlation: bytes | None = None) -> Command:
    """The command in a payload, or Refused saying what is wrong with it."""
    if len(payload) > MAX_PAYLOAD:
        raise Refused("too-long", f"a command is at most {MAX_PAYLOAD} bytes, not {len(payload)}")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Refused("not-utf8", "a command is UTF-8 text") from None
    fallback_id = correlation.hex() if correlation else None
    if text in ACTIONS:
        return _checked(Command(ACTIONS[text], None, fallback_id))
    try:
        body = json.loads(text)
    except ValueError:
        raise Refused("not-json", "a command is LOCK, UNLOCK or a JSON object") from None
    if not isinstance(body, dict):
        raise Refused("not-an-object", "a command's JSON is an object")
    return _checked(_from_object(body, fallback_id))


def _from_object(body: dict[str, object], fallback_id: str | None) -> Command:
    extra = sorted(set(body) - FIELDS)
    if extra:
        raise Refused("unknown-field", f"a command has no field {', '.join(extra)}")
    action, code, ident = body.get("action"), body.get("code"), body.get("id", fallback_id)
    if not isinstance(action, str) or action not in ACTIONS:
        raise Refused("unknown-action", "action is LOCK or UNLOCK")
    if code is not None and not isinstance(code, str):
        raise Refused("bad-code", "code is a string of digits or null")
    if ident is not None and not (isinstance(ident, str) and 0 < len(ident) <= MAX_ID):
        raise Refused("bad-id", f"id is a string of 1 to {MAX_ID} characters")
    return Command(ACTIONS[action], code, ident)


def _checked(command: Command) -> Command:
    """An unlock needs the PIN's shape and an id; a lock needs neither (locking is safe)."""
    if command.action == "unlock":
        if command.code is None:
            raise Refused("no-code", "an unlock needs the app PIN as its code")
        why = pin_shape(command.code)
        if why:
            raise Refused("bad-code", why)
        if command.id is None:
            raise Refused("no-id", "an unlock needs an id, so that it is done only once")
    return command


def age_s(ident: str, now: float) -> float | None:
    """How old a command is by its id, when the id is a time with its zone (HA's template
    puts `now().isoformat()` there); None when it is not one."""
    try:
        sent = datetime.fromisoformat(ident)
    except ValueError:
        return None
    if sent.tzinfo is None:
        return None
    return now - sent.timestamp()


class Ledger:
    """The ids of the commands taken, newest last, kept on disk (0600) so that a restarted
    bridge still knows them: a command is written here before it is done, so a crash in
    between leaves it undone (fail-secure), never done twice."""

    def __init__(self, path: Path, keep: int = REMEMBERED) -> None:
        self.path, self.keep = path, keep
        self._ids: OrderedDict[str, float] = OrderedDict(self._load())

    def _load(self) -> list[tuple[str, float]]:
        try:
            raw = json.loads(files.read_private(self.path))
            return [(str(i), float(t)) for i, t in raw]
        except files.MissingFile:
            return []
        except (OSError, ValueError, TypeError, files.FileRefused) as e:
            log.warning("command ledger %s unreadable (%s): starting empty", self.path, e)
            return []

    def __contains__(self, ident: str) -> bool:
        return ident in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def take(self, ident: str, now: float) -> None:
        self._ids[ident] = now
        while len(self._ids) > self.keep:
            self._ids.popitem(last=False)
        files.private_dir(self.path.parent)
        files.write_private(self.path, json.dumps(list(self._ids.items())).encode())
