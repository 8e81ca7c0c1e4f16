"""Conformance: two independent client libraries for these modules, from PyPI, driven unchanged
against the simulated R503 on its pseudo-terminal (issue 18). Any change to the simulator
or its protocol must keep them green: they are what "any client of the real part works"
means. Parts tests: one simulator, one client, no mesh.

- adafruit-circuitpython-fingerprint: reads every acknowledgement by its fixed length.
- pyfingerprint (Bastian Raschke): reads packet by packet, byte by byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adafruit_fingerprint as ada
import numpy as np
import pytest
import serial
from PIL import Image
from pyfingerprint.pyfingerprint import PyFingerprint

from hw import fingerprint as fp
from hw.fingerprint import Fingerprint, FingerprintTimeout
from hw.sim_finger_image import R30X_IMAGE_SIZE, R503_IMAGE_SIZE, image_bytes
from hw.sim_fingerprint import FingerprintSimulator

STEADY = ((0.5, 0.3), (0.6, 1.0))  # placements that always give features: the flows, not the rates


@pytest.fixture
def sim() -> Iterator[FingerprintSimulator]:
    with FingerprintSimulator(seed=5, good=STEADY) as s:
        yield s


# -- Adafruit ---------------------------------------------------------------------------------
@pytest.fixture
def port(sim: FingerprintSimulator) -> Iterator[serial.Serial]:
    with serial.Serial(sim.path, baudrate=57600, timeout=1) as uart:
        yield uart


@pytest.fixture
def finger(port: serial.Serial) -> ada.Adafruit_Fingerprint:
    return ada.Adafruit_Fingerprint(port)  # verifies the password and reads the parameters


def ada_capture(finger: ada.Adafruit_Fingerprint, slot: int) -> None:
    """The library example's capture: poll for an image, then features into a slot."""
    for _ in range(50):
        if finger.get_image() == ada.OK:
            break
    else:
        raise AssertionError("no image")
    assert finger.image_2_tz(slot) == ada.OK


def ada_enroll(finger: ada.Adafruit_Fingerprint, sim: FingerprintSimulator, name: str, at: int):
    sim.place(name)
    ada_capture(finger, 1)
    ada_capture(finger, 2)
    assert finger.create_model() == ada.OK
    assert finger.store_model(at) == ada.OK


def test_adafruit_parameters_count_index_echo(sim, finger):
    assert finger.check_module()
    assert (finger.library_size, finger.security_level, finger.data_packet_size) == (200, 3, 2)
    assert finger.baudrate == 6 and finger.device_address == b"\xff\xff\xff\xff"
    assert finger.count_templates() == ada.OK and finger.template_count == 0
    ada_enroll(finger, sim, "alice", 3)
    assert finger.count_templates() == ada.OK and finger.template_count == 1
    assert finger.read_templates() == ada.OK and finger.templates == [3]


def test_adafruit_enrol_search_match(sim, finger):
    ada_enroll(finger, sim, "alice", 3)
    ada_enroll(finger, sim, "bob", 9)
    for search in (finger.finger_search, finger.finger_fast_search):
        sim.place("bob")
        ada_capture(finger, 1)
        assert search() == ada.OK and finger.finger_id == 9 and finger.confidence > 0
    sim.place("stranger")
    ada_capture(finger, 1)
    assert finger.finger_search() == ada.NOTFOUND  # read as a whole 16-byte packet
    assert finger.status_register & fp.STATUS_IMAGE
    assert finger.load_model(9, 2) == ada.OK
    assert finger.compare_templates() == ada.NOMATCH
    sim.place("bob")
    ada_capture(finger, 1)
    assert finger.compare_templates() == ada.OK


def test_adafruit_template_up_and_down_at_two_packet_sizes(sim, finger):
    ada_enroll(finger, sim, "alice", 3)
    assert finger.load_model(3) == ada.OK
    template = finger.get_fpdata("char", 1)
    assert len(template) == fp.TEMPLATE_SIZE
    assert finger.set_sysparam(fp.PARAM_PACKET_SIZE, 0) == ada.OK  # 32-byte data packets
    assert finger.read_sysparam() == ada.OK and finger.data_packet_size == 0
    assert finger.get_fpdata("char", 1) == template  # 48 packets now, the same bytes
    assert finger.empty_library() == ada.OK
    finger.send_fpdata(template, "char", 1)
    assert finger.store_model(7) == ada.OK
    sim.place("alice")
    ada_capture(finger, 1)
    assert finger.finger_search() == ada.OK and finger.finger_id == 7
    assert finger.delete_model(7) == ada.OK
    assert finger.read_templates() == ada.OK and finger.templates == []


def test_adafruit_image_up_and_down(sim, finger):
    sim.place("alice")
    assert finger.get_image() == ada.OK
    image = finger.get_fpdata("image")
    assert len(image) == image_bytes(R503_IMAGE_SIZE)
    pixels = np.frombuffer(bytes(image), np.uint8)
    assert 40 < pixels.std() < 120  # ridges and valleys, not a flat or random picture
    sim.lift()
    assert finger.get_image() == ada.NOFINGER
    finger.send_fpdata(list(image), "image")
    assert finger.image_2_tz(1) == ada.OK  # the capture it was, downloaded back


def test_adafruit_led_soft_reset_then_search_errors_whole(sim, finger):
    assert finger.set_led(color=fp.LED_PURPLE, mode=fp.LED_BREATHING) == ada.OK
    assert sim.led == (fp.LED_BREATHING, 0x80, fp.LED_PURPLE, 0)
    finger.soft_reset()  # reads the acknowledgement, then the 0x55 of the restart
    assert finger.finger_search() == fp.NO_VALID_IMAGE  # the buffers emptied, whole packet
    assert finger.compare_templates() == fp.NO_VALID_IMAGE


def test_adafruit_with_a_password():
    with FingerprintSimulator(password=0x1234ABCD) as sim:
        with serial.Serial(sim.path, 57600, timeout=1) as uart:
            with pytest.raises(RuntimeError, match="Failed to find sensor"):
                ada.Adafruit_Fingerprint(uart, passwd=(0, 0, 0, 0))
            finger = ada.Adafruit_Fingerprint(uart, passwd=(0x12, 0x34, 0xAB, 0xCD))
            assert finger.status_register & fp.STATUS_PWD


# -- pyfingerprint ----------------------------------------------------------------------------
def py_open(sim: FingerprintSimulator, **kw) -> PyFingerprint:
    return PyFingerprint(sim.path, kw.pop("baud", 57600), **kw)


def no_answer(sim: FingerprintSimulator, **kw) -> None:
    """Nothing comes back (pyfingerprint itself would wait 2 s for each of 12 bytes)."""
    with Fingerprint.open(sim.path, kw.pop("baud", 57600), timeout_s=0.3, **kw) as sensor:
        with pytest.raises(FingerprintTimeout):
            sensor.handshake()


def py_capture(sensor: PyFingerprint, buffer: int = 1) -> None:
    while not sensor.readImage():
        pass
    sensor.convertImage(buffer)


def test_pyfingerprint_enrol_search_compare_delete(sim):
    sensor = py_open(sim)
    assert sensor.verifyPassword()
    assert sensor.getStorageCapacity() == 200 and sensor.getTemplateCount() == 0
    sim.place("carol")
    py_capture(sensor, 1)
    assert sensor.searchTemplate() == (-1, -1)
    py_capture(sensor, 2)
    assert sensor.compareCharacteristics() > 0
    sensor.createTemplate()
    assert sensor.storeTemplate() == 0  # the first free slot, from the index table
    sim.place("dave")
    py_capture(sensor, 1)
    py_capture(sensor, 2)
    sensor.createTemplate()
    assert sensor.storeTemplate(5) == 5
    assert sensor.getTemplateIndex(0)[:6] == [True, False, False, False, False, True]
    sim.place("carol")
    py_capture(sensor)
    position, score = sensor.searchTemplate()
    assert position == 0 and score > 0
    assert sensor.loadTemplate(5, 2)
    assert sensor.compareCharacteristics() == 0  # carol against dave: no match, score 0
    assert sensor.deleteTemplate(0) and sensor.getTemplateCount() == 1
    assert sensor.clearDatabase() and sensor.getTemplateCount() == 0


def test_pyfingerprint_characteristics_down_and_up(sim):
    sensor = py_open(sim)
    sim.place("carol")
    py_capture(sensor, 1)
    data = sensor.downloadCharacteristics(1)
    assert len(data) == fp.TEMPLATE_SIZE
    assert sensor.uploadCharacteristics(2, data)  # it reads them back and compares
    sensor.storeTemplate(4, 2)
    py_capture(sensor, 1)
    assert sensor.searchTemplate()[0] == 4


def test_pyfingerprint_system_parameters(sim):
    sensor = py_open(sim)
    sensor.setSecurityLevel(5)
    sensor.setMaxPacketSize(64)
    assert (sensor.getSecurityLevel(), sensor.getMaxPacketSize()) == (5, 64)
    with pytest.raises(Exception, match="Unknown error 0x1b"):
        sensor.setSystemParameter(fp.PARAM_BAUD, 3)  # 28800: not one the R503 offers
    a, b = sensor.generateRandomNumber(), sensor.generateRandomNumber()
    assert a != b


def test_pyfingerprint_baud_rate_from_the_next_power_up(sim):
    sensor = py_open(sim)
    sensor.setBaudRate(115200)
    assert sensor.getBaudRate() == 115200  # kept in flash; the line still runs at 57600
    assert sensor.verifyPassword()
    del sensor
    sim.unplug()
    sim.replug()
    no_answer(sim)  # at 57600 the module hears noise and says nothing
    assert py_open(sim, baud=115200).verifyPassword()
    assert sim.stats["wrong baud rate"] > 0


def test_pyfingerprint_password_and_address(sim):
    sensor = py_open(sim)
    sensor.setPassword(0x0BADC0DE)
    sensor.setAddress(0x11223344)
    del sensor
    sim.unplug()
    sim.replug()
    no_answer(sim)  # the old address: no answer at all
    wrong = py_open(sim, address=0x11223344)
    assert not wrong.verifyPassword()
    with pytest.raises(Exception, match="Unknown error 0x21"):
        wrong.getTemplateCount()  # the password must be verified first
    del wrong
    right = py_open(sim, address=0x11223344, password=0x0BADC0DE)
    assert right.verifyPassword() and right.getTemplateCount() == 0


def test_pyfingerprint_downloads_an_r30x_sized_image(tmp_path: Path):
    """pyfingerprint's downloadImage assumes the optical R30x's 256 x 288 image; the
    simulator renders that size when asked to (an R503's is 192 x 192)."""
    with FingerprintSimulator(seed=5, good=STEADY, image_size=R30X_IMAGE_SIZE) as sim:
        sensor = py_open(sim)
        sim.place("erin")
        assert sensor.readImage()
        sensor.downloadImage(str(tmp_path / "erin.png"))
        del sensor
    picture = Image.open(tmp_path / "erin.png")
    assert picture.size == R30X_IMAGE_SIZE and np.asarray(picture).std() > 40
