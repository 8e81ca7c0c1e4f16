"""The bus over real ipc:// sockets in one process: CURVE peers, deadlines, gaps, forgery,
the trust table, freshness and the counters that outlive a restart (issue 11)."""

from __future__ import annotations

import threading

import pytest
import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from ops import mesh
from proto.biometric import Templates
from proto.board import Actuate, Bolt
from proto.bus import ZAP_ENDPOINT, Bus, Counters
from proto.control import OK, Done, StatusRequest
from proto.freshness import Freshness
from proto.health import Heartbeat
from proto.keypad import Key
from proto.layout import Layout
from proto.wire import MAX_REQUEST_LIFE_S, Stamper, WireError, decode, encode
from tests.meshkit import eventually

BEAT = Heartbeat(state="ready", pid=1, uptime_s=0.0, lag_ms=0.0, msgs_in=0, msgs_out=0)


@pytest.fixture
def layout(tmp_path):
    layout = Layout.at(tmp_path / "data")
    mesh.prepare(layout)
    yield layout
    mesh.clean_run_dir(layout)


def _joined(pub_bus, pub, sub_bus, sub, peer):
    """Publish until the subscriber hears one: the slow-joiner handshake is over."""

    def heard():
        pub_bus.publish(pub, BEAT)  # every service may beat
        if sub.poll(20):
            sub_bus.receive_event(sub, peer)
            return True
        return False

    eventually(heard, timeout=5.0, every=0.01)
    while sub.poll(50):  # the beats sent while the subscription was joining
        sub_bus.receive_event(sub, peer)


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


def test_a_subscriber_to_some_types_hears_only_those_and_counts_no_gap_for_the_rest(layout):
    """Issue 12 item 6: the publisher filters, so the keys a watchdog does not handle never
    wake it; the holes they leave in the sequence are no loss. Replays are still refused."""
    with Bus(layout, "keypad") as keypad, Bus(layout, "watchdog") as watchdog:
        pub = keypad.bind_publisher()
        sub = watchdog.subscribe("keypad", [Heartbeat])
        _joined(keypad, pub, watchdog, sub, "keypad")
        keypad.publish(pub, Key(key="ok"))
        keypad.publish(pub, Key(key="1"))
        beat = keypad.publish(pub, BEAT)
        assert sub.poll(2000)
        env = watchdog.receive_event(sub, "keypad")  # first: the keys, sent before, were not
        assert env is not None and env.id == beat.id
        assert watchdog.counters.gaps == 0
        pub.send_multipart(encode(beat))  # the same beat again
        assert sub.poll(2000)
        assert watchdog.receive_event(sub, "keypad") is None
        assert watchdog.counters.drops["replayed"] == 1


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
        t = threading.Thread(target=lambda: eventually(answer_next, timeout=5.0, every=0.01))
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


def _serve_one(bus: Bus, server: zmq.Socket) -> threading.Thread:
    """A server thread that reads one request (the bus refuses it or not) and answers OK."""

    def serve():
        assert server.poll(5000)
        route, _, env = bus.receive_command(server)
        if env is not None:
            bus.reply(server, route, OK, env.id)

    t = threading.Thread(target=serve)
    t.start()
    return t


def test_an_event_the_trust_table_forbids_is_dropped_as_unauthorized(layout):
    """Issue 11: policy believed a Button (a factory-reset gesture) from any publisher."""
    with Bus(layout, "power") as power, Bus(layout, "policy") as policy:
        pub = power.bind_publisher()
        sub = policy.subscribe("power")
        _joined(power, pub, policy, sub, "power")
        power.publish(pub, Bolt(state="unlocked"))
        assert sub.poll(2000)
        assert policy.receive_event(sub, "power") is None
        assert policy.counters.drops["unauthorized"] == 1


def test_a_request_the_trust_table_forbids_is_refused_by_the_bus(layout):
    with Bus(layout, "motor") as motor, Bus(layout, "keypad") as keypad:
        server = motor.bind_commands()
        t = _serve_one(motor, server)
        answer = keypad.client("motor").request(
            Actuate(action="unlock", direction="right"), timeout=5
        )
        t.join()
    assert answer.body == Done(ok=False, reason="unauthorized", detail=answer.body.detail)
    assert "only policy" in answer.body.detail
    assert motor.counters.drops["unauthorized"] == 1 and motor.counters.msgs_in == 0


def test_a_replayed_request_is_refused(layout):
    """Issue 11: a recorded policy→motor command sent again with policy's own key."""
    with Bus(layout, "motor") as motor, Bus(layout, "policy") as policy:
        server = motor.bind_commands()
        sock = policy._client(zmq.DEALER, "motor", layout.cmd("motor"))
        recorded = encode(
            policy.commands.stamp(Actuate(action="unlock", direction="right"), timeout=30)
        )
        for _ in range(2):
            sock.send_multipart(recorded)
        assert server.poll(5000)
        assert motor.receive_command(server)[2].body == Actuate(action="unlock", direction="right")
        assert server.poll(5000)
        assert motor.receive_command(server)[2] is None
        assert motor.counters.drops["replayed"] == 1
        assert sock.poll(5000)  # the replay was answered: refused
        assert decode(sock.recv_multipart()).body.reason == "replayed"


def test_a_request_from_an_older_session_of_a_service_is_refused(layout):
    """A restarted policy opens a new session; its old one can only come from a replay."""
    with Bus(layout, "motor") as motor, Bus(layout, "policy") as policy:
        server = motor.bind_commands()
        old = Stamper("policy", channel="c")
        policy.commands = Stamper("policy", channel="c")  # the restart: a later session
        sock = policy._client(zmq.DEALER, "motor", layout.cmd("motor"))
        for stamper in (policy.commands, old):
            sock.send_multipart(encode(stamper.stamp(StatusRequest(), timeout=30)))
            assert server.poll(5000)
            motor.receive_command(server)
        assert motor.counters.drops["replayed"] == 1 and motor.counters.msgs_in == 1


def test_an_expired_request_is_refused(layout):
    """Issue 11: the motor carried out an Actuate of any age."""
    with Bus(layout, "motor") as motor, Bus(layout, "policy") as policy:
        server = motor.bind_commands()
        sock = policy._client(zmq.DEALER, "motor", layout.cmd("motor"))
        sock.send_multipart(
            encode(policy.commands.stamp(Actuate(action="unlock", direction="right"), timeout=-1))
        )
        assert server.poll(5000)
        assert motor.receive_command(server)[2] is None
        assert motor.counters.drops["expired"] == 1


def test_gaps_are_counted_per_session_and_a_new_session_is_no_gap(layout):
    with Bus(layout, "keypad") as keypad, Bus(layout, "policy") as policy:
        pub = keypad.bind_publisher()
        sub = policy.subscribe("keypad")
        _joined(keypad, pub, policy, sub, "keypad")
        keypad.events = Stamper("keypad", channel="e")  # restarted: seq 1 of a new session
        keypad.publish(pub, Key(key="ok"))
        keypad.events.seq += 2  # then two lost
        keypad.publish(pub, Key(key="ok"))
        for _ in range(2):
            assert sub.poll(2000)
            assert policy.receive_event(sub, "keypad") is not None
        assert policy.counters.gaps == 2
        keypad.events = Stamper("keypad", channel="e")  # restarted again, and its first
        keypad.events.seq = 3  # three messages were sent before the subscriber was back
        keypad.publish(pub, Key(key="ok"))
        assert sub.poll(2000)
        assert policy.receive_event(sub, "keypad") is not None
        assert policy.counters.gaps == 5


def test_a_reply_of_a_type_the_peer_may_not_answer_is_not_taken(layout):
    with Bus(layout, "motor") as motor, Bus(layout, "policy") as policy:
        server = motor.bind_commands()

        def answer_with_templates():
            assert server.poll(5000)
            route, _, env = motor.receive_command(server)
            motor.reply(server, route, Templates(items=[]), env.id)

        t = threading.Thread(target=answer_with_templates)
        t.start()
        assert policy.client("motor").request(StatusRequest(), timeout=1) is None
        t.join()
        assert policy.counters.drops["unauthorized"] == 1


def test_an_unknown_curve_key_is_refused_and_counted(layout):
    with Bus(layout, "motor") as motor:
        motor.bind_commands()
        sock = motor.ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.curve_serverkey = (layout.keys / "motor.key").read_bytes().strip()
        sock.connect(layout.cmd("motor"))
        eventually(lambda: motor.counters.drops["unknown-key"] >= 1, timeout=5.0, every=0.01)
        sock.close()


def test_issue12_the_zap_handler_answers_rfc27_naming_admitted_keys_and_refusing_the_rest(layout):
    """Asked as libzmq asks it (RFC 27): a known CURVE key is admitted under its identity's
    name (the User-Id the bus trusts), an unknown one refused and counted, and a request of
    another mechanism or a malformed one refused; the handler keeps answering after each."""
    with Bus(layout, "motor") as motor:
        motor.bind_commands()  # starts the handler
        asker = motor.ctx.socket(zmq.REQ)
        asker.linger = 0
        asker.connect(ZAP_ENDPOINT)

        def ask(*frames: bytes) -> list[bytes]:
            asker.send_multipart(list(frames))
            assert asker.poll(5000), "the ZAP handler did not answer"
            return asker.recv_multipart()

        def curve(key: bytes, mechanism: bytes = b"CURVE") -> list[bytes]:
            return ask(b"1.0", b"7", b"", b"127.0.0.1", b"", mechanism, z85.decode(key))

        policy_key = (layout.keys / "policy.key").read_bytes().strip()
        assert curve(policy_key) == [b"1.0", b"7", b"200", b"OK", b"policy", b""]
        stranger = zmq.curve_keypair()[0]
        assert curve(stranger)[2:4] == [b"400", b"key not admitted"]
        assert motor.counters.drops["unknown-key"] == 1
        assert curve(policy_key, b"PLAIN")[2] == b"400"
        assert ask(b"1.0", b"8")[:3] == [b"1.0", b"8", b"400"]
        assert ask(b"2.0", b"9", b"", b"", b"", b"CURVE", b"short")[2] == b"400"
        assert curve(policy_key)[2] == b"200"
        asker.close()


def test_issue12_a_zap_handler_that_fails_refuses_the_client_and_keeps_serving(layout):
    """libzmq admits every CURVE client when no ZAP handler answers, so the handler's thread
    must outlive its own bugs: a client it fails on is refused (500), the next is served."""
    with Bus(layout, "motor") as motor, Bus(layout, "keypad") as keypad:
        server = motor.bind_commands()
        keyring = motor._authenticator()
        admits = keyring.admitted

        def broken(domain: str, key: bytes) -> str | None:
            raise RuntimeError("a bug in the handler")

        def ask() -> tuple[zmq.Socket, zmq.Socket]:
            sock = keypad._client(zmq.DEALER, "motor", layout.cmd("motor"))
            events = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
            sock.send_multipart(encode(keypad.commands.stamp(StatusRequest(), timeout=30)))
            return sock, events

        keyring.admitted = broken  # type: ignore[method-assign]
        refused, events = ask()
        assert events.poll(5000), "the client was neither admitted nor refused"
        assert recv_monitor_message(events)["value"] == 500
        keyring.admitted = admits  # type: ignore[method-assign]
        served, _ = ask()
        assert server.poll(5000), "the handler stopped answering after failing"
        assert motor.receive_command(server)[1] == "keypad"
        assert not server.poll(100), "the refused client's request got through"
        refused.close()
        served.close()


def test_drops_and_gaps_outlive_a_restart(tmp_path):
    path = tmp_path / "motor.counters.json"
    before = Counters()
    before.drop("unauthorized", "test", "here")
    before.missed(3, "keypad")
    before.save(path)
    after = Counters()
    after.load(path)
    after.drop("unauthorized", "test", "here")
    assert dict(after.drops) == {"unauthorized": 2} and after.gaps == 3
    mtime = path.stat().st_mtime_ns
    before.save(path)  # unchanged since its last save: not written again
    assert path.stat().st_mtime_ns == mtime


def test_unreadable_saved_counters_are_ignored(tmp_path):
    path = tmp_path / "motor.counters.json"
    for junk in ("not json", "[1, 2]", '{"drops": {"x": "many"}, "gaps": 0}'):
        path.write_text(junk)
        counters = Counters()
        counters.load(path)
        assert dict(counters.drops) == {} and counters.gaps == 0


# -- freshness, without sockets -----------------------------------------------------------
def _request(stamper: Stamper, timeout: float = 5.0):
    return decode(encode(stamper.stamp(StatusRequest(), timeout=timeout)))


def test_a_session_of_another_boot_is_stale():
    fresh = Freshness(boot="another-boot")
    with pytest.raises(WireError) as e:
        fresh.admit_request(_request(Stamper("policy")))
    assert e.value.reason == "replayed"


def test_a_request_must_carry_a_bounded_expiry():
    fresh = Freshness()
    for timeout, reason in ((None, "envelope"), (MAX_REQUEST_LIFE_S + 60, "envelope")):
        env = decode(encode(Stamper("policy").stamp(StatusRequest(), timeout=timeout)))
        with pytest.raises(WireError) as e:
            fresh.admit_request(env)
        assert e.value.reason == reason


def test_several_processes_of_the_cli_may_overlap():
    """`lockmesh enrol` waits while `lockmesh sim finger` runs: two live cli sessions."""
    fresh = Freshness()
    older, newer = Stamper("cli"), Stamper("cli")
    fresh.admit_request(_request(newer))
    fresh.admit_request(_request(older))  # not refused: the cli is many processes
    replay = _request(older)
    fresh.admit_request(replay)
    with pytest.raises(WireError):
        fresh.admit_request(replay)


def test_issue12_a_bus_serves_right_after_another_closed_in_the_same_process(layout):
    """Stop 22's CI failure: a Bus's ZAP handler could not bind its inproc address, still
    held by the handler closed just before on the shared context until libzmq's reaper let
    it go (1,082 of 2,000 back-to-back opens failed so). Each Bus has a context of its own
    now, so its handler's address is never another's."""
    for _ in range(100):
        with Bus(layout, "power") as power:
            power.bind_publisher()
            power.bind_commands()
