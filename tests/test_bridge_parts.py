"""The MQTT bridge's parts, without a mesh (issue 17; L-18 remote unlock, L-31 Home):
commands read strictly, the ledger that makes a command done once, the lock's state as HA
is told it, the discovery payloads against HA's documented schema, and [mqtt]."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from paho.mqtt.enums import CallbackAPIVersion

from proto import config as configuration
from proto import files
from services.bridge import discovery
from services.bridge.commands import Command, Ledger, Refused, age_s, parse
from services.bridge.link import BadSettings, Rotating, settings
from services.bridge.topics import BadTopic, Topics
from services.bridge.view import LockView
from tests import hakit

SERIAL = "LM0A1B2C3D4E"
TOPICS = Topics(SERIAL)
DEVICE = discovery.Device(SERIAL, "0.1.0", "lockmesh (sim board)")


# -- commands ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "command"),
    [
        (b"LOCK", Command("lock")),  # HA's lock without a template: locking is always safe
        (b'{"action": "LOCK", "code": null, "id": "a1"}', Command("lock", None, "a1")),
        (b'{"action": "UNLOCK", "code": "4711", "id": "x"}', Command("unlock", "4711", "x")),
        (b' {"action": "UNLOCK", "code": "12345678", "id": "7"}\n',
         Command("unlock", "12345678", "7")),
    ],
)  # fmt: skip
def test_issue17_commands_are_read_as_ha_sends_them(payload: bytes, command: Command) -> None:
    assert parse(payload) == command


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * 1025, "too-long"),
        (b"\xff\xfe", "not-utf8"),
        (b"OPEN", "not-json"),
        (b"unlock", "not-json"),
        (b"[1, 2]", "not-an-object"),
        (b'"UNLOCK"', "not-an-object"),
        (b'{"action": "UNLOCK", "code": "4711", "id": "1", "pin": "0"}', "unknown-field"),
        (b'{"action": "OPEN", "code": "4711", "id": "1"}', "unknown-action"),
        (b'{"action": ["UNLOCK"], "code": "4711", "id": "1"}', "unknown-action"),
        (b'{"code": "4711", "id": "1"}', "unknown-action"),
        (b'{"action": "UNLOCK", "code": 4711, "id": "1"}', "bad-code"),
        (b'{"action": "UNLOCK", "code": "47a1", "id": "1"}', "bad-code"),
        (b'{"action": "UNLOCK", "code": "123", "id": "1"}', "bad-code"),
        ('{"action": "UNLOCK", "code": "\u0661\u0662\u0663\u0664", "id": "1"}'.encode(),
         "bad-code"),  # Arabic-Indic digits: isdigit() but not ASCII
        (b'{"action": "UNLOCK", "code": null, "id": "1"}', "no-code"),
        (b"UNLOCK", "no-code"),
        (b'{"action": "UNLOCK", "code": "4711"}', "no-id"),
        (b'{"action": "UNLOCK", "code": "4711", "id": ""}', "bad-id"),
        (b'{"action": "UNLOCK", "code": "4711", "id": 5}', "bad-id"),
        (b'{"action": "LOCK", "id": "' + b"i" * 129 + b'"}', "bad-id"),
        (b'{"action": "UNLOCK", "code": "4711", "id": "1", "id": NaN}', "bad-id"),
    ],
)  # fmt: skip
def test_issue17_bad_commands_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        parse(payload)
    assert refused.value.reason == reason and str(refused.value)


def test_issue17_an_mqtt5_correlation_datum_is_the_id_when_the_payload_has_none() -> None:
    assert parse(b'{"action": "UNLOCK", "code": "4711"}', b"\x01\xff").id == "01ff"
    assert parse(b'{"action": "UNLOCK", "code": "4711", "id": "mine"}', b"\x01").id == "mine"


def test_issue17_a_command_id_that_is_a_time_says_the_commands_age() -> None:
    now = time.time()
    assert age_s("2026-01-01T00:00:00+00:00", 1767225600.0 + 30) == pytest.approx(30)
    assert age_s("2026-01-01T00:00:00", now) is None  # no zone: not a time to trust
    assert age_s("a1b2", now) is None


def test_issue17_the_ledger_keeps_ids_across_restarts_privately(tmp_path: Path) -> None:
    path = tmp_path / "work" / "commands.json"
    ledger = Ledger(path, keep=3)
    for ident in ("a", "b", "c", "d"):
        ledger.take(ident, 1.0)
    again = Ledger(path, keep=3)
    assert "a" not in again and all(i in again for i in "bcd") and len(again) == 3
    assert os.stat(path).st_mode & 0o777 == 0o600
    path.write_text("{not json")
    assert len(Ledger(path)) == 0  # unreadable: starts empty, says so in the log


def test_issue17_a_ledger_others_can_read_is_not_believed(tmp_path: Path) -> None:
    path = tmp_path / "commands.json"
    Ledger(path).take("a", 1.0)
    path.chmod(0o644)
    assert "a" not in Ledger(path)


# -- the lock as HA is told it -------------------------------------------------------------
@pytest.mark.parametrize(
    ("steps", "door_open", "state"),
    [
        (["locked"], False, "LOCKED"),
        (["unlocked"], False, "UNLOCKED"),
        (["unlocked"], True, "OPEN"),  # bolt back and the door open
        (["locked"], True, "LOCKED"),  # the bolt's truth, whatever the door
        (["locked", "moving"], False, "UNLOCKING"),
        (["unlocked", "moving"], False, "LOCKING"),
        (["locked", "moving", "jammed"], False, "JAMMED"),
        (["unknown"], None, "None"),  # HA's payload_reset: unknown
        (["moving"], None, None),  # moving from nowhere known: nothing true to say
    ],
)
def test_l31_the_lock_state_is_the_bolts_truth(steps, door_open, state) -> None:
    view = LockView(door_open=door_open)
    for step in steps:
        view.set_bolt(step)
    assert view.lock_state() == state


def test_l31_problems_follow_the_bolt_battery_and_tamper() -> None:
    view = LockView()
    assert view.payloads() == {"lock": "None"}  # nothing else known yet: nothing said
    view.set_bolt("jammed")
    view.battery_percent, view.battery_low, view.tampered = 9.6, True, True
    assert view.payloads() == {
        "lock": "JAMMED", "jam": "ON", "battery": "10", "battery_low": "ON", "tamper": "ON"
    }  # fmt: skip
    view.set_bolt("locked")
    assert view.payloads()["jam"] == "OFF"


# -- discovery -----------------------------------------------------------------------------
def test_issue17_every_discovery_payload_passes_has_documented_schema() -> None:
    configs = discovery.configs(TOPICS, DEVICE)
    components = sorted(topic.split("/")[1] for topic in configs)
    assert components == ["binary_sensor"] * 4 + ["event"] * 2 + ["lock", "sensor"]
    for topic, config in configs.items():
        assert hakit.problems(topic, json.loads(json.dumps(config))) == [], topic
    devices = {json.dumps(c["device"], sort_keys=True) for c in configs.values()}
    assert len(devices) == 1  # one device: HA groups every entity under the lock
    device = next(iter(configs.values()))["device"]
    assert device["serial_number"] == SERIAL and device["sw_version"] == "0.1.0"
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)


def test_issue17_the_schema_check_can_fail() -> None:
    """The kit refuses what HA refuses, so a passing check means something."""
    lock_topic = TOPICS.config("lock", "lock")
    good = discovery.configs(TOPICS, DEVICE)[lock_topic]
    bad = [
        {k: v for k, v in good.items() if k != "command_topic"},
        {**good, "command_topic": "lockmesh/+/lock/set"},
        {**good, "code_format": "^(\\d{4,8}$"},
        {**good, "device": {"name": "no identifiers"}},
        {**good, "availability": [{"topic": "a"}]},
        {**good, "state_ok": "OK"},  # the HA docs' own example's typo
        {**good, "qos": 3},
    ]
    for config in bad:
        assert hakit.problems(lock_topic, config), config
    assert hakit.problems("homeassistant/lock/a.b/config", good)
    battery = discovery.configs(TOPICS, DEVICE)[TOPICS.config("sensor", "battery")]
    assert hakit.problems(
        TOPICS.config("sensor", "battery"), {**battery, "unit_of_measurement": "V"}
    )


def test_l18_has_command_template_renders_a_command_the_bridge_takes() -> None:
    """HA fills the template with what the user typed (code) and the button (value)."""
    lock = discovery.configs(TOPICS, DEVICE)[TOPICS.config("lock", "lock")]
    sent = hakit.render_command(lock["command_template"], lock["payload_unlock"], "4711")
    command = parse(sent.encode())
    assert (command.action, command.code) == ("unlock", "4711")
    assert command.id is not None and abs(age_s(command.id, time.time()) or 99) < 5
    no_code = hakit.render_command(lock["command_template"], lock["payload_lock"], None)
    assert parse(no_code.encode()).action == "lock"
    with pytest.raises(Refused):  # an unlock with nothing typed
        parse(hakit.render_command(lock["command_template"], "UNLOCK", None).encode())
    tricky = hakit.render_command(lock["command_template"], "UNLOCK", '4711", "id": "x')
    with pytest.raises(Refused) as refused:  # a code cannot break out of its string
        parse(tricky.encode())
    assert refused.value.reason == "bad-code"


def test_issue17_the_code_format_is_the_app_pins_anchored() -> None:
    import re

    assert re.match(discovery.CODE_FORMAT, "4711") and re.match(discovery.CODE_FORMAT, "12345678")
    for wrong in ("123", "123456789", "4711x", "x4711"):
        assert not re.match(discovery.CODE_FORMAT, wrong)


def test_issue17_topics_live_under_the_serial_and_refuse_what_cannot_be_a_topic() -> None:
    assert TOPICS.command == f"lockmesh/{SERIAL}/lock/set"
    assert (
        TOPICS.config("binary_sensor", "door")
        == f"homeassistant/binary_sensor/{SERIAL}_door/config"
    )
    for serial in ("", "LM/1", "LM+", "LM#", "LM 1"):
        with pytest.raises(BadTopic):
            Topics(serial)
    with pytest.raises(BadTopic):
        Topics(SERIAL, "home/+")


def test_issue17_the_view_is_unsure_until_it_knows_the_bolt_and_the_door() -> None:
    view = LockView()
    assert view.unsure()  # the bridge asks policy again until it is not
    view.set_bolt("locked")
    assert view.unsure()
    view.door_open = False
    assert not view.unsure()
    view.set_bolt("moving")
    assert not view.unsure()


# -- [mqtt] --------------------------------------------------------------------------------
def mqtt_config(**values: object) -> dict[str, object]:
    section = dict(configuration.DEFAULTS["mqtt"])
    section.update(values)
    return section


def test_issue17_mqtt_is_off_by_default() -> None:
    assert configuration.DEFAULTS["mqtt"]["url"] == ""


def test_issue17_the_broker_url_and_protocol_are_read_strictly(tmp_path: Path) -> None:
    s = settings(mqtt_config(url="mqtts://broker.lan", protocol="5"), tmp_path)
    assert (s.host, s.port, s.tls, s.protocol, s.url) == (
        "broker.lan", 8883, True, "5", "mqtts://broker.lan:8883"
    )  # fmt: skip
    assert settings(mqtt_config(url="mqtt://10.0.0.2:1884"), tmp_path).port == 1884
    for bad, says in [
        ({"url": "http://broker"}, "mqtt:// or mqtts://"),
        ({"url": "mqtt://user:pw@broker"}, "no credentials"),
        ({"url": "mqtt://broker/path"}, "host and port only"),
        ({"url": "mqtt://broker:99999"}, "mqtt.url"),
        ({"url": "mqtt://broker", "protocol": "3.1"}, "3.1.1 or 5"),
        ({"url": "mqtt://broker", "ca_file": "ca.pem"}, "mqtts:// only"),
        ({"url": "mqtt://broker", "reconnect_min_s": 0}, "reconnect_min_s"),
    ]:
        with pytest.raises(BadSettings, match=says):
            settings(mqtt_config(**bad), tmp_path)


def test_issue17_a_clusters_nodes_are_tried_in_turn(tmp_path: Path) -> None:
    s = settings(mqtt_config(url="mqtt://n1:1884,n2,10.0.0.3:1999"), tmp_path)
    assert s.brokers == (("n1", 1884), ("n2", 1883), ("10.0.0.3", 1999))
    assert s.url == "mqtt://n1:1884,n2:1883,10.0.0.3:1999"
    for bad in ("mqtt://n1,", "mqtt://n1,u:p@n2", "mqtt://n1,n2:0x"):
        with pytest.raises(BadSettings):
            settings(mqtt_config(url=bad), tmp_path)
    nodes = (("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3))  # nothing listens
    client = Rotating(nodes, CallbackAPIVersion.VERSION2, client_id="t")
    client.connect_async(*nodes[0])
    seen = []
    for _ in range(4):  # each connection is refused: each reconnection tries the next node
        try:
            client.reconnect()
        except OSError:
            pass
        seen.append(client.node)
    assert seen == ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:1"]


def test_issue17_the_password_is_read_from_a_private_file_only(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    files.write_private(secret, b"s3cret\n")
    s = settings(mqtt_config(url="mqtt://b", username="lock", password_file=secret.name), tmp_path)
    assert (s.username, s.password) == ("lock", "s3cret")
    secret.chmod(0o640)
    with pytest.raises(files.UnsafeFile):
        settings(mqtt_config(url="mqtt://b", password_file=secret.name), tmp_path)
    with pytest.raises(files.MissingFile):
        settings(mqtt_config(url="mqtt://b", password_file="nope"), tmp_path)
