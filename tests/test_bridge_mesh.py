"""The MQTT bridge in a real mesh, against a real broker (issue 17, first part; L-18 remote
unlock, L-31 Home): Home Assistant's discovery checked against the schema HA documents,
state and events from the bolt's truth, lock and unlock by MQTT under policy's rules,
bad payloads refused and counted, a broker killed and restarted, the last will, and the
lock taken off MQTT. One mosquitto for the module (tests/brokerkit.py); each test its
own lock, so its own serial and topics on it."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from proto.power import Battery
from services.bridge import discovery
from tests import hakit
from tests.appkit import lock_identity, open_pairing
from tests.brokerkit import Broker, Listener, NatsGate, Seen, make_tls
from tests.meshkit import ADMIN_CODE, Lock, eventually, is_type, lean_but, running, shows_code

pytestmark = pytest.mark.slow

PASSWORD, PIN = "correct horse battery", "58203917"  # a PIN no log line holds by chance
ENTITIES = 8  # lock, door, battery, tamper, jam, battery low, doorbell, unlock


def config(broker: Broker, extra: str = "") -> str:
    return (
        f'[mqtt]\nurl = "{broker.url}"\nkeepalive_s = 5\nreconnect_min_s = 1\n'
        f"reconnect_max_s = 2\n{extra}"
        "[motor]\nlong_press_s = 0.5\n[gateway]\nport = 0\n"
    )


class Ha(Listener):
    """Home Assistant's view of one lock: its discovery topics and the lock's own."""

    def __init__(self, broker: Broker, serial: str, extra: tuple[str, ...] = (), **kw) -> None:
        self.serial = serial
        mine = ["homeassistant/+/+/config", "homeassistant/+/+/+/config", f"lockmesh/{serial}/#"]
        super().__init__(broker, [*mine, *extra], **kw)

    def configs(self, expected: int = ENTITIES) -> dict[str, dict]:
        """The lock's discovery configs, once all are there."""
        mine = f"/{self.serial}_"

        def found() -> dict[str, dict]:
            with self.changed:
                got = {s.topic: s for s in self.seen if mine in s.topic and s.payload}
            return {t: s.json() for t, s in got.items()} if len(got) >= expected else {}

        return eventually(found, timeout=30.0)

    def state(self, key: str, payload: str, timeout: float = 15.0) -> None:
        self.wait_latest(f"lockmesh/{self.serial}/{key}/state", payload, timeout)

    def command(self, value: str, code: str | None, **kw) -> str:
        """What HA's lock sends when the user presses lock or unlock (and types code):
        the discovery's command template rendered as HA does. Returns the command's id."""
        template = self.lock_config["command_template"]
        payload = hakit.render_command(template, value, code)
        self.send(self.lock_config["command_topic"], payload, **kw)
        return json.loads(payload)["id"]

    @property
    def lock_config(self) -> dict:
        return self.configs()[f"homeassistant/lock/{self.serial}_lock/config"]

    def result(self, ident: str | None, timeout: float = 15.0) -> dict:
        def mine(s: Seen) -> bool:
            return s.topic.endswith("/lock/result") and s.json()["id"] == ident

        return self.wait_for(mine, timeout).json()

    def results(self, ident: str) -> list[dict]:
        with self.changed:
            found = [s.json() for s in self.seen if s.topic.endswith("/lock/result")]
        return [r for r in found if r["id"] == ident]


NO_SERIAL = "waiting for policy to name the lock (its serial)"


def named(lock: Lock) -> None:
    """Policy told the bridge the lock's serial (in its status, as it tells the gateway)."""
    # asked again every few seconds until policy answers (a loaded machine starts it late)
    eventually(lambda: bridge(lock)["state"] != "waiting for policy to name the lock", 30)
    if bridge(lock)["state"] == NO_SERIAL:
        pytest.fail(
            "policy's status names no serial, so the bridge cannot name its topics: "
            "services/policy/service.py status_detail needs 'serial' (the gateway reads it too)"
        )


def ha_for(broker: Broker, lock: Lock) -> Ha:
    named(lock)
    ha = Ha(broker, lock_identity(lock)[0])
    ha.wait_latest(f"lockmesh/{ha.serial}/availability", "online", timeout=30.0)
    return ha


def claim(lock: Lock, remote_unlock: bool) -> None:
    """The owner's app claims the lock with its PIN (L-17), remote unlock on or off."""
    serial, code = lock_identity(lock)
    open_pairing(lock)
    lock.cli("pair", "--serial", serial, "--code-stdin", input=f"{code}\n{PASSWORD}\n{PIN}\n")
    lock.cli("settings", "remote_unlock", "on" if remote_unlock else "off")


def bridge(lock: Lock) -> dict:
    return lock.status()["services"]["bridge"]


def events(lock: Lock, kind: str) -> list[dict]:
    return json.loads(lock.cli("events", "--kind", kind, "--json").stdout)["items"]


# -- discovery and state ---------------------------------------------------------------------------
def test_issue17_ha_discovers_one_device_and_follows_the_lock(tmp_path: Path, broker: Broker):
    started = time.monotonic()
    with running(tmp_path / "data", config(broker), without=lean_but("bridge")) as lock:
        ha = ha_for(broker, lock)
        configs = ha.configs()
        assert len(configs) == ENTITIES
        for topic, payload in configs.items():
            assert hakit.problems(topic, payload) == [], topic
        retained = {s.topic for s in ha.seen if s.retain and s.topic in configs}
        assert retained == set(configs)  # HA finds them whenever it subscribes
        devices = {json.dumps(c["device"], sort_keys=True) for c in configs.values()}
        assert len(devices) == 1
        device = next(iter(configs.values()))["device"]
        assert device["serial_number"] == ha.serial and device["sw_version"]
        assert device["model"] == "lockmesh (sim board)"
        lock_config = ha.lock_config
        assert lock_config["code_format"] == discovery.CODE_FORMAT
        assert lock_config["availability_topic"] == f"lockmesh/{ha.serial}/availability"
        ha.state("lock", "LOCKED")  # a fresh simulated lock: the bolt thrown, door closed
        ha.state("door", "OFF")
        ha.clear()
        ha.send("homeassistant/status", "online")  # HA's birth: it (re)started
        assert ha.configs() == configs  # told again, as HA's docs ask

        watch = lock.watcher()
        lock.press("touch", *ADMIN_CODE, "ok")  # L-18 at the panel: the bolt's truth follows
        ha.state("lock", "UNLOCKED")
        unlock = ha.wait_for(lambda s: s.topic.endswith("/unlock/event"))
        assert not unlock.retain and unlock.json()["event_type"] == "unlock"
        assert (unlock.json()["person"], unlock.json()["method"]) == ("001", "pin")
        lock.cli("sim", "door", "open")
        ha.state("door", "ON")
        ha.state("lock", "OPEN")  # bolt back, door open
        lock.cli("sim", "door", "close")
        ha.state("lock", "UNLOCKED")

        lock.cli("sim", "battery", "10")  # L-28
        ha.state("battery", "10")
        ha.state("battery_low", "ON")
        lock.cli("sim", "tamper", "remove")  # L-29
        ha.state("tamper", "ON")
        lock.cli("sim", "tamper", "replace")
        ha.state("tamper", "OFF")
        lock.press("touch", "bell")  # L-23
        ring = ha.wait_for(lambda s: s.topic.endswith("/doorbell/event"))
        assert not ring.retain and ring.json()["event_type"] == "ring"

        lock.cli("sim", "jam")  # L-27: the next drive does not reach its end
        lock.cli("sim", "button", "lock")
        watch.wait_for(lambda e: getattr(e.body, "state", None) == "jammed", timeout=15)
        ha.state("lock", "JAMMED")
        ha.state("jam", "ON")
        watch.close()
        assert bridge(lock)["verdict"] == "healthy"
    print(f"discovery and state: {time.monotonic() - started:.1f} s")


# -- lock and unlock -------------------------------------------------------------------------------
def test_l18_unlock_by_mqtt_follows_the_remote_unlock_rules_as_for_the_app(
    tmp_path: Path, broker: Broker
):
    with running(tmp_path / "data", config(broker), without=lean_but("bridge")) as lock:
        ha = ha_for(broker, lock)
        ha.state("lock", "LOCKED")
        claim(lock, remote_unlock=False)
        off = ha.result(ha.command("UNLOCK", PIN))
        assert (off["ok"], off["reason"]) == (False, "remote-unlock-off")
        lock.cli("settings", "remote_unlock", "on")
        wrong = ha.result(ha.command("UNLOCK", "0000" if PIN != "0000" else "1111"))
        assert (wrong["ok"], wrong["reason"]) == (False, "wrong-pin")
        assert lock.status()["lock"]["bolt"] == "locked"

        right = ha.result(ha.command("UNLOCK", PIN))
        assert (right["ok"], right["action"]) == (True, "unlock")
        ha.state("lock", "UNLOCKED")
        unlock = ha.wait_for(lambda s: s.topic.endswith("/unlock/event")).json()
        assert (unlock["person"], unlock["method"]) == ("owner", "remote")
        assert ha.result(ha.command("LOCK", PIN))["ok"] is True
        ha.state("lock", "LOCKED")

        granted = [e for e in events(lock, "granted") if e["method"] == "remote"]
        assert [e["source"] for e in granted] == ["bridge"]  # the log names the sender
        refused = {e["reason"] for e in events(lock, "refused") if e["source"] == "bridge"}
        assert refused == {"remote-unlock-off", "wrong-pin"}
        assert bridge(lock)["detail"]["commands"] == {
            "done": 2,
            "refused:remote-unlock-off": 1,
            "refused:wrong-pin": 1,
        }


BAD = [
    (b"OPEN", "not-json"),
    (b"\xff\xfe\x00", "not-utf8"),
    (b"x" * 5000, "too-long"),
    (b'{"action": "UNLOCK", "code": "4711"}', "no-id"),
    (b'{"action": "UNLOCK", "code": "47", "id": "a"}', "bad-code"),
    (b'{"action": "UNLOCK", "code": "4711", "id": "b", "as": "root"}', "unknown-field"),
    (b'{"action": "OPEN", "code": "4711", "id": "c"}', "unknown-action"),
    (b"[]", "not-an-object"),
    (b"UNLOCK", "no-code"),
]


def test_issue17_bad_payloads_on_the_command_topic_are_refused_logged_and_counted(
    tmp_path: Path, broker: Broker
):
    with running(tmp_path / "data", config(broker), without=lean_but("bridge")) as lock:
        claim(lock, remote_unlock=True)
        ha = ha_for(broker, lock)
        pid = lock.pid("bridge")
        topic = ha.lock_config["command_topic"]
        for payload, _ in BAD:
            ha.send(topic, payload)
        expected = [reason for _, reason in BAD]

        def refusals() -> list[str]:
            with ha.changed:
                found = [s.json() for s in ha.seen if s.topic.endswith("/lock/result")]
            return [r["reason"] for r in found if r["ok"] is False]

        eventually(lambda: sorted(refusals()) == sorted(expected), timeout=15)
        assert lock.status()["lock"]["bolt"] == "locked"  # nothing opened the door
        counted = bridge(lock)["detail"]["commands"]
        assert counted == {f"refused:{r}": expected.count(r) for r in expected}
        assert lock.pid("bridge") == pid and bridge(lock)["verdict"] == "healthy"
        log = (lock.layout.logs / "bridge.log").read_text()
        assert log.count("command refused on") == len(expected)
        assert not shows_code(log, PIN)  # a payload may hold the PIN: never logged

        # An unlock sent long ago (queued through an outage, or recorded and replayed) is
        # not done: its id is HA's clock, 120 s is the most it may be off
        old = {"action": "UNLOCK", "code": PIN, "id": "2026-01-01T00:00:00+00:00"}
        ha.send(topic, json.dumps(old))
        assert ha.result(old["id"])["reason"] == "stale"
        assert bridge(lock)["detail"]["commands"]["refused:stale"] == 1
        assert lock.status()["lock"]["bolt"] == "locked"

        # A retained command: MQTT 3.1.1 delivers it live like any other (done once), but
        # every new subscription replays it, flagged retained: refused, never done again.
        ha.send(topic, json.dumps({"action": "LOCK", "code": PIN, "id": "r1"}), retain=True)
        assert ha.result("r1")["ok"] is True
        os.kill(pid, signal.SIGKILL)

        def replays() -> list[str]:
            return [r["reason"] for r in ha.results("r1")[1:]]

        eventually(lambda: "retained" in replays(), timeout=30)
        # a kill before the broker had the first delivery's PUBACK gets that copy
        # redelivered too (not flagged retained): the ledger answers it, not done again
        assert set(replays()) <= {"retained", "duplicate"}, replays()
        counts = bridge(lock)["detail"]["commands"]  # a new process's
        assert counts["refused:retained"] == 1 and set(counts) <= {"refused:retained", "duplicate"}
        ha.send(topic, b"", retain=True)  # the retained command taken away


# -- the broker gone and back ----------------------------------------------------------------------
def test_issue17_a_command_is_done_once_through_redelivery_and_a_broker_restart(
    tmp_path: Path, broker: Broker
):
    with running(tmp_path / "data", config(broker), without=lean_but("bridge")) as lock:
        claim(lock, remote_unlock=True)
        ha = ha_for(broker, lock)
        watch = lock.watcher()
        payload = hakit.render_command(ha.lock_config["command_template"], "UNLOCK", PIN)
        ident = json.loads(payload)["id"]
        ha.send(ha.lock_config["command_topic"], payload)
        ha.send(ha.lock_config["command_topic"], payload)  # delivered twice: QoS 1 may
        eventually(lambda: len(ha.results(ident)) == 2, timeout=15)
        assert sorted(r["reason"] for r in ha.results(ident)) == ["", "duplicate"]
        ha.state("lock", "UNLOCKED")
        assert ha.result(ha.command("LOCK", PIN))["ok"] is True
        ha.state("lock", "LOCKED")

        broker.kill(signal.SIGKILL)
        eventually(lambda: bridge(lock)["detail"]["connected"] is False, timeout=15)
        lock.cli("sim", "battery", "42")  # said while the broker is away
        watch.wait_for(is_type(Battery, percent=42.0))
        sent = ha.command("UNLOCK", PIN)  # HA's client keeps it until the broker is back
        broker.start()
        assert ha.result(sent, timeout=30)["ok"] is True
        ha.state("lock", "UNLOCKED")
        fresh = Ha(broker, ha.serial)  # what HA finds when it subscribes after the restart
        fresh.state("battery", "42")  # republished by the lock on its reconnection
        fresh.state("lock", "UNLOCKED")
        assert len(ha.results(sent)) == 1 and len(ha.results(ident)) == 2
        # policy's log: the first unlock and the one sent in the outage, each once
        assert len([e for e in events(lock, "granted") if e["source"] == "bridge"]) == 2
        assert bridge(lock)["detail"]["commands"]["duplicate"] == 1
        watch.close()
        fresh.close()


def test_issue17_availability_goes_offline_by_the_last_will_when_the_bridge_is_killed(
    tmp_path: Path, broker: Broker
):
    with running(tmp_path / "data", config(broker), without=lean_but("bridge")) as lock:
        ha = ha_for(broker, lock)
        availability = f"lockmesh/{ha.serial}/availability"
        ha.clear()
        killed = lock.pid("bridge")
        signal_at = time.monotonic()
        os.kill(killed, signal.SIGKILL)
        ha.wait_for(lambda s: s.topic == availability and s.text == "offline")
        took = time.monotonic() - signal_at
        ha.wait_for(lambda s: s.topic == availability and s.text == "online", timeout=30)
        assert lock.pid("bridge") != killed  # supervisord's new bridge said online again
        print(f"offline by the will {took:.2f} s after SIGKILL")
        ha.clear()
        lock.down()  # a clean stop: the will is not sent, the bridge says offline itself
        ha.wait_for(lambda s: s.topic == availability and s.text == "offline")
        ha.close()


# -- off MQTT --------------------------------------------------------------------------------------
def test_issue17_removing_the_lock_from_mqtt_clears_its_discovery_topics(
    tmp_path: Path, broker: Broker
):
    with running(tmp_path / "data", config(broker), without=lean_but("bridge")) as lock:
        ha = ha_for(broker, lock)
        configs = ha.configs()
        ha.state("lock", "LOCKED")
        assert lock.cli("mqtt", "remove").stdout.strip() == "ok"
        for topic in configs:
            ha.wait_latest(topic, "")  # HA removes each entity
        assert bridge(lock)["state"] == "off: removed from MQTT by the owner"
        later = Ha(broker, ha.serial)  # subscribes now: nothing of this lock is retained
        later.settle(f"lockmesh/{ha.serial}/probe")
        kept = [s.topic for s in later.seen if ha.serial in s.topic and s.payload]
        assert kept == [f"lockmesh/{ha.serial}/probe"] * len(kept)  # only the probes

        assert lock.cli("mqtt", "add").stdout.strip() == "ok"
        later.configs()  # announced again, by the same process
        later.state("lock", "LOCKED")
        assert lock.cli("mqtt", "remove").stdout.strip() == "ok"
        os.kill(lock.pid("bridge"), signal.SIGKILL)  # removed stays removed across restarts
        eventually(lambda: bridge(lock)["state"] == "off: removed from MQTT by the owner")
        assert lock.cli("mqtt", "remove", check=False).returncode == 1  # not on a broker
        assert lock.cli("mqtt", "add").stdout.strip() == "ok"
        last = Ha(broker, ha.serial)
        last.configs()
        last.state("lock", "LOCKED")
        for listener in (later, last, ha):
            listener.close()


# -- MQTT 5, TLS, a password -----------------------------------------------------------------------
USERS = {"lock": "lock-secret-9", "ha": "ha-secret-3"}


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    folder = tmp_path_factory.mktemp("mosquitto-tls")
    broker = Broker(folder, tls=make_tls(folder), users=USERS)
    broker.start()
    yield broker
    broker.kill(signal.SIGTERM)


def test_issue17_mqtt5_over_tls_with_a_username_and_password_file(
    tmp_path: Path, secure_broker: Broker
):
    broker = secure_broker
    assert broker.tls is not None
    data = tmp_path / "data"
    data.mkdir()
    secret = data / "mqtt-password"
    secret.write_text("not-the-password\n")
    secret.chmod(0o600)
    extra = (
        f'protocol = "5"\nusername = "lock"\npassword_file = "{secret.name}"\n'
        f'ca_file = "{broker.tls.ca}"\n'
    )
    with running(data, config(broker, extra), without=lean_but("bridge")) as lock:
        assert broker.url.startswith("mqtts://")
        named(lock)
        eventually(lambda: "refused us" in bridge(lock)["state"], timeout=20)
        serial = lock_identity(lock)[0]
        ha = Ha(broker, serial, ("ha/responses",), protocol=mqtt.MQTTv5,
                username="ha", password=USERS["ha"])  # fmt: skip
        ha.settle(f"lockmesh/{serial}/probe")
        assert {s.topic for s in ha.seen if serial in s.topic and s.payload} == {
            f"lockmesh/{serial}/probe"
        }  # a wrong password: nothing said

        secret.write_text(USERS["lock"] + "\n")
        os.kill(lock.pid("bridge"), signal.SIGKILL)  # the password is read at the start
        ha.wait_latest(f"lockmesh/{serial}/availability", "online", timeout=30)
        assert bridge(lock)["state"] == f"connected to {broker.url}"
        for topic, payload in ha.configs().items():
            assert hakit.problems(topic, payload) == [], topic
        ha.state("lock", "LOCKED")

        # MQTT 5 request and response: the correlation datum is the command's id, and
        # comes back with the answer on the response topic
        ha.send(f"lockmesh/{serial}/lock/set", b'{"action": "LOCK"}', correlation=b"\x07\x2a",
                response_topic="ha/responses")  # fmt: skip
        response = ha.wait_for(lambda s: s.topic == "ha/responses")
        assert response.properties.CorrelationData == b"\x07\x2a"
        assert (response.json()["id"], response.json()["ok"]) == ("072a", True)
        # MQTT 5 keeps the retain flag live: a retained command is refused at once
        retained = json.dumps({"action": "UNLOCK", "code": PIN, "id": "kept"})
        ha.send(f"lockmesh/{serial}/lock/set", retained, retain=True)
        assert ha.result("kept")["reason"] == "retained"
        ha.send(f"lockmesh/{serial}/lock/set", b"", retain=True)
        assert lock.status()["lock"]["bolt"] == "locked"
        ha.close()


def test_issue17_a_subscription_the_broker_refuses_is_said_and_asked_again_until_it_is_allowed(
    tmp_path: Path,
):
    """A broker may accept the connection and refuse a subscription in its SUBACK (CI's
    stop 22: a NATS cluster whose JetStream lost its leader with a node). The bridge then
    says so and connects again, rather than stay connected and deaf to commands."""
    gate = NatsGate(tmp_path / "nats", {"lock": ["lockmesh.*.lock.set"]}, USERS["lock"])
    gate.start()
    try:
        data = tmp_path / "data"
        data.mkdir()
        secret = data / "mqtt-password"
        secret.write_text(USERS["lock"] + "\n")
        secret.chmod(0o600)
        extra = f'username = "lock"\npassword_file = "{secret.name}"\n'
        with running(data, config(gate, extra), without=lean_but("bridge")) as lock:  # type: ignore[arg-type]
            named(lock)
            serial = lock_identity(lock)[0]
            refused = f"the broker refused us: the subscription to lockmesh/{serial}/lock/set"
            eventually(lambda: refused in bridge(lock)["state"], timeout=30)
            claim(lock, remote_unlock=False)

            gate.deny({})
            ha = ha_for(gate, lock)  # type: ignore[arg-type]
            eventually(lambda: bridge(lock)["detail"]["connected"], timeout=30)
            assert ha.result(ha.command("LOCK", PIN), timeout=30)["ok"] is True
            ha.state("lock", "LOCKED")
    finally:
        gate.stop()
