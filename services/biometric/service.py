"""The fingerprint and palm-vein modules: enrolment (L-15, L-3, L-5) and verification (L-18).

Each module has a station (a worker thread, services/biometric/station.py). On the
simulated board the modules are simulators on pseudo-terminals in this process, speaking
the real protocols to the real drivers; `lockmesh sim finger|palm` puts a finger or palm
on them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from hw.sim_fingerprint import FingerprintSimulator
from hw.sim_palm import PalmSimulator
from proto.biometric import (
    KIND_OF,
    BioEnrol,
    BioVerify,
    EnrolCancel,
    SimModule,
    SimPresent,
)
from proto.control import OK, Done, refused
from proto.keypad import Key
from proto.policy import Audit
from proto.wire import Envelope
from services.base import Service, accepts, hears
from services.biometric.finger import FingerStation
from services.biometric.palm import PalmStation
from services.biometric.station import Station
from services.mailbox import Mailbox

SIMULATORS = {"finger": FingerprintSimulator, "palm": PalmSimulator}
STATIONS = {"finger": FingerStation, "palm": PalmStation}
PORTS = {"finger": "fingerprint_port", "palm": "palm_port"}


class BiometricService(Service):
    NAME = "biometric"
    LISTENS = ("keypad", "policy")
    TICK_S = 0.25  # the modules are driven by their stations' threads

    def setup(self) -> None:
        self.settings = self.config["biometric"]
        self.mail = Mailbox(wait_s=self.mesh["request_timeout_s"] + 1.0)
        self.watch(self.mail.fd, lambda: self.mail.deliver(self.publish, self._ask))
        self.sims: dict[str, Any] = {}
        self.stations: dict[str, Station] = {}
        self._lift_at: dict[str, float] = {}
        for modality, key in PORTS.items():
            port = self.settings[key]
            if port == "none":
                continue
            if port == "sim":
                sim = SIMULATORS[modality](
                    seed=self.settings["sim_seed"],
                    flash=self.layout.data / f"sim-{modality}-flash.json",
                ).start()
                self.sims[modality], port = sim, sim.path
            self.stations[modality] = STATIONS[modality](port, self.mail, self.settings)
        for station in self.stations.values():
            station.start()
        self._update_state()

    def _ask(self, peer: str, body: Any, cause: str | None) -> Envelope | None:
        return self.request(peer, body, cause=cause)

    def teardown(self) -> None:
        for station in getattr(self, "stations", {}).values():
            station.stop()
            station.close()
        for sim in getattr(self, "sims", {}).values():
            sim.close()
        if hasattr(self, "mail"):
            self.mail.close()

    def tick(self, now: float) -> None:
        for modality, at in list(self._lift_at.items()):
            if now >= at:
                self._lift(modality)
                del self._lift_at[modality]
        self._update_state()

    def _update_state(self) -> None:
        faulty = [f"{m} {s.state}" for m, s in self.stations.items() if not s.healthy]
        if not self.stations:
            self.state = "degraded: no fingerprint or palm module fitted"
        else:
            self.state = "degraded: " + "; ".join(faulty) if faulty else "ready"

    def status_detail(self) -> dict[str, Any]:
        return {
            m: {"state": s.state, "templates": len(s.owners), "busy": s.busy, **s.stats}
            for m, s in self.stations.items()
        }

    # -- enrolment ----------------------------------------------------------------------
    @accepts(BioEnrol)
    def on_enrol(self, env: Envelope[BioEnrol], peer: str) -> Done:
        """Policy opened an enrolment (issue 11): capture, and save under its ticket."""
        b = env.body
        station = self.stations.get(b.modality)
        if station is None:
            return refused("not-available", f"this lock has no {KIND_OF[b.modality]} module")
        if not station.healthy:
            return refused("module-fault", f"the {KIND_OF[b.modality]} module: {station.state}")
        if any(s.busy for s in self.stations.values()):
            return refused("busy", "an enrolment is already under way")
        station.busy = True  # at once, so a second request is refused before the job runs
        station.cancel.clear()  # here, not in the job: a cancel before it starts must hold
        station.submit(lambda: station.enrol(b.person, b.ticket, env.trace))
        return Done(ok=True, detail="started")

    @accepts(EnrolCancel)
    def on_cancel(self, env: Envelope[EnrolCancel], peer: str) -> Done:
        for station in self.stations.values():
            if station.busy:
                station.cancel.set()
        return OK

    @hears(Audit)
    def on_audit(self, env: Envelope[Audit]) -> None:
        """A person deleted in policy (L-6): their templates leave the modules too."""
        if env.body.kind == "person-deleted" and env.body.person:
            person = env.body.person
            for station in self.stations.values():
                station.submit(partial(station.forget, person))
        elif env.body.kind == "factory-reset":  # L-30: the modules are emptied too
            for station in self.stations.values():
                station.submit(station.wipe)

    # -- verification -------------------------------------------------------------------
    @hears(Key)
    def on_key(self, env: Envelope[Key]) -> None:
        if env.body.key == "touch":
            self._wake_palm()

    def _wake_palm(self) -> None:
        """A touch or a person at the door: the palm module looks for a palm for a while."""
        palm = self.stations.get("palm")
        if isinstance(palm, PalmStation):
            palm.wake()

    @accepts(BioVerify)
    def on_verify(self, env: Envelope[BioVerify], peer: str) -> Done:
        modality = env.body.modality
        if modality not in self.stations:
            return refused("not-available", f"this lock has no {modality} module")
        if modality == "palm":
            self._wake_palm()
        return OK  # the fingerprint sensor is always looked at

    # -- the simulated modules ----------------------------------------------------------
    @accepts(SimPresent)
    def on_sim_present(self, env: Envelope[SimPresent], peer: str) -> Done:
        b = env.body
        sim = self.sims.get(b.modality)
        if sim is None:
            return self._not_simulated(b.modality)
        if not b.who:
            self._lift(b.modality)
            return OK
        try:
            if b.modality == "palm":
                # a palm held up to an enrolment is not a person at the door, even when the
                # enrolment ends (refused at once: already added) before the wake (issue 15)
                enrolling = any(s.busy for s in self.stations.values())
                distance = b.distance_cm or None
                sim.place(b.who, *b.qualities, distance_cm=distance, child=b.child)
                if not enrolling:
                    self._wake_palm()  # a person at the door wakes the lock
            else:
                sim.place(b.who, *b.qualities)
        except ValueError as e:
            return refused("bad-value", str(e))
        self._lift_at[b.modality] = self.clock() + self.settings["sim_touch_s"]
        return OK

    def _lift(self, modality: str) -> None:
        """The simulated finger or palm goes; a palm station then knows the hand is away."""
        self.sims[modality].lift()
        palm = self.stations.get(modality)
        if isinstance(palm, PalmStation):
            palm.away()

    @staticmethod
    def _not_simulated(modality: str) -> Done:
        return refused("not-simulated", f"the {modality} module here is not simulated")

    @accepts(SimModule)
    def on_sim_module(self, env: Envelope[SimModule], peer: str) -> Done:
        b = env.body
        sim = self.sims.get(b.modality)
        if sim is None:
            return self._not_simulated(b.modality)
        if b.fault == "unplug":
            sim.unplug()
        elif b.fault == "replug":
            sim.replug()
        elif b.fault == "clear":
            sim.clear_faults()
        else:
            sim.inject(b.fault)
        return OK
