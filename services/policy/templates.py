"""Biometric templates: enrolments opened by policy, kept sealed, opened only for their matcher.

Only policy opens an enrolment (issue 11): for the owner, or for a live menu session on
the panel. It gives the recogniser a ticket, and a template is stored only under one
(services/policy/tickets.py): whose it is, and any new person's role, come from the
ticket, never from the recogniser. A match is taken only for a template that exists,
and decided like any credential, unless SET armed the menu for it.

A template never leaves the lock (L-10): it comes from the face or biometric service,
is sealed at rest, and goes back only to the service of its kind, e.g. to reload a
replaced fingerprint module or to match faces.
"""

from __future__ import annotations

from typing import Any

from proto.biometric import (
    KIND_OF,
    BioEnrol,
    EnrolOpen,
    FaceEnrol,
    Match,
    Templates,
    TemplateSave,
    TemplatesFetch,
)
from proto.control import Done, refused
from proto.policy import Audit, Decision
from proto.trust import OWNER
from proto.wire import Envelope
from services.base import accepts
from services.policy import rules
from services.policy.decider import Decider
from services.policy.lock import Lock, answered, owner_source
from services.policy.menu import Menu
from services.policy.people import Refusal
from services.policy.tickets import Ticket, TicketBook

MATCHER = {"face": "face", "fingerprint": "biometric", "palm-vein": "biometric"}
PART_OF = {"face": "camera", "fingerprint": "fingerprint module", "palm-vein": "palm module"}
ASK_RECOGNISER_S = 1.0  # within the panel's own wait for policy's answer


class Biometrics:
    """Enrolments under tickets, the sealed templates, and matches at the door."""

    def __init__(self, lock: Lock, tickets: TicketBook, decider: Decider, menu: Menu) -> None:
        self.lock, self.tickets, self.decider, self.menu = lock, tickets, decider, menu

    def _not_the_matcher(self, kind: str, peer: str, what: str) -> Done | None:
        if MATCHER[kind] == peer:
            return None
        self.lock.drop("unauthorized", f"{what} of {kind} from {peer}", "commands")
        return refused("unauthorized", f"{kind} templates belong to the {MATCHER[kind]} service")

    # -- opening an enrolment -------------------------------------------------------------
    @accepts(EnrolOpen)
    def on_enrol_open(self, env: Envelope[EnrolOpen], peer: str) -> Done:
        """The owner (cli), or the panel inside a live menu session (L-13, L-14)."""
        b = env.body
        kind = KIND_OF[b.modality]
        no_authority = self._enrol_authority(peer, b.token)
        if no_authority is not None:
            self.lock.drop("unauthorized", f"{kind} enrolment from {peer}", "commands")
            return no_authority
        if b.person and b.role:
            return refused("bad-value", "a role is chosen only for a new person")
        if MATCHER[kind] in self.lock.config["mesh"]["without"]:  # made without it
            return refused("not-fitted", f"this lock has no {PART_OF[kind]}")
        try:
            slot = self.lock.people.free_template_slot(kind, b.person, role=b.role)
        except Refusal as r:
            return refused(r.reason, r.detail)
        ticket = self.tickets.open(kind=kind, person=b.person, role=b.role, slot=slot,
                                   matcher=MATCHER[kind])  # fmt: skip
        return self._start_capture(ticket, b.modality, peer, env)

    def _enrol_authority(self, peer: str, token: str) -> Done | None:
        if peer in OWNER:  # the CLI and the app's gateway (issue 13)
            return None
        if peer == "keypad" and self.menu.session(token) is not None:
            return None
        if peer == "keypad":
            return refused("no-session", "the menu session has ended: enter the menu again")
        return refused("unauthorized", f"{peer} may not open an enrolment")

    def _start_capture(self, ticket: Ticket, modality: str, peer: str, env: Envelope[Any]) -> Done:
        start = (
            FaceEnrol(ticket=ticket.id, person=ticket.person)
            if modality == "face"
            else BioEnrol(ticket=ticket.id, modality=modality, person=ticket.person)
        )
        answer = self.lock.request(ticket.matcher, start, cause=env.trace, timeout=ASK_RECOGNISER_S)
        done = answered(answer)
        if done is None or not done.ok:
            self.tickets.revoke(ticket)
            if done is None:
                return refused("no-answer", f"the {ticket.matcher} service did not answer")
            return done
        self.tickets.started(ticket)
        whose = ticket.person or f"a new {ticket.role}"
        self.lock.store.log(
            "enrol-opened",
            person=ticket.person or None,
            method=ticket.kind,
            source=owner_source(peer),
            cause=env.trace,
            detail=f"{whose}, slot {ticket.slot}",
        )
        return done

    # -- storing its template -------------------------------------------------------------
    @accepts(TemplateSave)
    def on_template_save(self, env: Envelope[TemplateSave], peer: str) -> Done:
        b = env.body
        wrong = self._not_the_matcher(b.kind, peer, "a template")
        if wrong is not None:
            return wrong
        try:
            ticket = self.tickets.take(b.ticket, b.kind)
        except Refusal as r:
            return self._template_refused(r, b.kind, peer, env)
        if not b.template:
            return refused("bad-value", "an empty template")

        def seal(person: str, slot: int) -> bytes:
            return self.lock.vault.seal(b.template, kind=b.kind, person=person, slot=slot)

        try:
            person, slot = self.lock.people.add_template(
                b.kind, ticket.person, seal, slot=ticket.slot, role=ticket.role,
                source=peer, cause=env.trace,
            )  # fmt: skip
        except Refusal as r:
            return refused(r.reason, r.detail)
        if not ticket.person:
            added = Audit(kind="person-added", detail=ticket.role, person=person)
            self.lock.publish(added, env.trace)
        return Done(ok=True, detail=f"{person}:{slot}")

    def _template_refused(self, r: Refusal, kind: str, peer: str, env: Envelope[Any]) -> Done:
        """A template without a good ticket: a recogniser acting on its own, on record."""
        self.lock.drop("unauthorized", f"a {kind} template from {peer}: {r.reason}", "commands")
        self.lock.store.log("template-refused", method=kind, source=peer, reason=r.reason,
                            cause=env.trace)  # fmt: skip
        return refused(r.reason, r.detail)

    # -- a match at the door --------------------------------------------------------------
    @accepts(Match)
    def on_match(self, env: Envelope[Match], peer: str) -> Decision | Done:
        """A face, finger or palm at the door: the recogniser says who, policy decides."""
        b = env.body
        wrong = self._not_the_matcher(b.method, peer, "a match")
        if wrong is not None:
            return wrong
        if self.lock.initial:
            return Decision(granted=False, method=b.method, reason="initial-state")
        why = self._match_flaw(b)  # a person without that template, or not live (issue 11)
        if b.person is None or why is not None:  # a photo that matches fails too (L-20)
            attempt = rules.Attempt(b.method)
        else:
            attempt = rules.Attempt(b.method, person=b.person,
                                    validity=self.lock.people.validity(b.person))  # fmt: skip
        if self.menu.armed():  # SET was just pressed: this verifies for the menu (L-13)
            return self.menu.match(attempt, env, peer)
        return self.decider.judge(attempt, env, source=peer, why=why)

    def _match_flaw(self, match: Match) -> str | None:
        """Why a recogniser's named person cannot be taken at its word, or None (issue 11):
        a match needs a template of that kind in that slot, and needs to be said live."""
        if match.person is None:
            return None
        if not self.lock.people.holds_template(match.method, match.person, match.slot):
            what = f"a {match.method} match for {match.person} slot {match.slot}"
            self.lock.drop("unauthorized", f"{what}: no such template", "commands")
            return "no-template"
        return None if match.live else "not-live"

    # -- the templates, back to their matcher (L-10) --------------------------------------
    @accepts(TemplatesFetch)
    def on_templates(self, env: Envelope[TemplatesFetch], peer: str) -> Templates | Done:
        b = env.body
        wrong = self._not_the_matcher(b.kind, peer, "a fetch")
        if wrong is not None:
            return wrong
        rows = self.lock.people.templates(b.kind, b.offset, b.limit + 1)
        items = [
            {
                "person": person,
                "slot": slot,
                "template": self.lock.vault.open(sealed, kind=b.kind, person=person, slot=slot),
            }
            for person, slot, sealed in rows[: b.limit]
        ]
        return Templates(items=items, more=len(rows) > b.limit)
