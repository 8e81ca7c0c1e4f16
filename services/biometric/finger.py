"""The fingerprint module's station: verification by polling the sensor, enrolment by
two good placements merged (L-15), duplicates refused (L-5)."""

from __future__ import annotations

from typing import Any

from hw import fingerprint as fp
from proto.biometric import Unreadable
from services.biometric.station import EnrolFailed, Station
from services.mailbox import Mailbox

POOR_IMAGE = {
    fp.CAPTURE_FAILED: "finger-poor",
    fp.TOO_DISORDERLY: "finger-poor",
    fp.TOO_FEW_FEATURES: "finger-partial",
}


class FingerStation(Station):
    MODALITY = "finger"
    LINK_ERRORS = (fp.FingerprintLinkError,)

    def __init__(self, port: str, mail: Mailbox, settings: dict[str, Any]) -> None:
        super().__init__(mail, settings)
        self.port = port
        self.module: fp.Fingerprint | None = None
        self._lift_first = False  # the finger just enrolled is still there: not an attempt

    def connect(self) -> None:
        if self.module is None:
            try:
                self.module = fp.Fingerprint.open(self.port)
            except OSError as e:  # no such port: the module is not there
                raise fp.FingerprintLinkError(f"cannot open {self.port}: {e}") from e
        self.module.handshake()
        self.module.verify_password(self.settings["finger_password"])
        self.module.sys_params(refresh=True)

    @property
    def link(self) -> fp.Fingerprint:
        """The open module: jobs run only after connect() has opened it."""
        if self.module is None:
            raise fp.FingerprintLinkError("the module is not open")
        return self.module

    def close(self) -> None:
        if self.module is not None:
            self.module.close()

    def load_templates(self, kept: dict[int, tuple[str, bytes]]) -> None:
        used = self.link.used_slots()
        for slot in sorted(set(kept) - used):
            self.link.write_template(slot, kept[slot][1])
        strays = sorted(used - set(kept))
        if strays:
            self.remove_slots(strays)

    def remove_all(self) -> None:
        self.link.empty()

    def remove_slots(self, slots: list[int]) -> None:
        for slot in slots:
            self.link.delete(slot)

    # -- at the door --------------------------------------------------------------------
    def _finger_on(self) -> bool:
        """One image taken if a finger is on the sensor (the R503's touch-sense would
        interrupt instead; polling keeps the wiring to the UART alone)."""
        try:
            self.link.gen_img()
        except fp.FingerprintAckError as e:
            if e.code == fp.NO_FINGER:
                return False
            return True  # a finger, but a failed image: it is still there
        return True

    def idle(self) -> None:
        if not self._finger_on():
            self._lift_first = False
            return
        if self._lift_first:
            return
        try:
            self.link.img2tz(1)
        except fp.FingerprintAckError as e:
            if e.code not in POOR_IMAGE:
                raise
            self.mail.publish(Unreadable(modality="finger", step=POOR_IMAGE[e.code]))
            self._wait_lifted(None)  # too poor to judge: not an attempt; try again
            return
        hit = self.link.search(1)
        person = self.person_at(hit.page_id) if hit is not None else None
        self.decide(person, float(hit.score) if hit else 0.0, None)
        self._wait_lifted(None)  # one placement, one attempt

    def _wait_lifted(self, person: str | None, cause: str | None = None) -> None:
        deadline = self.now() + self.settings["lift_timeout_s"]
        asked = False
        while self._finger_on():
            if person is not None and not asked:
                self.step(person, "lift-finger", cause)
                asked = True
            if self.now() > deadline:
                return
            self.wait(self.settings["idle_poll_s"])

    # -- enrolment ----------------------------------------------------------------------
    def capture_template(self, person: str, cause: str | None) -> tuple[int, bytes]:
        self._wait_lifted(person, cause)  # a finger left on the sensor is nobody's to enrol
        for buffer_id in (1, 2):
            self._good_capture(person, buffer_id, cause)
            if buffer_id == 1:
                self._wait_lifted(person, cause)
        slot = self._free_slot()
        try:
            self.link.enroll_buffers(slot, check_duplicate=True)
        except fp.FingerprintDuplicate as e:
            raise EnrolFailed("already-added", "that finger is already enrolled") from e
        except fp.FingerprintAckError as e:
            if e.code == fp.MERGE_MISMATCH:
                raise EnrolFailed("mismatch", "the two placements were not one finger") from e
            raise
        return slot, self.link.read_template(slot)

    def after_enrol(self) -> None:
        self._lift_first = True

    def _good_capture(self, person: str, buffer_id: int, cause: str | None) -> None:
        """Ask for the finger until a placement gives usable features (L-15)."""
        deadline = self.now() + self.settings["enrol_timeout_s"]
        for _ in range(self.settings["enrol_retries"] + 1):
            self.step(person, "place-finger", cause, count=str(buffer_id))
            while not self._finger_on():
                if self.now() > deadline:
                    raise EnrolFailed("timeout", "no finger was placed")
                self.wait(self.settings["idle_poll_s"])
            try:
                self.link.img2tz(buffer_id)
                return
            except fp.FingerprintAckError as e:
                if e.code not in POOR_IMAGE:
                    raise
                self.step(person, POOR_IMAGE[e.code], cause, count=str(buffer_id))
                self._wait_lifted(None)
        raise EnrolFailed("poor-captures", "no usable placement after several tries")

    def _free_slot(self) -> int:
        used = self.link.used_slots()
        size = self.link.sys_params().library_size
        free = next((s for s in range(size) if s not in used), None)
        if free is None:
            raise EnrolFailed("full", "the fingerprint module is full")
        return free
