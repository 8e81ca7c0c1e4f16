"""Bad input, forged commands, crashes and hangs: the lock keeps running and stays shut."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import msgpack
import pytest
import zmq

from ops import mesh
from proto.board import Actuate
from proto.bus import Bus
from proto.control import Done, StatusRequest
from proto.layout import SERVICES
from proto.owner import PeopleRequest
from proto.process import ProcessState
from proto.wire import BOOT, PROTOCOL_VERSION, Stamper, decode, encode
from tests.meshkit import ADMIN_CODE, LEAN, eventually, is_type, made_without

pytestmark = pytest.mark.slow
WITHOUT = LEAN  # the lock fixture's (conftest.py), but for the tests of every service


def drops(lock, service: str) -> dict[str, int]:
    return lock.status()["services"][service]["drops"]


def motor_log(lock) -> str:
    return (lock.layout.logs / "motor.log").read_text()


def test_forged_actuate_from_another_identity_is_refused_and_logged(lock):
    # A compromised keypad holds a real key of the mesh, just not policy's.
    with Bus(lock.layout, "keypad") as bus:
        answer = bus.client("motor").request(Actuate(action="unlock", direction="right"), timeout=3)
    assert isinstance(answer.body, Done) and not answer.body.ok
    assert answer.body.reason == "unauthorized"
    assert drops(lock, "motor").get("unauthorized") == 1
    assert "unauthorized: motor.actuate from keypad" in motor_log(lock)
    assert lock.status()["lock"]["bolt"] == "locked"


def test_forged_sender_name_is_dropped_without_answer(lock):
    with Bus(lock.layout, "keypad") as bus:
        bus.commands = Stamper("policy", channel="c")  # claims to be policy in the envelope
        answer = bus.client("motor").request(Actuate(action="unlock", direction="right"), timeout=1)
    assert answer is None  # no answer is a refusal, never a yes
    assert drops(lock, "motor").get("forged") == 1
    assert lock.status()["lock"]["bolt"] == "locked"


def test_unknown_curve_key_cannot_even_connect(lock):
    public, secret = zmq.curve_keypair()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.curve_serverkey = (lock.layout.keys / "motor.key").read_bytes().strip()
    sock.connect(lock.layout.cmd("motor"))
    sock.send_multipart([b"motor.x.actuate", b"\x80"])
    assert sock.poll(1000) == 0
    sock.close()
    assert lock.status()["lock"]["bolt"] == "locked"


def _envelope(**overrides) -> dict:
    env = {
        "v": PROTOCOL_VERSION,
        "type": "ctl.status",
        "sender": "cli",
        "session": f"{BOOT}.1.test",
        "seq": 1,
        "wall": 1.0,
        "mono": 1.0,
        "expires": None,
        "id": "cli-test-1",
        "cause": None,
        "body": {},
    }
    env.update(overrides)
    return env


BAD_INPUTS = {
    "garbage": [[b"\xff\x00 not a message"], [b"ctl.cli.status", b"\xc1\xc1\xc1"]],
    "envelope": [
        [b"ctl.cli.status", msgpack.packb([1, 2, 3])],
        [b"ctl.cli.status", msgpack.packb(_envelope(seq="one"))],
    ],
    "version": [[b"ctl.cli.status", msgpack.packb(_envelope(v=99))]],
    "unknown-type": [[b"nope.cli.nothing", msgpack.packb(_envelope(type="nope.nothing"))]],
    "bad-field": [
        [
            b"keypad.cli.sim_keys",
            msgpack.packb(_envelope(type="keypad.sim_keys", body={"keys": 5})),
        ],
        [b"motor.cli.sim", msgpack.packb(_envelope(type="motor.sim", body={"action": "explode"}))],
    ],
    "oversized": [[b"ctl.cli.status", msgpack.packb(_envelope(body={"x": "a" * 70000}))]],
    "topic": [[b"motor.cli.actuate", msgpack.packb(_envelope())]],
}


@pytest.mark.whole_lock
def test_every_service_counts_and_survives_each_kind_of_bad_input(lock):
    with Bus(lock.layout, "cli") as bus:
        for service in SERVICES:
            sock = bus._client(zmq.DEALER, service, lock.layout.cmd(service))
            for frames_list in BAD_INPUTS.values():
                for frames in frames_list:
                    sock.send_multipart(frames)
            status = bus.commands.stamp(StatusRequest(), timeout=5)
            sock.send_multipart(encode(status))  # after, in order
            refusals = []  # a sound envelope around a bad body is answered with the reason
            while True:
                assert sock.poll(5000), f"{service} stopped answering"
                reply = decode(sock.recv_multipart())
                if reply.cause == status.id:
                    break
                refusals.append(reply.body.reason)
            assert sorted(refusals) == ["bad-field", "bad-field", "unknown-type"], refusals
            counted = reply.body.drops
            for reason, frames_list in BAD_INPUTS.items():
                assert counted.get(reason) == len(frames_list), (service, reason, counted)
    assert lock.status()["healthy"]
    assert "dropped a message" in (lock.layout.logs / "keypad.log").read_text()


def test_a_request_with_a_bad_body_is_refused_with_the_field_named(lock):
    with Bus(lock.layout, "cli") as bus:  # a mistyped slot, as a buggy app would send it
        sock = bus._client(zmq.DEALER, "policy", lock.layout.cmd("policy"))
        env = bus.commands.stamp(PeopleRequest(), timeout=5)  # a sound, fresh envelope
        raw = msgpack.unpackb(encode(env)[1])
        raw.update(type="owner.validity", body={"number": "001", "slots": [[1]]})
        sock.send_multipart([b"owner.cli.validity", msgpack.packb(raw)])
        assert sock.poll(5000), "policy did not answer"
        answer = decode(sock.recv_multipart())
    assert answer.cause == env.id
    assert not answer.body.ok and answer.body.reason == "bad-field"
    assert "slots" in answer.body.detail
    assert drops(lock, "policy").get("bad-field") == 1


def test_a_valid_message_of_the_wrong_kind_is_refused_with_a_reason(lock):
    with Bus(lock.layout, "cli") as bus:  # the owner's request, sent to the wrong service
        answer = bus.client("keypad").request(PeopleRequest(), timeout=3)
    assert not answer.body.ok and answer.body.reason == "unexpected"


@pytest.mark.whole_lock
def test_kill_9_of_any_service_leaves_the_bolt_locked_and_it_comes_back(ready_lock):
    lock = ready_lock
    watch = lock.watcher()
    lock.press("touch", *ADMIN_CODE, "ok")  # an unlock decided before the kills
    watch.wait_for(lambda e: getattr(e.body, "state", None) == "unlocked" and e.sender == "motor")
    lock.cli("sim", "button", "lock")
    watch.wait_for(
        lambda e: (
            getattr(e.body, "state", None) == "locked"
            and e.sender == "motor"
            and e.cause is not None
        )
    )
    recovery = {}
    for service in SERVICES:
        pid = lock.pid(service)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        watch.wait_for(is_type(ProcessState, name=service, state="RUNNING"), timeout=10)
        lock.wait_restarted(service, pid, timeout=10)  # has counted its start (restarts)
        lock.wait_healthy(timeout=10)
        recovery[service] = time.monotonic() - killed
        # a restarted motor reads the board before it says the bolt again: "unknown" until
        # then, never anything but locked
        bolt = eventually(lambda: (b := lock.status()["lock"]["bolt"]) != "unknown" and b, 5)
        assert bolt == "locked", service
        assert lock.status()["services"][service]["restarts"] == 1, service
    assert max(recovery.values()) < 5.0, recovery
    with sqlite3.connect(lock.layout.data / "lock.db") as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM events ORDER BY seq")]
    assert "unlock" in kinds
    watch.close()


def test_alive_but_stuck_is_restarted_like_dead(lock):
    stuck = lock.pid("keypad")
    os.kill(stuck, signal.SIGSTOP)
    eventually(lambda: lock.pid("keypad") not in (stuck, 0), timeout=20, every=0.2)  # replaced
    lock.wait_healthy(timeout=10)
    assert lock.status()["services"]["keypad"]["restarts"] == 1


def test_sigterm_stops_a_service_within_two_seconds(tmp_path):
    from proto.layout import Layout

    layout = Layout.at(tmp_path / "data")
    mesh.prepare(layout)
    proc = subprocess.Popen([sys.executable, "-m", "services.power", "--data", str(layout.data)])
    try:
        with Bus(layout, "cli") as bus:
            ask = bus.client("power")  # each ask waits up to 0.5 s for the answer
            eventually(lambda: ask.request(StatusRequest(), timeout=0.5), timeout=10, every=0.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=2) == 0
    finally:
        proc.kill()
        mesh.clean_run_dir(layout)


def test_up_fails_in_time_naming_the_service_that_is_not_healthy(tmp_path):
    from tests.meshkit import Lock

    lock = Lock(tmp_path / "data")
    lock.layout.data.mkdir(parents=True)
    # A Pi board without lgpio: the motor cannot open its pins and keeps failing.
    # 15 s: time enough for the healthy services to start beside other tests' meshes
    config = '[board]\nkind = "pi"\n[mesh]\nup_timeout_s = 15.0\n'
    lock.layout.config_file.write_text(made_without(config, LEAN))
    try:
        result = lock.cli("up", check=False)
        assert result.returncode == 1
        assert "not healthy after 15s: motor" in result.stderr
        assert "lgpio" in (lock.layout.logs / "motor.log").read_text()
    finally:
        mesh.down(lock.layout)
        mesh.clean_run_dir(lock.layout)
