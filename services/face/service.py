"""Runs, beats and answers; refuses enrolment and verification until the pipeline exists."""

from __future__ import annotations

from proto.biometric import FaceEnrol, FaceVerify
from proto.control import Done, refused
from proto.wire import Envelope
from services.base import Service, accepts

NOT_YET = "face recognition is not built yet: no models are installed on this lock"


class FaceService(Service):
    NAME = "face"

    def setup(self) -> None:
        self.state = "degraded: no face pipeline yet"

    @accepts(FaceEnrol, peers=("keypad", "policy", "cli"))
    def on_enrol(self, env: Envelope, peer: str) -> Done:
        return refused("not-available", NOT_YET)

    @accepts(FaceVerify, peers=("keypad", "policy"))
    def on_verify(self, env: Envelope, peer: str) -> Done:
        return refused("not-available", NOT_YET)
