"""Home Assistant MQTT discovery: one device, its entities, and the payloads that say them.

Each entity's config goes, retained, to `<prefix>/<component>/<serial>_<key>/config`; all
share one device block (so HA groups them under the lock) and the availability topic the
bridge's last will answers. Keys are HA's full names (no abbreviations): the configs are
read by people too. An empty retained payload on a config topic removes the entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proto.owner import PIN_DIGITS
from services.bridge.topics import Topics

MANUFACTURER = "lockmesh"
ORIGIN = "lockmesh"
# HA renders this template with `value` (payload_lock or payload_unlock) and `code` (what
# the user typed, or None); the code reaches the lock only this way. `id` makes a
# redelivered command recognisable (QoS 1 is at least once): HA's clock to the microsecond.
COMMAND_TEMPLATE = (
    '{"action": "{{ value }}", "code": {{ code | tojson }}, "id": "{{ now().isoformat() }}"}'
)
# HA checks the code with re.match, a prefix match: anchored, as the app PIN's shape.
CODE_FORMAT = rf"^\d{{{PIN_DIGITS[0]},{PIN_DIGITS[1]}}}$"
LOCK_STATES = {
    "state_locked": "LOCKED",
    "state_unlocked": "UNLOCKED",
    "state_locking": "LOCKING",
    "state_unlocking": "UNLOCKING",
    "state_jammed": "JAMMED",
    "state_open": "OPEN",
    "state_opening": "OPENING",
}
ON, OFF = "ON", "OFF"  # binary sensors' payloads (HA's defaults, said anyway)


@dataclass(frozen=True)
class Device:
    """What HA's device registry shows of the lock."""

    serial: str
    firmware: str
    model: str
    name: str = ""

    def block(self) -> dict[str, Any]:
        return {
            "identifiers": [f"{MANUFACTURER}_{self.serial}"],
            "name": self.name or f"lockmesh {self.serial}",
            "manufacturer": MANUFACTURER,
            "model": self.model,
            "serial_number": self.serial,
            "sw_version": self.firmware,
        }


@dataclass(frozen=True)
class Entity:
    component: str  # lock, binary_sensor, sensor, event
    key: str  # the object id's tail and the state topic's name
    fields: dict[str, Any]  # what this entity says beyond what every entity says
    retained_state: bool = True  # events are not retained: HA ignores retained ones


def entities(topics: Topics) -> list[Entity]:
    """The lock as HA sees it (issue 17)."""

    def binary(key: str, name: str, device_class: str, diagnostic: bool) -> Entity:
        fields = {
            "name": name,
            "device_class": device_class,
            "state_topic": topics.state(key),
            "payload_on": ON,
            "payload_off": OFF,
        }
        if diagnostic:
            fields["entity_category"] = "diagnostic"
        return Entity("binary_sensor", key, fields)

    def event(key: str, name: str, types: list[str], device_class: str | None) -> Entity:
        fields: dict[str, Any] = {
            "name": name,
            "state_topic": topics.events(key),
            "event_types": types,
        }
        if device_class:
            fields["device_class"] = device_class
        return Entity("event", key, fields, retained_state=False)

    lock = {
        "name": None,  # the device's own name: the lock is the device's main entity
        "command_topic": topics.command,
        "state_topic": topics.state("lock"),
        "command_template": COMMAND_TEMPLATE,
        "code_format": CODE_FORMAT,
        "payload_lock": "LOCK",
        "payload_unlock": "UNLOCK",
        **LOCK_STATES,
        "optimistic": False,  # the state is the bolt's truth, from the motor
        "retain": False,  # a retained command would be replayed at every reconnect
    }
    battery = {
        "name": "Battery",
        "device_class": "battery",
        "unit_of_measurement": "%",
        "state_class": "measurement",
        "entity_category": "diagnostic",
        "state_topic": topics.state("battery"),
    }
    return [
        Entity("lock", "lock", lock),
        binary("door", "Door", "door", diagnostic=False),
        Entity("sensor", "battery", battery),
        binary("tamper", "Tamper", "tamper", diagnostic=True),
        binary("jam", "Jammed", "problem", diagnostic=True),
        binary("battery_low", "Battery low", "problem", diagnostic=True),
        event("doorbell", "Doorbell", ["ring"], "doorbell"),
        event("unlock", "Unlock", ["unlock"], None),
    ]


def configs(topics: Topics, device: Device) -> dict[str, dict[str, Any]]:
    """Every discovery topic and its payload."""
    common = {
        "availability_topic": topics.availability,
        "device": device.block(),
        "origin": {"name": ORIGIN, "sw_version": device.firmware},
        "qos": 1,
    }
    return {
        topics.config(e.component, e.key): {
            **e.fields,
            "unique_id": topics.object_id(e.key),
            **common,
        }
        for e in entities(topics)
    }


def retained_states(topics: Topics) -> list[str]:
    """The state topics the bridge keeps retained (cleared when the lock leaves MQTT)."""
    kept = [topics.state(e.key) for e in entities(topics) if e.retained_state]
    return [*kept, topics.state("audit")]  # the log's head, for a building's console
