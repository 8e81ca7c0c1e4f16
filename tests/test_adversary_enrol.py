"""Issue 11, items 2-4: a hijacked recogniser or keypad, holding its own real key, tries to
make an administrator, store a template policy never asked for, take the door with a
match that cannot be, or search the passcode space in one long entry.

Each attack is sent over the real mesh with the real key of the process it stands for
(tests/meshkit.Impostor for the recognisers); each must be refused with its reason, make
no person and no template, move no bolt, and count toward the lockout where the attempt
is a verification. The ticket book and the entry cap are also checked on their own.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, Iterator

import pytest

from proto.biometric import EnrolOpen, Match, TemplateSave
from proto.board import Bolt
from proto.bus import Bus
from proto.policy import (
    Alarm,
    CheckPasscode,
    CreateFirstAdmin,
    Decision,
    MenuAddPerson,
    MenuOpen,
    VerifyPasscode,
)
from services.policy.passcodes import entry_flaw
from services.policy.people import Refusal
from services.policy.tickets import TicketBook
from tests.meshkit import ADMIN_CODE, Impostor, Lock, is_type, lean_but, running

# the lock fixture's (conftest.py): the recognisers and the panel are what is attacked here
WITHOUT = lean_but("face", "biometric")
TEMPLATE = b"TEMPLATE-" + bytes(range(120))
LONG_ENTRY = ("97" * 1100 + ADMIN_CODE + "31" * 1100)[:4096]  # the admin's code inside it


# -- the parts on their own ---------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def refusal(fn, *args: Any) -> str:
    with pytest.raises(Refusal) as caught:
        fn(*args)
    return caught.value.reason


def test_issue11_a_ticket_is_good_once_for_its_kind_until_it_expires():
    clock = Clock()
    book = TicketBook(clock, lifetime_s=60.0)
    ticket = book.open(kind="fingerprint", person="", role="user", slot=1, matcher="biometric")
    assert refusal(book.take, "", "fingerprint") == "no-ticket"
    assert refusal(book.take, "f" * 32, "fingerprint") == "no-ticket"
    assert refusal(book.take, ticket.id, "palm-vein") == "wrong-kind"
    assert refusal(book.take, ticket.id, "fingerprint") == "ticket-used"  # spent on sight

    fresh = book.open(kind="face", person="001", role="", slot=2, matcher="face")
    assert book.take(fresh.id, "face") == fresh
    assert refusal(book.take, fresh.id, "face") == "ticket-used"

    late = book.open(kind="face", person="001", role="", slot=2, matcher="face")
    clock.now += 60.5
    assert refusal(book.take, late.id, "face") == "ticket-expired"
    clock.now += 61.0  # long past: forgotten altogether
    assert refusal(book.take, late.id, "face") == "no-ticket"


def test_issue11_a_recogniser_that_starts_a_capture_voids_its_older_tickets():
    book = TicketBook(Clock(), lifetime_s=60.0)
    older = book.open(kind="fingerprint", person="001", role="", slot=1, matcher="biometric")
    face = book.open(kind="face", person="001", role="", slot=1, matcher="face")
    newer = book.open(kind="palm-vein", person="001", role="", slot=1, matcher="biometric")
    book.started(newer)
    assert refusal(book.take, older.id, "fingerprint") == "ticket-used"
    assert book.take(face.id, "face") == face  # another recogniser's: untouched
    assert book.take(newer.id, "palm-vein") == newer


def test_issue11_l2_a_deleted_persons_ticket_is_void_before_the_number_is_reused():
    book = TicketBook(Clock(), lifetime_s=60.0)
    theirs = book.open(kind="face", person="002", role="", slot=1, matcher="face")
    others = book.open(kind="fingerprint", person="001", role="", slot=1, matcher="biometric")
    book.void_person("002")
    assert refusal(book.take, theirs.id, "face") == "no-ticket"
    assert book.take(others.id, "fingerprint") == others


@pytest.mark.parametrize(
    "entry, flaw",
    [("2468135", None), ("1" * 20, None), ("1" * 21, "too-long"), (LONG_ENTRY, "too-long"),
     ("", "not-digits"), ("12a456", "not-digits"), ("１２３４５６", "not-digits")],
)  # fmt: skip
def test_l19_an_entry_is_one_to_twenty_ascii_digits(entry, flaw):
    assert entry_flaw(entry, 20) == flaw


# -- through the mesh -----------------------------------------------------------------------
def people(lock: Lock) -> list[dict]:
    return json.loads(lock.cli("people", "--json").stdout)["items"]


def events(lock: Lock, kind: str) -> list[dict]:
    return json.loads(lock.cli("events", "--json", "--kind", kind).stdout)["items"]


def failures(lock: Lock) -> int:
    """Failed verifications the lockout has counted (L-20), as policy keeps them on disk."""
    db = sqlite3.connect(f"file:{lock.layout.data / 'lock.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM settings WHERE key='lockout_state'").fetchone()
    finally:
        db.close()
    return json.loads(row[0])["failures"] if row else 0


def no_bolt_moved(watch) -> bool:
    """Nothing from the motor about the bolt, up to beats of policy and motor sent now."""
    now = time.monotonic()
    for service in ("policy", "motor"):
        watch.wait_for(lambda e, s=service: e.sender == s and e.mono > now)
    return not any(isinstance(e.body, Bolt) for e in watch.seen)


@pytest.fixture
def short_tickets(tmp_path) -> Iterator[Lock]:
    with running(tmp_path / "data", "[enrol]\nticket_s = 1.0\n", without=WITHOUT) as lock:
        yield lock  # 001 is the administrator, with a passcode and nothing else


class RawTemplateSave:
    """TemplateSave as the old protocol had it, with a person and a role of the sender's
    choosing: what a hijacked recogniser sent to make an administrator."""

    TYPE = TemplateSave.TYPE

    def __init__(self, **body: Any) -> None:
        self.body = body

    def topic(self, sender: str) -> str:
        return f"biometric.{sender}.template_save"

    def to_body(self) -> dict[str, Any]:
        return self.body


@pytest.mark.slow
def test_issue11_a_recogniser_cannot_make_a_person_nor_store_a_template_unasked(short_tickets):
    lock, watch = short_tickets, short_tickets.watcher()
    face, bio = Impostor(lock, "face"), Impostor(lock, "biometric")
    try:
        old_attack = face.ask(RawTemplateSave(kind="face", person="", role="admin",
                                              template=TEMPLATE), timeout=2)  # fmt: skip
        # a person or a role in a template: not even a message, refused at the bus
        assert (old_attack.body.ok, old_attack.body.reason) == (False, "bad-field")
        assert "unknown fields ['person', 'role']" in old_attack.body.detail
        for impostor, kind in ((face, "face"), (bio, "fingerprint"), (bio, "palm-vein")):
            for ticket in ("", "0" * 32):  # none, or made up
                answer = impostor.ask(TemplateSave(kind=kind, ticket=ticket, template=TEMPLATE))
                assert (answer.body.ok, answer.body.reason) == (False, "no-ticket"), answer.body
        stolen = bio.ask(TemplateSave(kind="face", ticket="", template=TEMPLATE))
        assert stolen.body.reason == "unauthorized"  # faces are the face service's

        start = face.enrolment(EnrolOpen(modality="face", person="001"))
        assert start.body.person == "001" and start.body.ticket
        # a beat of policy's stamped a second after it asked for the capture: the ticket,
        # made just before, is past its time
        watch.wait_for(lambda e: e.sender == "policy" and e.mono > start.mono + 1.0)
        ticket = start.body.ticket
        late = face.ask(TemplateSave(kind="face", ticket=ticket, template=TEMPLATE))
        assert (late.body.ok, late.body.reason) == (False, "ticket-expired")
    finally:
        face.close()
        bio.close()
    listed = people(lock)
    assert [(p["number"], p["role"]) for p in listed] == [("001", "admin")]
    assert (listed[0]["faces"], listed[0]["fingerprints"], listed[0]["palms"]) == (0, 0, 0)
    refused = events(lock, "template-refused")
    assert len(refused) == 7 and {e["reason"] for e in refused} == {"no-ticket", "ticket-expired"}
    assert failures(lock) == 0  # not a verification: nothing for the lockout
    assert no_bolt_moved(watch)


@pytest.fixture
def bio_impostor(ready_lock) -> Iterator[tuple[Lock, Impostor]]:
    impostor = Impostor(ready_lock, "biometric")
    try:
        yield ready_lock, impostor
    finally:
        impostor.close()


@pytest.mark.slow
def test_issue11_a_ticket_stores_one_template_of_its_kind_for_whom_policy_named(bio_impostor):
    lock, bio = bio_impostor
    start = bio.enrolment(EnrolOpen(modality="finger", person="001"))
    palm = bio.ask(TemplateSave(kind="palm-vein", ticket=start.body.ticket, template=TEMPLATE))
    assert (palm.body.ok, palm.body.reason) == (False, "wrong-kind")
    again = bio.ask(TemplateSave(kind="fingerprint", ticket=start.body.ticket, template=TEMPLATE))
    assert again.body.reason == "ticket-used"  # the wrong kind spent it

    start = bio.enrolment(EnrolOpen(modality="finger", person="001"))
    saved = bio.ask(TemplateSave(kind="fingerprint", ticket=start.body.ticket, template=TEMPLATE))
    assert (saved.body.ok, saved.body.detail) == (True, "001:1")
    again = bio.ask(TemplateSave(kind="fingerprint", ticket=start.body.ticket, template=TEMPLATE))
    assert again.body.reason == "ticket-used"

    # a new person is made by policy, with the role the owner chose, never the recogniser
    start = bio.enrolment(EnrolOpen(modality="palm", role="user"))
    assert start.body.person == ""
    saved = bio.ask(TemplateSave(kind="palm-vein", ticket=start.body.ticket, template=TEMPLATE))
    assert (saved.body.ok, saved.body.detail) == (True, "002:1")
    listed = {p["number"]: p for p in people(lock)}
    assert [(n, p["role"]) for n, p in listed.items()] == [("001", "admin"), ("002", "user")]
    assert (listed["001"]["fingerprints"], listed["001"]["palms"]) == (1, 0)
    assert (listed["002"]["fingerprints"], listed["002"]["palms"]) == (0, 1)

    # 002 deleted while an enrolment of theirs is open: it must not land on the next 002
    start = bio.enrolment(EnrolOpen(modality="finger", person="002"))
    lock.cli("people", "delete", "002")
    lock.cli("people", "add", "bob", "--code-stdin", input="135792\n")
    late = bio.ask(TemplateSave(kind="fingerprint", ticket=start.body.ticket, template=TEMPLATE))
    assert (late.body.ok, late.body.reason) == (False, "no-ticket")
    assert {p["number"]: p["fingerprints"] for p in people(lock)} == {"001": 1, "002": 0}


@pytest.mark.slow
def test_issue11_a_match_needs_the_persons_template_in_that_slot_and_to_be_live(bio_impostor):
    lock, bio = bio_impostor
    watch = lock.watcher()
    start = bio.enrolment(EnrolOpen(modality="finger", person="001"))
    saved = bio.ask(TemplateSave(kind="fingerprint", ticket=start.body.ticket, template=TEMPLATE))
    assert saved.body.detail == "001:1"
    impossible = [
        (Match(method="palm-vein", person="001", slot=1, live=True), "no-template"),  # no palm
        (Match(method="fingerprint", person="001", slot=2, live=True), "no-template"),
        (Match(method="fingerprint", person="009", slot=1, live=True), "no-template"),
        (Match(method="fingerprint", person="001", slot=1), "not-live"),  # live not said
    ]
    for count, (match, reason) in enumerate(impossible, start=1):
        decision = bio.ask(match).body
        assert isinstance(decision, Decision), decision
        assert (decision.granted, decision.reason) == (False, reason), match
        assert failures(lock) == count  # each is a failed attempt (L-20)
    assert no_bolt_moved(watch)
    logged = [e["reason"] for e in events(lock, "refused")]
    assert logged[:4] == ["not-live", "no-template", "no-template", "no-template"]

    # the same recogniser, the match that is possible: so the refusals above are not blanket
    possible = bio.ask(Match(method="fingerprint", person="001", slot=1, live=True)).body
    assert (possible.granted, possible.person) == (True, "001")
    watch.wait_for(is_type(Bolt, state="unlocked"))
    assert failures(lock) == 0


@pytest.mark.slow
def test_issue11_l19_l20_a_passcode_entry_is_capped_everywhere_and_each_refusal_counts(
    ready_lock,
):
    lock, watch = ready_lock, ready_lock.watcher()
    with Bus(lock.layout, "keypad") as keypad:  # a hijacked panel, with its real key
        policy = keypad.client("policy")

        def ask(body) -> Any:
            return policy.request(body, timeout=5).body

        tries = [
            (MenuOpen(entry=LONG_ENTRY), "too-long"),  # ~4,091 six-digit windows at once
            (MenuOpen(entry=ADMIN_CODE + "#"), "not-digits"),
            (VerifyPasscode(entry=LONG_ENTRY), "too-long"),
            (CheckPasscode(code=LONG_ENTRY), "too-long"),
        ]
        for count, (body, reason) in enumerate(tries, start=1):
            answer = ask(body)
            assert (answer.reason, getattr(answer, "ok", False)) == (reason, False), body
            assert failures(lock) == count
        fifth = ask(MenuAddPerson(token="forged", role="admin", code=LONG_ENTRY,
                                  repeat=LONG_ENTRY))  # fmt: skip
        assert (fifth.ok, fifth.reason) == (False, "too-long")
        watch.wait_for(is_type(Alarm, code="wrong-code-entry-limit"))  # five: locked out
        capped = ask(CreateFirstAdmin(code=LONG_ENTRY, repeat=LONG_ENTRY))
        assert (capped.ok, capped.reason) == (False, "lockout")
        assert ask(MenuOpen(entry=ADMIN_CODE)).reason == "lockout"  # even the right code
    assert [(p["number"], p["role"]) for p in people(lock)] == [("001", "admin")]
    assert no_bolt_moved(watch)
    reasons = [e["reason"] for e in events(lock, "refused")]
    assert reasons.count("too-long") == 4 and reasons.count("not-digits") == 1
