"""One module and the thread that drives it: connect, keep in step with policy, enrol, verify.

Module commands block for seconds (a capture waits for a finger), so each module gets a
worker thread; the service's loop stays free for requests and heartbeats. The worker
runs one job at a time from its queue; when it has none it looks for a finger or palm.
A module that stops answering is marked faulty and reconnected until it answers again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, NamedTuple

from proto.biometric import (
    KIND_OF,
    EnrolDone,
    EnrolStep,
    Match,
    Templates,
    TemplateSave,
    TemplatesFetch,
)
from services.biometric import blob
from services.mailbox import Mailbox

log = logging.getLogger(__name__)

Job = Callable[[], None]


class Owner(NamedTuple):
    """Whose template a module slot holds, and its slot in policy (named in a Match)."""

    person: str
    slot: int


class Cancelled(Exception):
    """Back was pressed during an enrolment."""


class EnrolFailed(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class Station:
    """Subclasses say how to talk to their module: LINK_ERRORS, connect(), the slots,
    idle() (verification) and capture_template() (enrolment)."""

    MODALITY = ""
    LINK_ERRORS: tuple[type[Exception], ...] = ()

    def __init__(self, mail: Mailbox, settings: dict[str, Any]) -> None:
        self.mail, self.settings = mail, settings
        self.kind = KIND_OF[self.MODALITY]
        self.state = "connecting"
        self.owners: dict[int, Owner] = {}  # module slot: whose
        self.cancel = threading.Event()
        self.busy = False  # an enrolment is running
        self.stats: dict[str, int] = {"attempts": 0, "matches": 0, "faults": 0, "reconnects": 0}
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._connected = False
        self.stopping = threading.Event()  # a blocking module command watches it
        self._thread = threading.Thread(target=self._run, name=self.MODALITY, daemon=True)

    # -- from the service's loop ------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.cancel.set()
        self._thread.join(timeout=3)

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    @property
    def healthy(self) -> bool:
        return self._connected

    # -- the worker -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping.is_set():
            if not self._connected:
                self._reconnect()
                continue
            try:
                job = self._jobs.get(timeout=self.settings["idle_poll_s"])
            except queue.Empty:
                job = self.idle
            try:
                job()
            except self.LINK_ERRORS as e:
                self._fault(e)
            except Exception:
                log.exception("%s: a job failed", self.MODALITY)

    def _reconnect(self) -> None:
        try:
            self.connect()
            self._reconcile()
        except self.LINK_ERRORS as e:
            self._fault(e)
            self.stopping.wait(self.settings["retry_s"])
            return
        if self.stats["faults"]:
            self.stats["reconnects"] += 1
            log.info("%s module answers again", self.MODALITY)
        self._connected = True
        self.state = "ready"

    def _fault(self, e: Exception) -> None:
        if self._connected or self.state != f"faulty: {e}":
            log.error("%s module faulty: %s", self.MODALITY, e)
            self.stats["faults"] += 1
        self._connected = False
        self.state = f"faulty: {e}"

    def _reconcile(self) -> None:
        """Make the module hold exactly policy's templates of this kind (L-10: policy's
        sealed copies are the truth; a replaced or wiped module is re-loaded from them)."""
        kept: dict[int, tuple[str, bytes]] = {}
        owners: dict[int, Owner] = {}
        offset = 0
        while True:
            answer = self.mail.request("policy", TemplatesFetch(kind=self.kind, offset=offset))
            if answer is None or not isinstance(answer.body, Templates):
                raise self.LINK_ERRORS[0]("policy did not give the templates to reload")
            for item in answer.body.items:
                try:
                    slot, template = blob.unwrap(item["template"])
                except blob.BlobError as e:
                    log.error("%s template of %s unusable: %s", self.kind, item["person"], e)
                    continue
                kept[slot] = (item["person"], template)
                owners[slot] = Owner(item["person"], item["slot"])
            if not answer.body.more:
                break
            offset += len(answer.body.items)
        self.load_templates(kept)
        self.owners = owners

    # -- what subclasses share ------------------------------------------------------------
    def step(self, person: str, step: str, cause: str | None, **params: str) -> None:
        self.mail.publish(
            EnrolStep(modality=self.MODALITY, step=step, person=person, params=params), cause
        )

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def decide(self, owner: Owner | None, score: float, cause: str | None) -> None:
        """Tell policy who is at the door; it decides, logs and unlocks (or not). The
        module's own checks stand for liveness (the palm module's liveness check)."""
        if self.busy:  # an enrolment was asked while this was read: the hand is for it
            log.info("%s read as an enrolment began: not an attempt (issue 15)", self.kind)
            return
        self.stats["attempts"] += 1
        self.stats["matches"] += owner is not None
        person, slot = owner if owner is not None else (None, 0)
        match = Match(method=self.kind, person=person, slot=slot, score=score, live=True)
        answer = self.mail.request("policy", match, cause)
        if answer is None:
            log.warning("policy did not answer a %s match: the door stays shut", self.kind)

    def person_at(self, slot: int) -> Owner | None:
        """Whose template a module slot holds; a slot nobody owns (left by a crash between
        the module and policy) is removed, and counts as no match."""
        owner = self.owners.get(slot)
        if owner is None:
            log.warning("%s slot %d belongs to no one: removing it", self.kind, slot)
            self.remove_slots([slot])
        return owner

    def enrol(self, person: str, ticket: str, cause: str | None) -> None:
        """The job behind BioEnrol, which policy opened (issue 11): capture, refuse
        duplicates, store, mirror to policy under the ticket, which says whose it is;
        person is only for the steps shown."""
        self.busy = True
        try:
            self.check_cancel()  # cancelled while the job waited for the module (issue 15)
            slot, template = self.capture_template(person, cause)
            self._mirror(person, ticket, slot, template, cause)
        except Cancelled:
            self._done(person, False, "cancelled", "back was pressed", cause)
        except EnrolFailed as e:
            self._done(person, False, e.reason, e.detail, cause)
        except self.LINK_ERRORS as e:
            self._done(person, False, "module-fault", str(e), cause)
            raise
        finally:
            self.busy = False
            self.after_enrol()

    def _mirror(
        self, person: str, ticket: str, slot: int, template: bytes, cause: str | None
    ) -> None:
        save = TemplateSave(kind=self.kind, ticket=ticket, template=blob.wrap(slot, template))
        answer = self.mail.request("policy", save, cause)
        if answer is None or not answer.body.ok:
            self.remove_slots([slot])  # the module must not hold what policy does not
            reason = "policy-silent" if answer is None else answer.body.reason
            detail = "" if answer is None else answer.body.detail
            self._done(person, False, reason, detail, cause)
            return
        number, _, policy_slot = answer.body.detail.partition(":")
        self.owners[slot] = Owner(number, int(policy_slot))
        self._done(number, True, "", policy_slot, cause, new_person=not person)

    def _done(
        self,
        person: str,
        ok: bool,
        reason: str,
        detail: str,
        cause: str | None,
        *,
        new_person: bool = False,
    ) -> None:
        log.info("%s enrolment of %s: %s", self.kind, person, "stored" if ok else reason)
        done = EnrolDone(modality=self.MODALITY, person=person, ok=ok, reason=reason,
                         detail=detail, new_person=new_person)  # fmt: skip
        self.mail.publish(done, cause)

    def forget(self, person: str) -> None:
        """The job after a person was deleted in policy: their module slots go too."""
        slots = [s for s, owner in self.owners.items() if owner.person == person]
        if slots:
            self.remove_slots(slots)
        for s in slots:
            self.owners.pop(s, None)

    def wipe(self) -> None:
        """After a factory reset: nothing of anyone stays in the module."""
        self.remove_all()
        self.owners = {}

    def wait(self, seconds: float) -> None:
        """Sleep; during an enrolment, back (or shutdown) ends the sleep and the enrolment."""
        if not self.busy:
            self.stopping.wait(seconds)
        elif self.cancel.wait(seconds) or self.stopping.is_set():
            raise Cancelled()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    # -- for subclasses ---------------------------------------------------------------------
    def connect(self) -> None:
        raise NotImplementedError

    def load_templates(self, kept: dict[int, tuple[str, bytes]]) -> None:
        raise NotImplementedError

    def remove_slots(self, slots: list[int]) -> None:
        raise NotImplementedError

    def remove_all(self) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        raise NotImplementedError

    def capture_template(self, person: str, cause: str | None) -> tuple[int, bytes]:
        raise NotImplementedError

    def after_enrol(self) -> None:
        """The finger or palm just captured is still there: it must not count as an attempt."""
