"""Home Assistant's side, for the bridge's tests (issue 17): the discovery schema HA
documents, checked key by key, and the command template rendered as HA renders it.

HA's own validators (voluptuous, in homeassistant.components.mqtt) need Python 3.13 and
600 MB; this is their contract written down from the MQTT docs and the 2025.4 schemas
(`schemas.py` MQTT_ENTITY_COMMON_SCHEMA and the device and origin blocks, `config.py`
MQTT_RO_SCHEMA / MQTT_RW_SCHEMA, `lock.py`, `binary_sensor.py`, `sensor.py`, `event.py`):
required keys, each key's type, the topic rules, the discovery topic's pattern, and no key
HA does not know (its YAML schema refuses one; discovery drops it silently, which would
hide a typo).
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Callable

import jinja2.sandbox

# `<prefix>/<component>/[<node_id>/]<object_id>/config`, as discovery.TOPIC_MATCHER
TOPIC_MATCHER = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)

Check = Callable[[Any], str | None]  # what is wrong with a value, or None


def is_str(v: Any) -> str | None:
    return None if isinstance(v, str) else f"{v!r} is not a string"


def str_or_none(v: Any) -> str | None:
    return None if v is None or isinstance(v, str) else f"{v!r} is not a string or null"


def is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"{v!r} is not a boolean"


def positive_int(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
    return None if ok else f"{v!r} is not an integer >= 0"


def qos(v: Any) -> str | None:
    return None if v in (0, 1, 2) and not isinstance(v, bool) else f"qos {v!r} is not 0, 1 or 2"


def _topic(v: Any) -> str | None:
    if not isinstance(v, str) or not v:
        return f"topic {v!r} is not a non-empty string"
    if len(v.encode()) > 65535:
        return "a topic is at most 65535 bytes"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in v):
        return f"topic {v!r} holds a control character"
    return None


def publish_topic(v: Any) -> str | None:
    """HA's valid_publish_topic: a topic with no wildcard."""
    return _topic(v) or ("+" in v or "#" in v) and f"{v!r} has a wildcard" or None


def subscribe_topic(v: Any) -> str | None:
    """HA's valid_subscribe_topic: + a whole level, # only as the last one."""
    why = _topic(v)
    if why:
        return why
    levels = v.split("/")
    for i, level in enumerate(levels):
        if "+" in level and level != "+":
            return f"{v!r}: + must be a whole level"
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"{v!r}: # must be the whole last level"
    return None


def regex(v: Any) -> str | None:
    try:
        re.compile(v)
    except (re.error, TypeError) as e:
        return f"{v!r} is not a regular expression: {e}"
    return None


def template(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"{v!r} is not a template string"
    try:
        jinja2.sandbox.ImmutableSandboxedEnvironment().parse(v)
    except jinja2.TemplateSyntaxError as e:
        return f"{v!r} is not a template: {e}"
    return None


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"{v!r} is not one of {', '.join(choices)}"


def str_list(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
    return None if ok else f"{v!r} is not a list of strings"


def nonempty_str_list(v: Any) -> str | None:
    return str_list(v) or (not v and "an empty list") or None


def url(v: Any) -> str | None:
    ok = isinstance(v, str) and re.match(r"^(https?|homeassistant)://", v)
    return None if ok else f"{v!r} is not an http(s) URL"


DEVICE: dict[str, Check] = {
    "identifiers": lambda v: is_str(v) and str_list(v),  # a string or a list of them
    "connections": lambda v: (
        None
        if isinstance(v, list) and all(isinstance(c, list) and len(c) == 2 for c in v)
        else f"{v!r} is not a list of [type, id]"
    ),
    "manufacturer": is_str,
    "model": is_str,
    "model_id": is_str,
    "name": is_str,
    "hw_version": is_str,
    "serial_number": is_str,
    "sw_version": is_str,
    "via_device": is_str,
    "suggested_area": is_str,
    "configuration_url": url,
}
ORIGIN: dict[str, Check] = {"name": is_str, "sw_version": is_str, "support_url": url}


def device_block(v: Any) -> str | None:
    if not isinstance(v, dict):
        return f"device {v!r} is not a map"
    problems = _keys("device", v, DEVICE, required=())
    if not (v.get("identifiers") or v.get("connections")):
        problems.append("device: at least one of identifiers and connections")
    return "; ".join(problems) or None


def origin_block(v: Any) -> str | None:
    if not isinstance(v, dict):
        return f"origin {v!r} is not a map"
    return "; ".join(_keys("origin", v, ORIGIN, required=("name",))) or None


def availability_list(v: Any) -> str | None:
    item = {
        "topic": subscribe_topic,
        "payload_available": is_str,
        "payload_not_available": is_str,
        "value_template": template,
    }
    if not isinstance(v, list) or not all(isinstance(a, dict) for a in v):
        return f"availability {v!r} is not a list of maps"
    return "; ".join(p for a in v for p in _keys("availability", a, item, ("topic",))) or None


ENTITY_CATEGORIES = ("config", "diagnostic")
# Every entity (schemas.py MQTT_ENTITY_COMMON_SCHEMA with the availability keys, config.py
# SCHEMA_BASE)
COMMON: dict[str, Check] = {
    "availability": availability_list,
    "availability_mode": one_of("all", "any", "latest"),
    "availability_template": template,
    "availability_topic": subscribe_topic,
    "payload_available": is_str,
    "payload_not_available": is_str,
    "device": device_block,
    "origin": origin_block,
    "enabled_by_default": is_bool,
    "entity_category": one_of(*ENTITY_CATEGORIES),
    "icon": is_str,
    "json_attributes_topic": subscribe_topic,
    "json_attributes_template": template,
    "object_id": is_str,
    "unique_id": is_str,
    "qos": qos,
    "encoding": is_str,
}
READ_ONLY = {"state_topic": subscribe_topic, "value_template": template}  # MQTT_RO_SCHEMA
BINARY_SENSOR_CLASSES = (
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
)  # fmt: skip
COMPONENTS: dict[str, tuple[dict[str, Check], tuple[str, ...]]] = {
    "lock": (
        {
            "command_topic": publish_topic,  # MQTT_RW_SCHEMA
            "optimistic": is_bool,
            "retain": is_bool,
            "state_topic": subscribe_topic,
            "code_format": regex,
            "command_template": template,
            "name": str_or_none,
            "payload_lock": is_str,
            "payload_unlock": is_str,
            "payload_open": is_str,
            "payload_reset": is_str,
            "state_jammed": is_str,
            "state_locked": is_str,
            "state_locking": is_str,
            "state_open": is_str,
            "state_opening": is_str,
            "state_unlocked": is_str,
            "state_unlocking": is_str,
            "value_template": template,
        },
        ("command_topic",),
    ),
    "binary_sensor": (
        {
            **READ_ONLY,
            "device_class": lambda v: v is not None and one_of(*BINARY_SENSOR_CLASSES)(v),
            "expire_after": positive_int,
            "force_update": is_bool,
            "name": str_or_none,
            "off_delay": positive_int,
            "payload_off": is_str,
            "payload_on": is_str,
        },
        ("state_topic",),
    ),
    "sensor": (
        {
            **READ_ONLY,
            "device_class": str_or_none,
            "expire_after": positive_int,
            "force_update": is_bool,
            "last_reset_value_template": template,
            "name": str_or_none,
            "options": str_list,
            "suggested_display_precision": positive_int,
            "state_class": lambda v: (
                v is not None and one_of("measurement", "total", "total_increasing")(v)
            ),
            "unit_of_measurement": str_or_none,
        },
        ("state_topic",),
    ),
    "event": (
        {
            **READ_ONLY,
            "device_class": one_of("doorbell", "button", "motion"),
            "name": str_or_none,
            "event_types": nonempty_str_list,
        },
        ("state_topic", "event_types"),
    ),
}


def _keys(
    where: str, config: dict[str, Any], checks: dict[str, Check], required: tuple[str, ...]
) -> list[str]:
    problems = [f"{where}: {k} is required" for k in required if k not in config]
    for key, value in config.items():
        check = checks.get(key)
        if check is None:
            problems.append(f"{where}: {key} is not a key HA knows")
        elif why := check(value):
            problems.append(f"{where}: {key}: {why}")
    return problems


def problems(topic: str, config: Any, prefix: str = "homeassistant") -> list[str]:
    """What HA would refuse in a discovery message, or []."""
    if not topic.startswith(prefix + "/"):
        return [f"{topic} is not under {prefix}/"]
    matched = TOPIC_MATCHER.fullmatch(topic[len(prefix) + 1 :])
    if not matched:
        return [f"{topic} does not match HA's discovery topic pattern"]
    component = matched["component"]
    if component not in COMPONENTS:
        return [f"{component} is not a component this kit knows"]
    if not isinstance(config, dict):
        return [f"{topic}: the payload is not a JSON object"]
    specific, required = COMPONENTS[component]
    found = _keys(component, config, {**COMMON, **specific}, required)
    if "availability" in config and "availability_topic" in config:
        found.append(f"{component}: availability and availability_topic exclude each other")
    if "unique_id" not in config:
        found.append(f"{component}: without unique_id HA adds no device (and no entity at start)")
    if "options" in config and config.get("device_class") != "enum":
        found.append(f"{component}: options is for the enum device class only")
    if component == "sensor" and config.get("device_class") == "battery":
        if config.get("unit_of_measurement") != "%":
            found.append("sensor: a battery's unit is %")
    return found


def render_command(template_text: str, value: str, code: str | None) -> str:
    """The payload HA publishes: its lock's command_template rendered with `value` (the
    payload_lock or payload_unlock) and `code` (what the user typed, or None), `now()` its
    clock with the zone (HA's templates are Jinja2 in a sandbox)."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment()
    env.globals["now"] = lambda: datetime.datetime.now().astimezone()
    return env.from_string(template_text).render(value=value, code=code)
