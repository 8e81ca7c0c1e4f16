"""The R503 manual's instructions beyond the classic set, through our driver and raw bytes,
against the simulated module (issue 18; the table is in hw/README.md)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw import fingerprint as fp
from hw.fingerprint import Fingerprint, FingerprintAckError, FingerprintTimeout, Packet, encode
from hw.sim_finger_image import R503_IMAGE_SIZE, image_bytes, unpack_nibbles
from hw.sim_fingerprint import R503_TIMING, FingerprintSimulator, Timing

STEADY = ((0.5, 0.3), (0.6, 1.0))  # placements that always give features
QUICK = Timing(finger_wait_s=0.5, poll_s=0.01)  # the automatic commands give up in 0.5 s


@pytest.fixture
def sim():
    with FingerprintSimulator(seed=3, good=STEADY, timing=QUICK) as s:
        yield s


@pytest.fixture
def sensor(sim):
    with Fingerprint.open(sim.path, timeout_s=1.0) as f:
        yield f


def raw(sim: FingerprintSimulator, payload: bytes, *, expect: int, corrupt: bool = False) -> bytes:
    """One command as bytes on the line; what comes back within 0.3 s."""
    wire = bytearray(encode(Packet(fp.PID_COMMAND, payload)))
    if corrupt:
        wire[-1] ^= 0xFF
    with serial.Serial(sim.path, 57600, timeout=0.3) as port:
        port.write(wire)
        return port.read(expect)


def enroll(sensor: Fingerprint, sim: FingerprintSimulator, finger: str, page: int) -> None:
    sim.place(finger)
    sensor.capture(1)
    sensor.capture(2)
    sensor.enroll_buffers(page)


# -- the line -----------------------------------------------------------------------------------
def test_an_unsupported_instruction_is_answered_fch(sim):
    for instruction in (fp.PORT_CONTROL, 0x99):
        assert raw(sim, bytes([instruction]), expect=12)[9] == fp.UNSUPPORTED


def test_a_bad_checksum_gets_no_answer(sim):
    assert raw(sim, bytes([fp.HANDSHAKE]), expect=12, corrupt=True) == b""
    assert raw(sim, bytes([fp.HANDSHAKE]), expect=12)[9] == fp.OK


def test_errors_come_back_at_the_instruction_s_whole_length(sim):
    match = raw(sim, bytes([fp.MATCH]), expect=20)  # both char buffers empty
    assert len(match) == 9 + 1 + 2 + 2 and match[9] == fp.NO_VALID_IMAGE
    search = raw(sim, bytes([fp.SEARCH, 1, 0, 0, 0, 200]), expect=20)
    assert len(search) == 9 + 1 + 4 + 2 and search[9] == fp.NO_VALID_IMAGE


def test_short_arguments_are_a_packet_error_without_a_traceback(sim, sensor, caplog):
    caplog.set_level(logging.ERROR)
    with pytest.raises(FingerprintAckError) as e:
        sensor.command(fp.AURA_LED_CONFIG, b"\x01\x80")
    assert e.value.code == fp.PACKET_ERROR
    assert not caplog.records and sim.stats["arguments too short"] == 1
    sensor.aura_led(fp.LED_ON, colour=fp.LED_GREEN)
    assert sim.led == (fp.LED_ON, 0x80, fp.LED_GREEN, 0)


# -- system ---------------------------------------------------------------------------------------
def test_handshake_echo_and_the_sensor_check(sim, sensor):
    sensor.handshake()
    sensor.echo()
    sensor.check_sensor()
    sim.sensor_ok = False
    with pytest.raises(FingerprintAckError, match="sensor hardware error"):
        sensor.check_sensor()
    sim.place("alice")
    with pytest.raises(FingerprintAckError, match="image capture failed"):
        sensor.gen_img()


def test_status_register_bits(sim, sensor):
    assert sensor.sys_params(refresh=True).status == 0
    sensor.verify_password(0)
    enroll(sensor, sim, "alice", 1)
    status = sensor.sys_params(refresh=True).status
    assert status & fp.STATUS_PWD and status & fp.STATUS_IMAGE and not status & fp.STATUS_PASS
    sensor.capture(1)
    assert sensor.search(1) is not None
    assert sensor.sys_params(refresh=True).status & fp.STATUS_PASS
    sim.place("stranger")
    sensor.capture(1)
    assert sensor.search(1) is None
    assert not sensor.sys_params(refresh=True).status & fp.STATUS_PASS


def test_identity_versions_random_codes(sim, sensor):
    info = sensor.product_info()
    assert (info.image_width, info.image_height) == R503_IMAGE_SIZE
    assert (info.template_size, info.library_size) == (1536, 200)
    assert info.module_type == "R503-SIM"
    assert sensor.algorithm_version() and sensor.firmware_version()
    assert len({sensor.random_code() for _ in range(4)}) == 4
    page = sensor.read_info_page()
    assert len(page) == fp.INFO_PAGE_SIZE
    assert page[16 : 16 + 46] == info.pack()


def test_notepad_is_kept_in_flash(tmp_path: Path):
    flash = tmp_path / "flash.json"
    with FingerprintSimulator(flash=flash) as sim, Fingerprint.open(sim.path) as sensor:
        sensor.write_notepad(15, b"lock 7 front door")
        with pytest.raises(FingerprintAckError, match="notepad page"):
            sensor.write_notepad(16, b"x")
        assert sensor.read_notepad(0) == bytes(32)
    with FingerprintSimulator(flash=flash) as sim, Fingerprint.open(sim.path) as sensor:
        assert sensor.read_notepad(15) == b"lock 7 front door".ljust(32, b"\0")


def test_password_and_address_are_enforced_from_the_next_power_up(sim, sensor):
    sensor.set_password(0x5EC12E7)
    sensor.set_address(0x0A0B0C0D)
    assert sensor.template_count() == 0  # this session set them: still verified, new address
    sim.unplug()
    sim.replug()
    with pytest.raises(FingerprintAckError, match="password must be verified"):
        sensor.template_count()
    with pytest.raises(FingerprintAckError, match="wrong password"):
        sensor.verify_password(0)
    sensor.verify_password(0x5EC12E7)
    assert sensor.template_count() == 0
    with Fingerprint.open(sim.path, timeout_s=0.3) as stranger:  # the factory address
        with pytest.raises(FingerprintTimeout):
            stranger.handshake()


def test_security_level_moves_the_threshold(sim, sensor):
    low = sim.threshold()
    sensor.set_security_level(5)
    assert sensor.sys_params(refresh=True).security_level == 5 and sim.threshold() > low
    with pytest.raises(FingerprintAckError, match="incorrect configuration"):
        sensor.set_security_level(6)
    with pytest.raises(FingerprintAckError, match="invalid register"):
        sensor.set_sys_para(9, 1)


def test_packet_size_applies_to_data_both_ways(sim, sensor):
    enroll(sensor, sim, "alice", 2)
    template = sensor.read_template(2)
    sensor.set_packet_size(32)
    assert sensor.sys_params(refresh=True).packet_size == 32
    assert sensor.read_template(2) == template
    sensor.write_template(3, template)
    assert sensor.used_slots() == {2, 3}
    with Fingerprint.open(sim.path) as another:  # a driver that starts at 128 adopts 32
        another.sys_params()
        assert another.packet_size == 32


# -- images -----------------------------------------------------------------------------------
def test_image_upload_is_a_print_of_the_finger(sim, sensor):
    with pytest.raises(FingerprintAckError, match="image upload failed"):
        sensor.up_image()
    sim.place("alice")
    sensor.gen_img()
    first = unpack_nibbles(sensor.up_image(), R503_IMAGE_SIZE)
    assert first.shape == (192, 192) and first.std() > 40
    sensor.gen_img()
    again = unpack_nibbles(sensor.up_image(), R503_IMAGE_SIZE)
    sim.place("bob")
    sensor.gen_img()
    other = unpack_nibbles(sensor.up_image(), R503_IMAGE_SIZE)
    touched = (first < 240) & (again < 240) & (other < 240)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a[touched].astype(float), b[touched].astype(float))[0, 1])

    assert corr(first, again) > corr(first, other) + 0.2  # the same ridges, not another's


def test_an_image_downloaded_back_is_the_capture_and_a_foreign_one_has_no_features(sim, sensor):
    enroll(sensor, sim, "alice", 4)
    sensor.gen_img()
    image = sensor.up_image()
    sim.lift()
    sensor.down_image(image)
    sensor.img2tz(1)
    assert sensor.search(1).page_id == 4
    sensor.down_image(bytes(image_bytes(R503_IMAGE_SIZE)))
    with pytest.raises(FingerprintAckError, match="disorderly"):
        sensor.img2tz(1)


def test_get_image_ex_refuses_a_poor_image_and_keeps_no_stale_one(sim, sensor):
    enroll(sensor, sim, "alice", 0)
    sim.place("alice")
    sensor.get_image_ex()
    sim.place("bob", "partial")
    with pytest.raises(FingerprintAckError) as e:
        sensor.get_image_ex()
    assert e.value.code == fp.TOO_FEW_FEATURES
    with pytest.raises(FingerprintAckError):
        sensor.img2tz(1)  # bob's poor image, never alice's from before
    sim.lift()
    with pytest.raises(FingerprintAckError, match="no finger"):
        sensor.get_image_ex()
    with pytest.raises(FingerprintAckError, match="no valid image"):
        sensor.img2tz(1)


def test_r503_timing_is_the_part_s():
    with FingerprintSimulator(timing=R503_TIMING) as sim, Fingerprint.open(sim.path) as sensor:
        sim.place("alice")
        start = time.monotonic()
        sensor.gen_img()
        captured = time.monotonic()
        sensor.img2tz(1)
        extracted = time.monotonic()
    assert captured - start >= 0.2 and extracted - captured >= 0.5


# -- automatic commands ---------------------------------------------------------------------
LIFTED_BETWEEN = ("good", "none") * 6  # placed six times, lifted between


def test_auto_enroll_reports_each_step_then_auto_identify_finds_it(sim, sensor):
    steps: list[int] = []
    sim.place("alice", *LIFTED_BETWEEN)
    page = sensor.auto_enroll(on_step=lambda step, rest: steps.append(step))
    assert page == 0 and sensor.used_slots() == {0}
    assert steps == [
        s for pair in zip(fp.ENROLL_CAPTURE_STEPS, fp.ENROLL_EXTRACT_STEPS) for s in pair
    ] + [fp.ENROLL_DUPLICATE_CHECK, fp.ENROLL_MERGE]
    seen: list[int] = []
    sim.place("alice")
    hit = sensor.auto_identify(on_step=lambda step, rest: seen.append(step))
    assert hit is not None and hit.page_id == 0
    assert seen == [fp.IDENTIFY_CAPTURE, fp.IDENTIFY_EXTRACT]
    sim.place("stranger")
    assert sensor.auto_identify(tries=2, report_steps=False) is None


def test_auto_enroll_refusals(sim, sensor):
    sim.place("alice", *LIFTED_BETWEEN)
    assert sensor.auto_enroll(5, report_steps=False) == 5
    sim.place("alice", *LIFTED_BETWEEN)
    with pytest.raises(FingerprintAckError) as e:
        sensor.auto_enroll(6)
    assert e.value.code == fp.ALREADY_EXISTS
    sim.place("bob", *LIFTED_BETWEEN)
    with pytest.raises(FingerprintAckError) as e:
        sensor.auto_enroll(5)  # taken, and covering it not allowed
    assert e.value.code == fp.TEMPLATE_EMPTY
    assert sensor.auto_enroll(fp.ENROLL_AUTO_ID) == 0  # C8h and up: the first free slot
    sim.lift()
    with pytest.raises(FingerprintAckError) as e:
        sensor.auto_enroll(7)
    assert e.value.code == fp.TIMED_OUT
    assert sensor.used_slots() == {0, 5}


def test_auto_identify_refusals(sim, sensor):
    with pytest.raises(FingerprintAckError) as e:
        sensor.auto_identify()
    assert e.value.code == fp.LIBRARY_EMPTY
    enroll(sensor, sim, "alice", 1)
    with pytest.raises(FingerprintAckError) as e:
        sensor.auto_identify(security_level=9)
    assert e.value.code == fp.PACKET_ERROR
    with pytest.raises(FingerprintAckError) as e:
        sensor.auto_identify(start=10, end=5)
    assert e.value.code == fp.BAD_LOCATION


def test_busy_while_an_automatic_command_runs_and_cancel_stops_it(sim, sensor):
    enroll(sensor, sim, "alice", 0)
    sensor.close()  # raw bytes from here: one client on the line, as on a real UART
    sim.lift()
    sim.timing = Timing(finger_wait_s=30.0, poll_s=0.01)

    def command(port: serial.Serial, payload: bytes, length: int) -> bytes:
        port.write(encode(Packet(fp.PID_COMMAND, payload)))
        return port.read(length)

    with serial.Serial(sim.path, 57600, timeout=1) as port:
        port.write(encode(Packet(fp.PID_COMMAND, bytes([fp.AUTO_IDENTIFY, 3, 0, 199, 1, 0]))))
        deadline = time.monotonic() + 5
        while not sim.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        status = command(port, bytes([fp.READ_SYS_PARA]), 28)
        assert status[9] == fp.OK and status[11] & fp.STATUS_BUSY
        assert command(port, bytes([fp.TEMPLATE_NUM]), 14) == b""  # busy: not taken
        assert command(port, bytes([fp.CANCEL]), 12)[9] == fp.OK
        assert not sim.busy
        status = command(port, bytes([fp.READ_SYS_PARA]), 28)
        assert not status[11] & fp.STATUS_BUSY
        port.timeout = 0.3
        assert port.read(1) == b""  # the cancelled command says nothing more


# -- bad input --------------------------------------------------------------------------------
STATEFUL = (fp.SET_ADDER, fp.SET_PWD, fp.SET_SYS_PARA, fp.SOFT_RESET, fp.AUTO_ENROLL,
            fp.AUTO_IDENTIFY, fp.EMPTY, fp.DELET_CHAR, fp.WRITE_NOTEPAD)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    instruction=st.integers(0, 255).filter(lambda i: i not in STATEFUL),
    args=st.binary(max_size=40),
)
def test_any_command_is_answered_and_never_a_traceback(sim, sensor, caplog, instruction, args):
    """Whatever the instruction and its arguments: an acknowledgement, no logged error, and
    the module goes on answering."""
    caplog.set_level(logging.ERROR)
    code, _ = sensor.command(instruction, args, ok=tuple(range(256)))
    assert instruction in fp.COMMAND_NAMES or code == fp.UNSUPPORTED
    assert not caplog.records
    sensor.handshake()
