"""The panel's battery warning, doorbell and pairing through the real processes.

L-28 (low battery at each wake), L-23 (doorbell, chime, snapshot; the snapshot by the face
service, issue 13), L-17 (pairing mode).
"""

from __future__ import annotations

import json

import pytest

from proto.keypad import Lit, Prompt
from proto.policy import Audit, Pairing
from proto.power import Battery
from services.policy.doorbell import NO_VIDEO
from tests.meshkit import ADMIN_CODE, LEAN, eventually, is_type, lean_but, running

WITHOUT = lean_but("face")  # the lock fixture's (conftest.py): the bell's snapshot is the face's

pytestmark = pytest.mark.slow


def prompt(watch, name: str, timeout: float = 10.0) -> Prompt:
    return watch.wait_for(is_type(Prompt, prompt=name), timeout).body


def said(watch) -> list[str]:
    return [e.body.prompt for e in watch.seen if isinstance(e.body, Prompt)]


def lit_keys(watch) -> list[str]:
    """The keys of the first Lit that lights anything since the watch was cleared."""
    return watch.wait_for(lambda e: isinstance(e.body, Lit) and bool(e.body.keys)).body.keys


def events(lock, kind: str) -> list[dict]:
    return json.loads(lock.cli("events", "--json", f"--kind={kind}").stdout)["items"]


def detail(lock, service: str) -> dict:
    return lock.status()["services"][service]["detail"]


def set_battery(lock, watch, percent: float) -> None:
    lock.cli("sim", "battery", str(percent))
    watch.wait_for(is_type(Battery, percent=float(percent)))
    low = percent < 25
    eventually(lambda: detail(lock, "keypad").get("battery_low") is low)


def test_l28_a_low_battery_is_said_at_each_wake_and_lights_the_battery_key(ready_lock):
    lock, watch = ready_lock, ready_lock.watcher()
    set_battery(lock, watch, 10)
    watch.seen.clear()
    lock.cli("sim", "touch")
    prompt(watch, "enter-code")
    assert said(watch)[:2] == ["battery-low", "enter-code"]
    assert "battery" in lit_keys(watch)
    lock.press("back")  # asleep; the next wake warns again
    watch.wait_for(is_type(Lit, keys=[]))
    watch.seen.clear()
    lock.cli("sim", "touch")
    prompt(watch, "enter-code")
    assert said(watch)[0] == "battery-low"
    assert "battery" in lit_keys(watch)

    lock.press("back")
    watch.wait_for(is_type(Lit, keys=[]))  # every frame of this wake read before the next
    set_battery(lock, watch, 80)
    watch.seen.clear()
    lock.cli("sim", "touch")
    prompt(watch, "enter-code")
    assert "battery-low" not in said(watch)
    assert "battery" not in lit_keys(watch)


def test_l23_issue_13_the_bell_chimes_logs_and_keeps_a_snapshot_while_video_is_allowed(
    ready_lock,
):
    lock, watch = ready_lock, ready_lock.watcher()
    lock.press("touch", "bell")
    prompt(watch, "doorbell")
    audit = watch.wait_for(lambda e: isinstance(e.body, Audit) and e.body.kind == "doorbell")
    [rung] = events(lock, "doorbell")
    epoch = detail(lock, "policy")["audit_head"]["epoch"]
    name = f"bell-{epoch}-{rung['seq']}"  # named after its row: the app finds one from the other
    assert audit.body.detail == rung["detail"] == f"snapshot={name}"
    assert (rung["source"], rung.get("reason")) == ("keypad", None)
    assert (lock.layout.snapshots / f"{name}.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert detail(lock, "motor")["chimes"] == 1

    set_battery(lock, watch, 15)  # below video_min_percent: no video, so no snapshot
    watch.seen.clear()
    lock.press("bell")  # the panel is still awake in entry mode
    prompt(watch, "doorbell")
    assert events(lock, "doorbell")[0]["detail"] == NO_VIDEO
    assert detail(lock, "motor")["chimes"] == 2


def test_l23_the_chime_never_cuts_the_tamper_siren(ready_lock):
    lock, watch = ready_lock, ready_lock.watcher()
    lock.cli("sim", "tamper", "remove")  # the siren sounds for tamper_siren_s (60 s)
    eventually(lambda: detail(lock, "motor")["siren"])
    lock.press("touch", "bell")
    prompt(watch, "doorbell")  # rung all the same: logged, just not chimed
    assert events(lock, "doorbell")[0]["reason"] == "chime: busy"
    motor = detail(lock, "motor")
    assert motor["siren"] and motor["chimes"] == 0


def system_info(lock, watch) -> dict[str, str]:
    """Serial number and verification code, as the menu announces them (L-16)."""
    lock.cli("sim", "button", "set")
    prompt(watch, "menu-verify")
    lock.press(*ADMIN_CODE, "ok")
    prompt(watch, "menu")
    lock.press("5")
    info = prompt(watch, "system-info").params
    lock.press("back")
    prompt(watch, "menu-exit")
    return info


def pair(lock, serial: str, code: str):
    """The code, then the new app password and PIN (issue 13), one a line on stdin."""
    typed = f"{code}\ncorrect horse battery\n4711\n"
    return lock.cli("pair", "--serial", serial, "--code-stdin", input=typed, check=False)


def test_l17_pairing_opens_on_a_long_set_ends_by_itself_and_is_claimed_only_while_open(
    tmp_path,
):
    config = "[pairing]\nwindow_s = 6.0\n[motor]\nlong_press_s = 0.5\n"
    with running(tmp_path / "data", config, without=LEAN) as lock:
        watch = lock.watcher()
        info = system_info(lock, watch)
        serial, code = info["serial"], info["code"]
        refused = pair(lock, serial, code)  # no window yet
        assert refused.returncode == 1 and "not-pairing" in refused.stdout

        lock.cli("sim", "button", "set-long")
        prompt(watch, "pairing")
        assert watch.wait_for(is_type(Lit, flashing=["0"])).body.keys == ["0"]
        assert events(lock, "pairing-opened")[0]["detail"].startswith("open until ")
        wrong = pair(lock, serial, "000000" if code != "000000" else "111111")
        assert wrong.returncode == 1 and "wrong-code" in wrong.stdout
        assert events(lock, "pair-refused")[0]["detail"] == "failure 1 of 5"
        assert pair(lock, serial, code).stdout.strip() == "ok: paired"
        prompt(watch, "paired")
        assert watch.wait_for(is_type(Pairing, open=False)).body.why == "claimed"
        assert events(lock, "paired")[0]["detail"] == f"serial {serial}"
        assert "not-pairing" in pair(lock, serial, code).stdout  # the claim closed it

        # the first long press may still be held: a finger lifts before it presses again
        eventually(lambda: lock.status()["services"]["motor"]["detail"]["set_button"] == "released")
        watch.seen.clear()
        lock.cli("sim", "button", "set-long")  # again, and this time nobody claims it
        prompt(watch, "pairing")
        prompt(watch, "pairing-ended", timeout=15)
        assert events(lock, "pairing-ended")[0]["reason"] == "ended"
        assert "not-pairing" in pair(lock, serial, code).stdout
