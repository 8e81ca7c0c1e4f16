"""The board's alarms through the real processes: jam, tamper, door ajar, forced, battery."""

from __future__ import annotations

import json

import pytest

from proto.board import Bolt, Tamper
from proto.policy import Alarm, Decision
from proto.power import Battery
from tests.meshkit import ADMIN_CODE, LEAN, eventually, is_type, running

pytestmark = pytest.mark.slow


def events(lock, **filters: str) -> list[dict]:
    flags = [f"--{k}={v}" for k, v in filters.items()]
    return json.loads(lock.cli("events", "--json", *flags).stdout)["items"]


def alarms(lock) -> list[str]:
    return [e["reason"] for e in events(lock, kind="alarm")]


@pytest.fixture
def quick_lock(tmp_path):
    """A set-up lock whose door counts as ajar after 1 s and whose siren sounds 1 s."""
    config = "[alarms]\ndoor_ajar_s = 1.0\ntamper_siren_s = 1.0\n[motor]\ntravel_timeout_s = 1.0\n"
    with running(tmp_path / "data", config, without=LEAN) as lock:
        yield lock


def test_l27_a_jammed_bolt_stops_alarms_and_reports_jammed(quick_lock):
    lock = quick_lock
    watch = lock.watcher()
    lock.cli("sim", "jam")
    lock.press("touch", *ADMIN_CODE, "ok")
    assert watch.wait_for(is_type(Decision)).body.granted
    jammed = watch.wait_for(is_type(Bolt, state="jammed"))
    assert watch.wait_for(is_type(Alarm, code="lock-jammed")).cause == jammed.id
    status = lock.status()
    assert status["lock"]["bolt"] == "jammed"
    assert status["services"]["motor"]["detail"]["leds"] == "alarm"  # red, blinking fast
    assert "lock-jammed" in alarms(lock)
    lock.cli("sim", "free")
    lock.press("touch", *ADMIN_CODE, "ok")
    watch.wait_for(is_type(Bolt, state="unlocked"))


def test_l29_tamper_sounds_the_siren_and_raises_the_alarm(quick_lock):
    lock = quick_lock
    watch = lock.watcher()
    lock.cli("sim", "tamper", "remove")
    watch.wait_for(is_type(Tamper, removed=True))
    watch.wait_for(is_type(Alarm, code="front-escutcheon-removed"))
    motor = lock.status()
    assert motor["services"]["motor"]["verdict"] == "healthy"
    assert "front-escutcheon-removed" in alarms(lock)


def test_l29_door_ajar_and_forced_open(quick_lock):
    lock = quick_lock
    watch = lock.watcher()
    lock.cli("sim", "door", "open")  # the bolt is thrown: forced
    watch.wait_for(is_type(Alarm, code="door-forced-open"))
    watch.wait_for(is_type(Alarm, code="door-ajar"), timeout=5)
    lock.cli("sim", "door", "close")
    assert {"door-forced-open", "door-ajar"} <= set(alarms(lock))


def test_l28_low_battery_alarms_once_and_an_empty_one_cannot_drive(quick_lock):
    lock = quick_lock
    watch = lock.watcher()
    lock.cli("sim", "battery", "10")
    watch.wait_for(is_type(Alarm, code="low-battery"))
    lock.cli("sim", "battery", "1")
    watch.wait_for(lambda e: is_type(Battery)(e) and e.body.percent <= 3)  # the motor heard it
    watch.seen.clear()
    lock.press("touch", *ADMIN_CODE, "ok")
    assert watch.wait_for(is_type(Decision)).body.granted
    failed = events(lock, kind="actuation-failed")[0]
    assert failed["reason"] == "insufficient-battery"
    assert lock.status()["lock"]["bolt"] == "locked"
    lock.cli("sim", "battery", "1", "--usb-c")  # L-28: the emergency supply drives it
    watch.wait_for(is_type(Battery, external=True))  # heard before the code is typed
    watch.seen.clear()
    lock.press("touch", *ADMIN_CODE, "ok")
    watch.wait_for(is_type(Bolt, state="unlocked"))
    assert alarms(lock).count("low-battery") == 1


def test_l18_the_mechanical_key_is_logged_as_a_manual_unlock(quick_lock):
    lock = quick_lock
    watch = lock.watcher()
    lock.cli("sim", "key")
    watch.wait_for(lambda e: e.topic == "motor.motor.button" and e.body.button == "key")
    newest = events(lock, kind="unlock")[0]
    assert (newest["method"], newest["source"]) == ("mechanical-key", "manual")


def test_l24_l25_outside_ok_and_inside_button_both_lock(quick_lock):
    from proto.keypad import Lit

    lock = quick_lock
    watch = lock.watcher()
    lock.press("touch", *ADMIN_CODE, "ok")
    watch.wait_for(is_type(Bolt, state="unlocked"))
    lock.cli("sim", "door", "open")
    lock.cli("sim", "door", "close")
    watch.wait_for(is_type(Lit, keys=["ok"]))  # L-24: ✓ lights outside
    lock.press("ok")
    thrown = watch.wait_for(is_type(Bolt, state="locked"))
    assert eventually(lambda: events(lock, kind="lock"))[0]["source"] == "keypad"
    assert events(lock, kind="lock")[0]["wall"] >= thrown.wall  # on the motor's word
    watch.seen.clear()
    lock.press("touch", *ADMIN_CODE, "ok")
    watch.wait_for(is_type(Bolt, state="unlocked"))
    lock.cli("sim", "button", "lock")  # L-25: the inside button
    watch.wait_for(is_type(Bolt, state="locked"))
    assert eventually(lambda: len(events(lock, kind="lock")) == 2)
    assert events(lock, kind="lock")[0]["source"] == "button"
