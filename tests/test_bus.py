"""The bus over real ipc:// sockets in one process: CURVE peers, deadlines, gaps, forgery."""

from __future__ import annotations

import threading
import time

import pytest
import zmq

from ops import mesh
from proto.bus import Bus
from proto.control import OK, StatusRequest
from proto.keypad import Key
from proto.layout import Layout
from proto.wire import Stamper, decode, encode


@pytest.fixture
def layout(tmp_path):
    layout = Layout.at(tmp_path / "data")
    mesh.prepare(layout)
    yield layout
    mesh.clean_run_dir(layout)


def _until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _joined(pub_bus, pub, sub_bus, sub, peer):
    """Publish until the subscriber hears one: the slow-joiner handshake is over."""

    def heard():
        pub_bus.publish(pub, Key(key="touch"))
        if sub.poll(20):
            sub_bus.receive_event(sub, peer)
            return True
        return False

    _until(heard)


def test_events_arrive_typed_and_gaps_in_a_senders_sequence_are_counted(layout):
    with Bus(layout, "keypad") as keypad, Bus(layout, "policy") as policy:
        pub = keypad.bind_publisher()
        sub = policy.subscribe("keypad")
        _joined(keypad, pub, policy, sub, "keypad")
        keypad.events.seq += 3  # three messages lost on the way
        keypad.publish(pub, Key(key="ok"))
        assert sub.poll(2000)
        env = policy.receive_event(sub, "keypad")
        assert env.body == Key(key="ok") and env.sender == "keypad"
        assert policy.counters.gaps == 3


def test_an_event_claiming_another_sender_is_dropped_as_forged(layout):
    with Bus(layout, "face") as face, Bus(layout, "policy") as policy:
        pub = face.bind_publisher()
        sub = policy.subscribe("face")
        _joined(face, pub, policy, sub, "face")
        face.events = Stamper("keypad", channel="e")
        face.publish(pub, Key(key="ok"))
        assert sub.poll(2000)
        assert policy.receive_event(sub, "face") is None
        assert policy.counters.drops["forged"] == 1


def test_no_answer_by_the_deadline_is_none_and_a_late_answer_is_not_taken(layout):
    with Bus(layout, "motor") as motor, Bus(layout, "policy") as policy:
        server = motor.bind_commands()
        client = policy.client("motor")
        assert client.request(StatusRequest(), timeout=0.2) is None  # nobody answers
        first_id = f"policy-{policy.commands.session.nonce}-c1"
        _, peer, late = motor.receive_command(server)  # read only after its expiry:
        assert peer == "policy" and late is None  # refused as expired (issue 11)
        assert motor.counters.drops["expired"] == 1
        server_answers = []

        def answer_next():
            if server.poll(10):
                route, _, env = motor.receive_command(server)
                motor.reply(server, route, OK, env.id)
                server_answers.append(env.id)
            return bool(server_answers)

        # a fresh socket after the timeout: the late OK above never reaches this request
        t = threading.Thread(target=lambda: _until(answer_next))
        t.start()
        reply = client.request(StatusRequest(), timeout=5)
        t.join()
        assert reply is not None and reply.cause == server_answers[0] != first_id


def test_the_command_server_knows_the_authenticated_peer(layout):
    with Bus(layout, "motor") as motor, Bus(layout, "keypad") as keypad:
        server = motor.bind_commands()
        sock = keypad._client(zmq.DEALER, "motor", layout.cmd("motor"))
        sock.send_multipart(encode(keypad.commands.stamp(StatusRequest(), timeout=5)))
        assert server.poll(5000)
        _, peer, env = motor.receive_command(server)
        assert peer == "keypad" and env.sender == "keypad"
        assert decode(encode(env)).body == StatusRequest()
