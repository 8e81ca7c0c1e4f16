"""A recogniser's station between the service's loop and its module (issue 15 fault 6)."""

from __future__ import annotations

import time

from hw.sim_fingerprint import FingerprintSimulator
from proto.biometric import EnrolDone
from proto.config import DEFAULTS
from services.biometric.finger import FingerStation
from services.mailbox import Mailbox


def test_issue15_l14_a_cancel_that_comes_before_the_enrolment_job_starts_ends_it_at_once():
    """`enrol --timeout` cancels as the job still waits behind the module's work: the job
    must end `cancelled` when it starts, not clear the cancel and capture for 30 s."""
    with FingerprintSimulator(seed=7) as sim:
        mail = Mailbox(wait_s=1.0)
        station = FingerStation(sim.path, mail, dict(DEFAULTS["biometric"]))
        station.connect()
        station.busy = True  # as the service's on_enrol does: cleared, then queued
        station.cancel.clear()
        station.cancel.set()  # EnrolCancel, heard before the worker took the job
        started = time.monotonic()
        station.enrol("001", "ticket", None)
        published: list = []
        mail.deliver(lambda body, cause: published.append(body), lambda *a: None)
        mail.close()
    done = [b for b in published if isinstance(b, EnrolDone)]
    assert [(d.ok, d.reason) for d in done] == [(False, "cancelled")]
    assert time.monotonic() - started < 2 and not station.busy
