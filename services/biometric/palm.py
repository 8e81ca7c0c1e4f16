"""The palm-vein module's station: verification while the lock is awake (a touch, or a
person at the door), enrolment with the module's own guided capture (L-15)."""

from __future__ import annotations

import logging
from typing import Any

from hw import palm as pm
from services.biometric.station import EnrolFailed, Station
from services.mailbox import Mailbox

log = logging.getLogger(__name__)

# The module's palm states, as the panel's prompt ids (L-15: about 20 cm, a child 10 cm)
STEPS = {
    "too far": "palm-too-far",
    "too near": "palm-too-near",
    "off-centre": "palm-off-centre",
    "moving": "palm-moving",
    "no palm": "palm-show",
}
REFUSALS = {
    pm.MR_FAILED4_ENROLLED: ("already-added", "that palm is already enrolled"),
    pm.MR_FAILED4_MAXUSER: ("full", "the palm module is full"),
    pm.MR_FAILED4_TIMEOUT: ("timeout", "no usable palm was shown in time"),
    pm.MR_ABORTED: ("cancelled", "back was pressed"),
}


class PalmStation(Station):
    MODALITY = "palm"
    LINK_ERRORS = (pm.PalmLinkError,)

    def __init__(self, port: str, mail: Mailbox, settings: dict[str, Any]) -> None:
        super().__init__(mail, settings)
        self.port = port
        self.module: pm.Palm | None = None
        self.awake_until = 0.0
        # the hand just enrolled (or refused) is still held up: not an attempt till it goes
        self.held = False

    def connect(self) -> None:
        if self.module is None:
            try:
                self.module = pm.Palm.open(self.port)
            except OSError as e:
                raise pm.PalmLinkError(f"cannot open {self.port}: {e}") from e
        self.module.status()

    @property
    def link(self) -> pm.Palm:
        """The open module: jobs run only after connect() has opened it."""
        if self.module is None:
            raise pm.PalmLinkError("the module is not open")
        return self.module

    def close(self) -> None:
        if self.module is not None:
            self.module.close()

    def load_templates(self, kept: dict[int, tuple[str, bytes]]) -> None:
        """The module cannot list its users: each of policy's is checked, and reloaded when
        missing. A user policy does not know is found (and removed) when it matches."""
        for uid, (_, feature) in sorted(kept.items()):
            try:
                if self.link.get_feature(uid) == feature:
                    continue
                self.link.delete_user(uid)
            except pm.PalmResultError as e:
                if e.code != pm.MR_FAILED4_UNKNOWNUSER:
                    raise
            self.link.enroll_feature(feature, uid)

    def remove_all(self) -> None:
        self.link.delete_all()

    def remove_slots(self, slots: list[int]) -> None:
        for uid in slots:
            try:
                self.link.delete_user(uid)
            except pm.PalmResultError as e:
                if e.code != pm.MR_FAILED4_UNKNOWNUSER:
                    raise

    # -- at the door --------------------------------------------------------------------
    def wake(self) -> None:
        """The panel was touched or someone is at the door: look for a palm for a while."""
        if not self.busy:  # during an enrolment the palm shown is being enrolled
            self.awake_until = self.now() + self.settings["palm_awake_s"]

    def idle(self) -> None:
        left = self.awake_until - self.now()
        if left <= 0:
            return
        try:  # up to 5 s: the service stopping aborts it (RESET), not waits it out
            user = self.link.verify(timeout_s=max(1, min(int(left), 5)), cancel=self.stopping)
        except pm.PalmResultError as e:
            if self.stopping.is_set():
                return
            if e.code == pm.MR_FAILED4_TIMEOUT:
                self.held = False  # no palm for a while: the enrolled hand is away
                return  # no palm shown yet
            if e.code in (pm.MR_FAILED4_UNKNOWNUSER, pm.MR_FAILED4_LIVENESSCHECK):
                self.awake_until = 0.0  # one attempt per wake
                self._decide_unless_held(None)
                return
            raise
        self.awake_until = 0.0
        self._decide_unless_held(user.user_id)

    def _decide_unless_held(self, slot: int | None) -> None:
        """A palm seen before the enrolled hand was taken away is that hand (issue 15)."""
        if self.held:
            log.info("the palm of the last enrolment is still held up: not an attempt")
            return
        if slot is None:
            self.decide(None, 0.0, None)
        else:
            self.decide(self.person_at(slot), 1.0, None)

    def away(self) -> None:
        """The palm was taken away (the simulated hand is lifted; a real module: a verify
        that saw no palm): the next one shown is an attempt again."""
        self.held = False

    # -- enrolment ----------------------------------------------------------------------
    def capture_template(self, person: str, cause: str | None) -> tuple[int, bytes]:
        self.step(person, "palm-ready", cause)  # the ready light is on: hold the palm up
        last: list[str] = []

        def on_note(note: pm.Note) -> None:
            step = STEPS.get(note.prompt)
            if step is not None and last[-1:] != [step]:  # once per change, not per frame
                last.append(step)
                self.step(person, step, cause)

        try:
            uid = self.link.enroll(
                name=person,
                timeout_s=int(self.settings["enrol_timeout_s"]),
                on_note=on_note,
                cancel=self.cancel,
            )
        except pm.PalmResultError as e:
            if e.code in REFUSALS:
                raise EnrolFailed(*REFUSALS[e.code]) from e
            raise EnrolFailed("module-refused", pm.result_reason(e.code)) from e
        self.check_cancel()
        return uid, self.link.get_feature(uid)

    def after_enrol(self) -> None:
        self.awake_until = 0.0  # the next attempt needs a new wake
        self.held = True
