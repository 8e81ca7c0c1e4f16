"""Runs, beats and answers; refuses enrolment and verification until the drivers exist."""

from __future__ import annotations

from proto.biometric import BioEnrol, BioVerify
from proto.control import Done, refused
from proto.wire import Envelope
from services.base import Service, accepts

NOT_YET = "no {modality} module driver is built yet"


class BiometricService(Service):
    NAME = "biometric"

    def setup(self) -> None:
        self.state = "degraded: no fingerprint or palm module yet"

    @accepts(BioEnrol, peers=("keypad", "policy", "cli"))
    def on_enrol(self, env: Envelope, peer: str) -> Done:
        return refused("not-available", NOT_YET.format(modality=env.body.modality))

    @accepts(BioVerify, peers=("keypad", "policy"))
    def on_verify(self, env: Envelope, peer: str) -> Done:
        return refused("not-available", NOT_YET.format(modality=env.body.modality))
