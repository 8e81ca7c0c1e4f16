"""Reports the battery on a schedule and whenever it changes (L-28)."""

from __future__ import annotations

import logging
from typing import Any, Callable

from hw.max17048 import GaugeError, Max17048
from hw.sim_gauge import SimGaugeBus
from proto.power import Battery
from services.base import Service

log = logging.getLogger(__name__)


class PowerService(Service):
    NAME = "power"
    TICK_S = 0.25  # the gauge is read 4 times a second: a battery moves slower

    def setup(self) -> None:
        self.settings = self.config["power"]
        self.gauge, self.usb_c = self._parts()
        self._last: Battery | None = None
        self._next_report = 0.0

    def _parts(self) -> tuple[Max17048, Callable[[], bool]]:
        """The gauge and the USB-C sense: simulated, or on the Pi's I2C bus and a pin."""
        if self.config["board"]["kind"] == "sim":
            bus = SimGaugeBus(self.layout.data / "sim-power.json")
            return Max17048(bus), bus.usb_c
        from gpiozero import DigitalInputDevice
        from smbus2 import SMBus  # the pi extra

        from hw.gpio import pin_factory

        sense = DigitalInputDevice(self.config["pins"]["usb_c"], pin_factory=pin_factory("pi"))
        return Max17048(SMBus(self.config["power"]["i2c_bus"])), lambda: sense.is_active

    def tick(self, now: float) -> None:
        try:
            report = self._read()
        except GaugeError as e:
            if not self.state.startswith("degraded"):
                log.warning("battery gauge failed: %s", e)
            self.state = f"degraded: {e}"
            return
        self.state = "ready"
        if report != self._last or now >= self._next_report:
            self._last, self._next_report = report, now + self.settings["report_every_s"]
            self.publish(report)

    def _read(self) -> Battery:
        percent = round(self.gauge.percent(), 1)
        return Battery(
            percent=percent,
            volts=round(self.gauge.volts(), 3),
            low=percent < self.settings["low_percent"],
            video_allowed=percent >= self.settings["video_min_percent"],
            external=self.usb_c(),
        )

    def status_detail(self) -> dict[str, Any]:
        return {} if self._last is None else self._last.to_body()
