"""The MAX17048 driver against the simulated gauge, and the power service with both (L-28)."""

from __future__ import annotations

import json

import pytest

from hw.max17048 import VERSION, GaugeError, Max17048
from hw.sim_gauge import SimGaugeBus
from tests.meshkit import LEAN

WITHOUT = LEAN  # the lock fixture's (conftest.py): no test here needs those parts


@pytest.fixture
def power_file(tmp_path):
    return tmp_path / "sim-power.json"


def test_l28_percent_and_volts_come_back_through_the_registers(power_file):
    power_file.write_text(json.dumps({"battery_percent": 42.5}))
    gauge = Max17048(SimGaugeBus(power_file))
    assert gauge.check() & 0xFFF0 == 0x0010
    assert gauge.percent() == pytest.approx(42.5, abs=1 / 256)
    assert gauge.volts() == pytest.approx(3.0 + 1.2 * 0.425, abs=1e-4)


def test_an_unplugged_gauge_is_a_clear_error_and_recovers(power_file):
    gauge = Max17048(SimGaugeBus(power_file))
    power_file.write_text(json.dumps({"gauge": "unplugged"}))
    with pytest.raises(GaugeError, match="no answer"):
        gauge.percent()
    power_file.write_text(json.dumps({"battery_percent": 10}))
    assert gauge.percent() == pytest.approx(10, abs=0.01)


class Lying:
    """A bus that answers whatever it was told to."""

    def __init__(self, answer):
        self.answer = answer

    def read_i2c_block_data(self, addr, register, length):
        return self.answer(register)


def test_implausible_answers_are_refused():
    with pytest.raises(GaugeError, match="implausible"):
        Max17048(Lying(lambda r: [0xFF, 0xFF])).percent()
    with pytest.raises(GaugeError, match="not a MAX17048"):
        Max17048(Lying(lambda r: [0x12, 0x34] if r == VERSION else [0, 0])).check()
    with pytest.raises(GaugeError, match="short read"):
        Max17048(Lying(lambda r: [0x01])).percent()


@pytest.mark.slow
def test_l28_power_reports_through_the_driver_and_survives_a_loose_gauge(lock):
    from proto.power import Battery
    from tests.meshkit import eventually, is_type

    watch = lock.watcher()
    lock.cli("sim", "battery", "15")
    report = watch.wait_for(is_type(Battery, percent=15.0)).body
    assert report.low and not report.video_allowed  # L-28: below 20 % no live video
    (lock.layout.data / "sim-power.json").write_text(json.dumps({"gauge": "unplugged"}))
    lock.wait_healthy()

    def power() -> dict:
        return lock.status()["services"]["power"]

    eventually(lambda: power()["state"].startswith("degraded"))  # once it reads the gauge
    assert power()["verdict"] == "healthy"
    lock.cli("sim", "battery", "90", "--usb-c")
    assert watch.wait_for(is_type(Battery, percent=90.0)).body.external
