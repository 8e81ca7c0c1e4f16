"""Where the lock's things live on the broker: `lockmesh/<serial>/...` and HA's discovery.

One lock's topics hang under its serial, so a fleet (many locks on one broker) reads them
all with `lockmesh/+/...` without knowing them first; Home Assistant's discovery configs go
under its own prefix (`homeassistant/<component>/<object_id>/config`, object id =
unique id and no node id, as HA's MQTT docs advise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "lockmesh"  # every lock's topics: lockmesh/<serial>/...
# HA's discovery topic matcher accepts these characters in an object id; a serial is used
# as a topic level and inside object ids, so it must be made of them alone.
TOPIC_WORD = re.compile(r"[A-Za-z0-9_-]+")


class BadTopic(ValueError):
    """A serial or prefix that cannot name topics; the message says which."""


def check_word(what: str, value: str) -> str:
    if not TOPIC_WORD.fullmatch(value):
        raise BadTopic(f"{what} {value!r} is not made of letters, digits, _ and - alone")
    return value


def check_prefix(prefix: str) -> str:
    """A discovery prefix: topic levels of those characters (HA allows more; we need none)."""
    for level in prefix.split("/"):
        check_word("discovery prefix level", level)
    return prefix


@dataclass(frozen=True)
class Topics:
    serial: str
    prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        check_word("serial", self.serial)
        check_prefix(self.prefix)

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.serial}"

    # -- the lock's own ----------------------------------------------------------------------
    @property
    def availability(self) -> str:
        """online / offline, retained; the last will says offline (the bridge is gone)."""
        return f"{self.base}/availability"

    @property
    def command(self) -> str:
        """Where HA (or anyone allowed on the broker) asks to lock or unlock."""
        return f"{self.base}/lock/set"

    @property
    def result(self) -> str:
        """What became of each command (not retained): id, action, ok, reason."""
        return f"{self.base}/lock/result"

    @property
    def fleet_push(self) -> str:
        """Where a building's console sends sealed pushes (proto/fleet.py) to this door."""
        return f"{self.base}/fleet/set"

    @property
    def fleet_ack(self) -> str:
        """The door's signed answer to each push (not retained)."""
        return f"{self.base}/fleet/ack"

    def state(self, thing: str) -> str:
        """A retained state: lock, door, battery, tamper, jam, battery_low; audit (the
        log's head, as policy's status says it)."""
        return f"{self.base}/{check_word('state', thing)}/state"

    def events(self, kind: str) -> str:
        """A stream of events (not retained): doorbell, unlock."""
        return f"{self.base}/{check_word('event', kind)}/event"

    # -- Home Assistant's -------------------------------------------------------------------
    @property
    def ha_status(self) -> str:
        """HA's birth and will: `online` means it (re)started and wants the configs again."""
        return f"{self.prefix}/status"

    def object_id(self, key: str) -> str:
        return f"{self.serial}_{check_word('entity', key)}"

    def config(self, component: str, key: str) -> str:
        return f"{self.prefix}/{check_word('component', component)}/{self.object_id(key)}/config"
