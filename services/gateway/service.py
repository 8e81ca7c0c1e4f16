"""The gateway's bus side: it hears what the app shows live and asks policy for the rest.

Policy decides everything; the gateway only translates (issue 13). It never talks to the
motor: the trust table lets it send owner requests to policy and nothing that moves a bolt.
"""

from __future__ import annotations

import logging
from typing import Any

from proto.biometric import EnrolDone, EnrolStep, Unreadable
from proto.board import Bolt, Door
from proto.policy import Alarm, Audit, Pairing
from proto.power import Battery
from proto.schema import Message
from proto.wire import Envelope
from services.base import Service, hears

log = logging.getLogger(__name__)


class GatewayService(Service):
    NAME = "gateway"
    LISTENS = ("policy", "motor", "power", "face", "biometric")

    def setup(self) -> None:
        self.heard: dict[str, Message] = {}  # the last event of each type

    def _heard(self, env: Envelope[Message]) -> None:
        self.heard[env.type] = env.body

    @hears(Bolt)
    def on_bolt(self, env: Envelope[Bolt]) -> None:
        self._heard(env)

    @hears(Door)
    def on_door(self, env: Envelope[Door]) -> None:
        self._heard(env)

    @hears(Battery)
    def on_battery(self, env: Envelope[Battery]) -> None:
        self._heard(env)

    @hears(Alarm)
    def on_alarm(self, env: Envelope[Alarm]) -> None:
        self._heard(env)

    @hears(Audit)
    def on_audit(self, env: Envelope[Audit]) -> None:
        self._heard(env)

    @hears(Pairing)
    def on_pairing(self, env: Envelope[Pairing]) -> None:
        self._heard(env)

    @hears(EnrolStep)
    def on_enrol_step(self, env: Envelope[EnrolStep]) -> None:
        self._heard(env)

    @hears(Unreadable)
    def on_unreadable(self, env: Envelope[Unreadable]) -> None:
        self._heard(env)

    @hears(EnrolDone)
    def on_enrolled(self, env: Envelope[EnrolDone]) -> None:
        self._heard(env)

    def status_detail(self) -> dict[str, Any]:
        return {"heard": sorted(self.heard)}
