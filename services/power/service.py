"""Reports the battery on a schedule and whenever it changes."""

from __future__ import annotations

from typing import Any

from hw.battery import Reading, SimGauge
from proto.power import Battery
from services.base import Service


class PowerService(Service):
    NAME = "power"

    def setup(self) -> None:
        self.settings = self.config["power"]
        if self.config["board"]["kind"] != "sim":
            self.state = "degraded: no battery gauge driver for this board yet"
        self.gauge = SimGauge(self.layout.data / "sim-power.json")
        self._last: Reading | None = None
        self._next_report = 0.0

    def tick(self, now: float) -> None:
        reading = self.gauge.read()
        if reading != self._last or now >= self._next_report:
            self._last, self._next_report = reading, now + self.settings["report_every_s"]
            percent = reading.percent
            self.publish(
                Battery(
                    percent=percent,
                    volts=reading.volts,
                    low=percent < self.settings["low_percent"],
                    video_allowed=percent >= self.settings["video_min_percent"],
                    external=reading.external,
                )
            )

    def status_detail(self) -> dict[str, Any]:
        r = self._last
        return {} if r is None else {"percent": r.percent, "volts": r.volts, "usb_c": r.external}
