"""The palm "EF AA" protocol; the driver against the simulated module (L-3, L-5, L-15, L-20)."""

from __future__ import annotations

import select
import threading
import time

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import palm as pm
from hw.palm import (
    Frame,
    FrameParser,
    Palm,
    PalmCodecError,
    PalmLinkError,
    PalmResultError,
    PalmTimeout,
    decode,
    encode,
)
from hw.sim_fingerprint import z_score
from hw.sim_palm import PalmSimulator, quality_at
from tests.meshkit import eventually

TIMEOUT_S = 0.3  # the driver's reply timeout for quick commands in these tests
STEADY = (0.8, 0.25)  # frame noise for the functional tests: a steady hand, no chance misses
MARGIN_S = 0.5  # what the driver waits beyond a capture's own timeout

frames = st.builds(Frame, msg_id=st.integers(0, 255), data=st.binary(max_size=300))


# -- codec ----------------------------------------------------------------------------------
def test_frame_bytes():
    assert encode(Frame(pm.MODULE_ID, b"")) == bytes.fromhex("EFAAAC0000AC")
    reply = bytes.fromhex("EFAA000002100012")  # REPLY to RESET: success
    assert decode(reply) == Frame(pm.REPLY, b"\x10\x00")
    assert pm.parse_reply(decode(reply)) == pm.Reply(pm.RESET, pm.MR_SUCCESS, b"")


@given(frames, st.data())
def test_round_trip_whole_and_in_pieces(frame, data):
    wire = encode(frame)
    assert decode(wire) == frame
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=5)))
    parser, found = FrameParser(), []
    for a, b in zip([0, *cuts], [*cuts, len(wire)]):
        found += parser.feed(wire[a:b])
    assert found == [frame]
    assert parser.pending == 0 and not parser.rejected


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_never_raise(chunks):
    parser = FrameParser()
    for chunk in chunks:
        for frame in parser.feed(chunk):
            assert isinstance(frame, Frame)
    try:
        decode(b"".join(chunks))
    except PalmCodecError:
        pass


@settings(max_examples=300)
@given(st.binary(max_size=80), frames, st.integers(0, 40), frames)
def test_a_frame_after_garbage_and_a_half_frame_is_found(garbage, half, cut, frame):
    """Garbage, then a frame cut short (a module reset mid-reply), then a whole frame."""
    found = FrameParser().feed(garbage + encode(half)[:cut] + encode(frame))
    assert found and found[-1] == frame


def test_a_wrong_parity_is_rejected_and_counted():
    wire = bytearray(encode(Frame(pm.REPLY, b"\x12\x00")))
    wire[-1] ^= 1
    parser = FrameParser()
    assert parser.feed(bytes(wire)) == []
    assert parser.rejected["bad parity"] == 1
    assert parser.feed(encode(Frame(pm.NOTE, b"\x00"))) == [Frame(pm.NOTE, b"\x00")]
    with pytest.raises(PalmCodecError, match="bad parity"):
        decode(bytes(wire))


def test_every_result_and_palm_state_has_words():
    for code in (0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 19, 20, 21):
        assert not pm.result_reason(code).startswith("unknown result")
    assert pm.result_reason(99) == "unknown result code 99"
    prompts = {
        pm.Note(pm.NID_PALM_STATE, pm.palm_state_note(s)[1:]).prompt for s in pm.STATE_PROMPTS
    }
    assert {"too far", "too near", "off-centre", "moving", "no palm", "ok"} <= prompts
    assert pm.Note(pm.NID_READY, b"").prompt == "ready"


def test_l15_a_child_palm_is_held_nearer():
    assert quality_at(20) == "good" and quality_at(40) == "far" and quality_at(8) == "near"
    assert quality_at(10, child=True) == "good" and quality_at(20, child=True) == "far"


# -- the driver against the simulated module ---------------------------------------------------
@pytest.fixture
def sim():
    with PalmSimulator(seed=7, frame_s=0.002, noise=STEADY) as s:
        yield s


@pytest.fixture
def reader(sim):
    with Palm.open(sim.path, timeout_s=TIMEOUT_S, margin_s=MARGIN_S) as p:
        yield p


def test_status_and_module_id(reader):
    assert reader.status() == 0
    assert reader.module_id() == "SIMPALM-0001"


def test_l15_enrol_merges_several_frames_and_prompts_on_the_way(sim, reader):
    sim.place("alice-right", "far", "near", "off-centre", "moving", "good")
    prompts: list[str] = []
    uid = reader.enroll(
        name="alice", admin=True, timeout_s=3, on_note=lambda n: prompts.append(n.prompt)
    )
    assert uid == 1
    assert prompts[:4] == ["too far", "too near", "off-centre", "moving"]
    assert prompts[4:] == ["ok"] * sim.enroll_frames  # one per frame merged
    assert reader.verify(timeout_s=2) == pm.PalmUser(1, "alice", True)


def test_l20_another_palm_is_refused_as_a_failed_verification(sim, reader):
    sim.place("alice-right")
    reader.enroll(timeout_s=2)
    sim.place("bob-left")
    with pytest.raises(PalmResultError, match="not recognised") as e:
        reader.verify(timeout_s=2)
    assert e.value.code == pm.MR_FAILED4_UNKNOWNUSER and e.value.failed_verification


def test_l5_a_palm_already_enrolled_is_refused(sim, reader):
    sim.place("alice-right")
    reader.enroll(timeout_s=2)
    with pytest.raises(PalmResultError, match="already enrolled") as e:
        reader.enroll(timeout_s=2)
    assert e.value.code == pm.MR_FAILED4_ENROLLED and not e.value.failed_verification
    assert list(sim.users) == [1]


def test_l3_a_full_store_refuses_and_keeps_what_it_has():
    with PalmSimulator(capacity=2, frame_s=0.002, noise=STEADY) as sim:
        with Palm.open(sim.path, timeout_s=TIMEOUT_S, margin_s=MARGIN_S) as reader:
            for palm in ("a", "b"):
                sim.place(palm)
                reader.enroll(timeout_s=2)
            sim.place("c")
            with pytest.raises(PalmResultError, match="store full"):
                reader.enroll(timeout_s=2)
            assert sorted(sim.users) == [1, 2]


def test_l15_a_palm_out_of_range_times_out_with_its_prompt(sim, reader):
    sim.place("kid-right", distance_cm=20, child=True)
    start = time.monotonic()
    with pytest.raises(PalmResultError, match="timed out") as e:
        reader.enroll(timeout_s=1)
    assert time.monotonic() - start < 1 + MARGIN_S
    assert e.value.code == pm.MR_FAILED4_TIMEOUT
    assert [n.prompt for n in e.value.notes] == ["too far"]  # a note per change, not per frame
    sim.place("kid-right", distance_cm=10, child=True)
    assert reader.enroll(timeout_s=2) == 1


def test_delete_one_and_all(sim, reader):
    for palm in ("alice-right", "bob-left"):
        sim.place(palm)
        reader.enroll(timeout_s=2)
    reader.delete_user(1)
    with pytest.raises(PalmResultError, match="unknown user"):
        reader.delete_user(1)
    sim.place("bob-left")
    assert reader.verify(timeout_s=2).user_id == 2
    reader.delete_all()
    assert sim.users == {}
    with pytest.raises(PalmResultError):
        reader.verify(timeout_s=2)


def test_features_mirror_to_the_host_and_back(sim, reader):
    sim.place("alice-right")
    uid = reader.enroll(timeout_s=2)
    feature = reader.get_feature(uid)
    reader.delete_all()
    assert reader.enroll_feature(feature, user_id=5) == 5
    assert reader.verify(timeout_s=2).user_id == 5
    with pytest.raises(PalmResultError, match="invalid parameter"):
        reader.enroll_feature(feature, user_id=5)  # taken: never overwritten silently
    with pytest.raises(PalmResultError, match="invalid parameter"):
        reader.enroll_feature(feature[:-3] + b"xyz")
    with pytest.raises(PalmResultError, match="unknown user"):
        reader.get_feature(77)


def test_cancel_sends_reset_and_the_capture_ends_aborted(sim, reader):
    sim.lift()
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(PalmResultError, match="aborted") as e:
        reader.verify(timeout_s=10, cancel=cancel)
    assert e.value.code == pm.MR_ABORTED and time.monotonic() - start < 2
    assert reader.status() == 0


def test_another_client_speaks_raw_frames_to_the_simulator(sim):
    sim.lift()
    parser, replies = FrameParser(), []
    with serial.Serial(sim.path, 115200, timeout=0.05) as port:
        port.write(bytes.fromhex("EFAA120002000515"))  # VERIFY, 5 s: parity 12^00^02^00^05
        eventually(lambda: sim.stats["VERIFY"], timeout=5, every=0.01)  # under way
        port.write(bytes.fromhex("EFAA10000010"))  # RESET
        deadline = time.monotonic() + 2
        while len(replies) < 2 and time.monotonic() < deadline:
            replies += [
                pm.parse_reply(f) for f in parser.feed(port.read(64)) if f.msg_id == pm.REPLY
            ]
    assert [(r.command, r.result) for r in replies] == [(pm.VERIFY, pm.MR_ABORTED), (pm.RESET, 0)]


# -- the line's faults --------------------------------------------------------------------
def test_garbage_before_a_reply_is_skipped(sim, reader):
    sim.inject("garbage", count=3)
    for _ in range(3):
        assert reader.module_id() == "SIMPALM-0001"
    assert reader.parser.garbage_bytes > 0


def test_a_wrong_parity_is_a_clear_error_then_recovers(sim, reader):
    sim.inject("bad-checksum", count=1)
    with pytest.raises(PalmLinkError, match="bad parity") as e:
        reader.module_id()
    assert not isinstance(e.value, PalmTimeout)
    assert reader.module_id() == "SIMPALM-0001"


def test_a_truncated_reply_is_a_clear_error_then_recovers(sim, reader):
    sim.inject("truncate")
    with pytest.raises(PalmLinkError, match="truncated frame"):
        reader.status()
    sim.clear_faults()
    assert reader.status() == 0


def test_a_reply_waiting_past_the_deadline_is_taken_not_timed_out(sim, reader):
    """As a busy board leaves it: the reply in the port's buffer once the host's process
    has a core again, after its deadline, came in time."""
    reader.uart.write(pm.encode(pm.Frame(pm.MODULE_ID, b"")))
    assert select.select([reader.uart._serial.fileno()], [], [], 5.0)[0]  # it has replied
    reply = reader._reply("MODULE_ID", pm.MODULE_ID, time.monotonic() - TIMEOUT_S, None, None)
    assert reply.result == pm.MR_SUCCESS and reply.data


def test_silence_times_out_and_never_hangs(sim, reader):
    sim.inject("silent")
    start = time.monotonic()
    with pytest.raises(PalmTimeout, match="no reply"):
        reader.status()
    assert time.monotonic() - start < TIMEOUT_S + 0.5
    sim.clear_faults()
    assert reader.status() == 0


def test_unplugged_mid_capture_then_back_keeps_the_users(sim, reader):
    sim.place("alice-right")
    reader.enroll(timeout_s=2)
    sim.lift()
    threading.Timer(0.2, sim.unplug).start()
    with pytest.raises(PalmTimeout):
        reader.verify(timeout_s=1)
    sim.replug()
    reader.wait_ready(1.0)
    sim.place("alice-right")
    assert reader.verify(timeout_s=2).user_id == 1


def test_a_port_that_goes_away_is_a_clear_error(sim, reader):
    assert reader.status() == 0
    sim.close()  # the pseudo-terminal disappears, as a USB adapter pulled out
    with pytest.raises(PalmLinkError, match="serial port .* failed"):
        reader.status()


# -- how well it recognises --------------------------------------------------------------------
@pytest.fixture
def natural_sim():
    """The simulator's own, realistic variation between frames."""
    with PalmSimulator(seed=11, frame_s=0.002) as s:
        yield s


def test_far_frr_over_50_palms(natural_sim, capsys):
    """Through the driver: 50 palms enrolled, 2 verifications each, 50 strangers; and
    offline, the matcher's per-comparison rate over 5000 stranger comparisons."""
    sim = natural_sim
    reader = Palm.open(sim.path, timeout_s=TIMEOUT_S, margin_s=MARGIN_S)
    palms = [f"person{i}-palm" for i in range(50)]
    ids = {}
    for palm in palms:
        sim.place(palm)
        ids[palm] = reader.enroll(timeout_s=2)
    assert len(set(ids.values())) == 50

    def verify(palm: str) -> int | None:
        sim.place(palm)
        try:
            return reader.verify(timeout_s=2).user_id
        except PalmResultError as e:
            assert e.code == pm.MR_FAILED4_UNKNOWNUSER
            return None

    false_rejects = sum(verify(p) != ids[p] for p in palms for _ in range(2))
    false_accepts = sum(verify(f"stranger{i}") is not None for i in range(50))
    frr, far = false_rejects / 100, false_accepts / 50

    templates = [u.features for u in sim.users.values()]
    scores = [z_score(sim.sample(f"other{i}"), t) for i in range(100) for t in templates]
    comparison_far = sum(z >= sim.match_z for z in scores) / len(scores)
    reader.close()
    with capsys.disabled():
        print(
            f"\npalm: FRR {false_rejects}/100 = {frr:.1%}, FAR {false_accepts}/50 verifications"
            f" = {far:.1%}, per comparison {comparison_far:.4%} of {len(scores)}"
            f" (best stranger z {max(scores):.1f}, threshold {sim.match_z})"
        )
    assert frr <= 0.10 and far <= 0.02 and comparison_far <= 0.001


def test_get_status_is_answered_busy_while_a_capture_runs(sim):
    """Not queued behind the capture (issue 18): a host can see the module is busy."""
    sim.lift()
    parser, replies = FrameParser(), []

    def ask_status(port: serial.Serial) -> int:
        port.write(pm.encode(pm.Frame(pm.GET_STATUS, b"")))
        deadline, asked = time.monotonic() + 2, len(replies)
        while time.monotonic() < deadline:
            frames = parser.feed(port.read(64))
            replies.extend(pm.parse_reply(f) for f in frames if f.msg_id == pm.REPLY)
            status = [r.data[0] for r in replies[asked:] if r.command == pm.GET_STATUS]
            if status:
                return status[0]
        raise AssertionError("no GET_STATUS reply")

    with serial.Serial(sim.path, 115200, timeout=0.05) as port:
        assert ask_status(port) == 0
        port.write(pm.encode(pm.Frame(pm.VERIFY, bytes([0, 5]))))  # 5 s, no palm there
        eventually(lambda: sim.stats["VERIFY"], timeout=5, every=0.01)
        start = time.monotonic()
        assert ask_status(port) == 1
        assert time.monotonic() - start < 1  # not after the capture's 5 s
        port.write(pm.encode(pm.Frame(pm.RESET, b"")))
        eventually(lambda: ask_status(port) == 0, timeout=5)
    assert (pm.VERIFY, pm.MR_ABORTED) in [(r.command, r.result) for r in replies]
