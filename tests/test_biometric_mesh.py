"""Fingerprint and palm through the real processes: enrol, unlock, refuse, break, recover.

The modules are the simulators on pseudo-terminals inside the biometric process, spoken
to by the real drivers; fingers and palms are presented with `lockmesh sim`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from proto.biometric import BioEnrol, EnrolDone, EnrolOpen, EnrolStep
from proto.board import Bolt
from proto.bus import Bus
from proto.policy import Alarm, Decision
from tests.meshkit import Lock, eventually, is_type, lean_but, running

pytestmark = pytest.mark.slow

TOUCH_S = 0.6  # how long a simulated finger or palm stays


@pytest.fixture
def bio_lock(tmp_path):
    with running(
        tmp_path / "data", f"[biometric]\nsim_touch_s = {TOUCH_S}\n", without=lean_but("biometric")
    ) as lock:
        yield lock  # 001 is the administrator


def start_enrol(lock: Lock, modality: str, number: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "enrol", modality, number, "--timeout", "30"]
        + ["--data", str(lock.layout.data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def people(lock: Lock) -> dict[str, dict]:
    items = json.loads(lock.cli("people", "--json").stdout)["items"]
    return {p["number"]: p for p in items}


class Steps:
    """The enrolment's steps in the order they were published, each taken once."""

    def __init__(self, watch) -> None:
        self.watch, self.taken = watch, set()

    def next(self, timeout: float = 10) -> EnrolStep:
        env = self.watch.wait_for(
            lambda e: isinstance(e.body, EnrolStep) and e.id not in self.taken, timeout
        )
        self.taken.add(env.id)
        return env.body

    def expect(self, step: str, **params: str) -> None:
        got = self.next()
        assert (got.step, got.params) == (step, params), got


def enrol_finger(lock: Lock, watch, finger: str, number: str = "001") -> EnrolDone:
    watch.seen.clear()
    steps = Steps(watch)
    proc = start_enrol(lock, "finger", number)
    steps.expect("place-finger", count="1")
    lock.cli("sim", "finger", finger)
    steps.expect("lift-finger")
    steps.expect("place-finger", count="2")
    lock.cli("sim", "finger", finger)
    done = watch.wait_for(is_type(EnrolDone), timeout=15).body
    proc.communicate(timeout=10)
    lock.cli("sim", "finger", "")  # the person takes the finger away: the sensor sees it gone
    watch.seen.clear()
    return done


def present(lock: Lock, watch, modality: str, who: str, *options: str) -> Decision:
    lock.cli("sim", modality, "")  # whatever was there is taken away first, as by a person
    watch.seen.clear()
    lock.cli("sim", modality, who, *options)
    decision = watch.wait_for(is_type(Decision), timeout=10).body
    assert decision.method == {"finger": "fingerprint", "palm": "palm-vein"}[modality]
    return decision


def test_l15_l18_l5_a_finger_enrolled_by_the_owner_unlocks_a_stranger_and_duplicate_do_not(
    bio_lock,
):
    lock, watch = bio_lock, bio_lock.watcher()
    done = enrol_finger(lock, watch, "alice-thumb")
    assert done.ok and done.person == "001", done
    assert people(lock)["001"]["fingerprints"] == 1

    decision = present(lock, watch, "finger", "alice-thumb")
    assert decision.granted and decision.person == "001"
    watch.wait_for(is_type(Bolt, state="unlocked"))

    mallory = present(lock, watch, "finger", "mallory-thumb")
    assert (mallory.granted, mallory.reason) == (False, "invalid-credential")

    again = enrol_finger(lock, watch, "alice-thumb")  # L-5: already added, nothing stored
    assert (again.ok, again.reason) == (False, "already-added")
    assert people(lock)["001"]["fingerprints"] == 1


def test_l15_a_partial_placement_is_asked_again(bio_lock):
    lock, watch = bio_lock, bio_lock.watcher()
    steps = Steps(watch)
    proc = start_enrol(lock, "finger", "001")
    steps.expect("place-finger", count="1")
    lock.cli("sim", "finger", "bob-index", "--quality", "partial")
    steps.expect("finger-partial", count="1")
    steps.expect("place-finger", count="1")  # asked again once it was lifted
    lock.cli("sim", "finger", "bob-index")
    steps.expect("lift-finger")
    steps.expect("place-finger", count="2")
    lock.cli("sim", "finger", "bob-index")
    done = watch.wait_for(is_type(EnrolDone), timeout=15).body
    out, _ = proc.communicate(timeout=10)
    assert done.ok, done
    assert out.splitlines()[:3] == ["place-finger count=1", "finger-partial count=1",
                                    "place-finger count=1"]  # fmt: skip


def test_l15_l18_a_palm_is_guided_to_the_right_distance_then_unlocks(bio_lock):
    lock, watch = bio_lock, bio_lock.watcher()
    proc = start_enrol(lock, "palm", "001")
    watch.wait_for(is_type(EnrolStep, step="palm-ready"))
    lock.cli("sim", "palm", "alice-right", "--distance", "45")  # an adult's is ~20 cm
    watch.wait_for(is_type(EnrolStep, step="palm-too-far"))
    lock.cli("sim", "palm", "alice-right", "--distance", "20")
    done = watch.wait_for(is_type(EnrolDone), timeout=15).body
    proc.communicate(timeout=10)
    assert done.ok, done
    assert people(lock)["001"]["palms"] == 1

    lock.cli("sim", "palm", "")  # taken away; the next showing is a new attempt
    decision = present(lock, watch, "palm", "alice-right")
    assert decision.granted and decision.person == "001"
    mallory = present(lock, watch, "palm", "mallory-left")
    assert (mallory.granted, mallory.reason) == (False, "invalid-credential")
    lock.cli("sim", "palm", "")  # mallory leaves before the next enrolment starts

    proc = start_enrol(lock, "palm", "001")
    watch.wait_for(is_type(EnrolStep, step="palm-ready"))
    lock.cli("sim", "palm", "alice-right")
    again = watch.wait_for(is_type(EnrolDone), timeout=15).body
    proc.communicate(timeout=10)
    assert (again.ok, again.reason) == (False, "already-added")
    assert people(lock)["001"]["palms"] == 1


def test_l20_five_strangers_fingers_lock_out_even_the_enrolled_one(bio_lock):
    lock, watch = bio_lock, bio_lock.watcher()
    assert enrol_finger(lock, watch, "alice-thumb").ok
    for i in range(5):
        stranger = present(lock, watch, "finger", f"stranger-{i}")
        assert (stranger.granted, stranger.reason) == (False, "invalid-credential")
        lock.cli("sim", "finger", "")
    assert watch.wait_for(is_type(Alarm, code="wrong-code-entry-limit"))
    decision = present(lock, watch, "finger", "alice-thumb")
    assert (decision.granted, decision.reason) == (False, "lockout")


def test_l6_l10_deleting_a_person_clears_the_module_and_a_new_module_is_reloaded(bio_lock):
    lock, watch = bio_lock, bio_lock.watcher()
    lock.cli("people", "add", "bob", "--code-stdin", input="135792\n")
    assert enrol_finger(lock, watch, "bob-thumb", "002").ok
    assert enrol_finger(lock, watch, "alice-thumb", "001").ok
    flash = lock.layout.data / "sim-finger-flash.json"
    assert len(json.loads(flash.read_text())) == 2

    # A replaced module: empty flash, the service restarted; policy's sealed copies reload it
    killed = lock.pid("biometric")
    os.kill(killed, signal.SIGKILL)
    flash.unlink()
    lock.wait_restarted("biometric", killed)
    lock.wait_healthy(15)
    decision = present(lock, watch, "finger", "alice-thumb")
    assert decision.granted and decision.person == "001"
    assert len(json.loads(flash.read_text())) == 2

    lock.cli("people", "delete", "002")
    eventually(lambda: len(json.loads(flash.read_text())) == 1)
    lock.cli("sim", "finger", "")
    decision = present(lock, watch, "finger", "bob-thumb")
    assert (decision.granted, decision.reason) == (False, "invalid-credential")  # no slot matches
    assert len(json.loads(flash.read_text())) == 1


def test_faulty_module_degrades_the_service_refuses_enrolment_and_recovers(bio_lock):
    lock, watch = bio_lock, bio_lock.watcher()
    assert enrol_finger(lock, watch, "alice-thumb").ok
    lock.cli("sim", "module", "finger", "unplug")
    lock.cli("sim", "module", "palm", "garbage")
    eventually(lambda: "finger faulty" in service_state(lock))
    refused = lock.cli("enrol", "finger", "001", check=False)
    assert refused.returncode == 1 and "module-fault" in refused.stderr

    lock.cli("sim", "module", "finger", "replug")
    lock.cli("sim", "module", "palm", "clear")
    eventually(lambda: service_state(lock) == "ready")
    assert present(lock, watch, "finger", "alice-thumb").granted
    status = lock.status()["services"]["biometric"]
    assert status["restarts"] == 0  # it never crashed
    assert status["detail"]["finger"]["faults"] >= 1
    assert status["detail"]["finger"]["reconnects"] >= 1


def service_state(lock: Lock) -> str:
    return lock.status()["services"]["biometric"]["state"]


def test_l13_the_panel_cannot_enrol_without_an_administrators_session(bio_lock):
    lock = bio_lock
    with Bus(lock.layout, "keypad") as bus:  # a compromised keypad holds a real mesh key
        asked = bus.client("policy").request(
            EnrolOpen(modality="finger", role="admin", token="forged"), timeout=5
        )
        direct = bus.client("biometric").request(  # only policy starts a capture (issue 11)
            BioEnrol(ticket="forged", modality="finger"), timeout=5
        )
    assert (asked.body.ok, asked.body.reason) == (False, "no-session")
    assert (direct.body.ok, direct.body.reason) == (False, "unauthorized")
    assert list(people(lock)) == ["001"] and people(lock)["001"]["fingerprints"] == 0


def test_l13_set_then_an_administrators_finger_opens_the_menu_a_users_does_not(bio_lock):
    from proto.keypad import Prompt

    lock, watch = bio_lock, bio_lock.watcher()
    assert enrol_finger(lock, watch, "alice-thumb", "001").ok  # the administrator
    lock.cli("people", "add", "bob", "--code-stdin", input="135792\n")
    assert enrol_finger(lock, watch, "bob-thumb", "002").ok  # a user
    lock.cli("sim", "button", "set")
    watch.wait_for(is_type(Prompt, prompt="menu-verify"))
    lock.cli("sim", "finger", "bob-thumb")
    watch.wait_for(is_type(Prompt, prompt="verify-failed"))
    assert not any(is_type(Bolt, state="unlocked")(e) for e in watch.seen)  # nor unlocks
    lock.cli("sim", "finger", "")  # the simulated sensor sees it gone before the next
    watch.seen.clear()
    lock.cli("sim", "button", "set")
    watch.wait_for(is_type(Prompt, prompt="menu-verify"))
    lock.cli("sim", "finger", "alice-thumb")
    watch.wait_for(is_type(Prompt, prompt="menu"))
    lock.press("5")  # the session works: system information
    watch.wait_for(is_type(Prompt, prompt="system-info"))
    assert not any(is_type(Bolt, state="unlocked")(e) for e in watch.seen)
    log = json.loads(lock.cli("events", "--json", "--limit", "3").stdout)["items"]
    opened = [e for e in log if e["kind"] == "menu-opened"]
    assert opened and opened[0]["method"] == "fingerprint" and opened[0]["person"] == "001"
