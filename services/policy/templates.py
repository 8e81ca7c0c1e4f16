"""Biometric templates: enrolments opened by policy, kept sealed, opened only for their matcher.

Only policy opens an enrolment (issue 11): for the owner, or for a live menu session on
the panel. It gives the recogniser a ticket, and a template is stored only under one
(services/policy/tickets.py): whose it is, and any new person's role, come from the
ticket, never from the recogniser. A match is taken only for a template that exists.

A template never leaves the lock (L-10): it comes from the face or biometric service,
is sealed at rest, and goes back only to the service of its kind, e.g. to reload a
replaced fingerprint module or to match faces.
"""

from __future__ import annotations

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
from proto.policy import Audit
from proto.wire import Envelope
from services.base import accepts
from services.policy.people import Refusal
from services.policy.tickets import Ticket

MATCHER = {"face": "face", "fingerprint": "biometric", "palm-vein": "biometric"}
ASK_RECOGNISER_S = 1.0  # within the panel's own wait for policy's answer


class TemplateKeeping:
    """Mixed into PolicyService: uses its people, vault, tickets, sessions and bus counters."""

    def _not_the_matcher(self, kind: str, peer: str, what: str) -> Done | None:
        if MATCHER[kind] == peer:
            return None
        self.bus.counters.drop("unauthorized", f"{what} of {kind} from {peer}", "commands")
        return refused("unauthorized", f"{kind} templates belong to the {MATCHER[kind]} service")

    # -- opening an enrolment -------------------------------------------------------------
    @accepts(EnrolOpen)
    def on_enrol_open(self, env: Envelope, peer: str) -> Done:
        """The owner (cli), or the panel inside a live menu session (L-13, L-14)."""
        b = env.body
        kind = KIND_OF[b.modality]
        no_authority = self._enrol_authority(peer, b.token)
        if no_authority is not None:
            self.bus.counters.drop("unauthorized", f"{kind} enrolment from {peer}", "commands")
            return no_authority
        if b.person and b.role:
            return refused("bad-value", "a role is chosen only for a new person")
        try:
            slot = self.people.free_template_slot(kind, b.person, role=b.role)
        except Refusal as r:
            return refused(r.reason, r.detail)
        ticket = self.tickets.open(kind=kind, person=b.person, role=b.role, slot=slot,
                                   matcher=MATCHER[kind])  # fmt: skip
        return self._start_capture(ticket, b.modality, peer, env)

    def _enrol_authority(self, peer: str, token: str) -> Done | None:
        if peer == "cli":  # the owner's credential until the app exists
            return None
        if peer == "keypad" and self._session(token) is not None:
            return None
        if peer == "keypad":
            return refused("no-session", "the menu session has ended: enter the menu again")
        return refused("unauthorized", f"{peer} may not open an enrolment")

    def _start_capture(self, ticket: Ticket, modality: str, peer: str, env: Envelope) -> Done:
        start = (
            FaceEnrol(ticket=ticket.id, person=ticket.person)
            if modality == "face"
            else BioEnrol(ticket=ticket.id, modality=modality, person=ticket.person)
        )
        answer = self.request(ticket.matcher, start, cause=env.trace, timeout=ASK_RECOGNISER_S)
        if answer is None or not answer.body.ok:
            self.tickets.revoke(ticket)
            if answer is None:
                return refused("no-answer", f"the {ticket.matcher} service did not answer")
            return answer.body
        self.tickets.started(ticket)
        whose = ticket.person or f"a new {ticket.role}"
        self.store.log(
            "enrol-opened",
            person=ticket.person or None,
            method=ticket.kind,
            source=peer,
            cause=env.trace,
            detail=f"{whose}, slot {ticket.slot}",
        )
        return answer.body

    # -- storing its template -------------------------------------------------------------
    @accepts(TemplateSave)
    def on_template_save(self, env: Envelope, peer: str) -> Done:
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
            return self.vault.seal(b.template, kind=b.kind, person=person, slot=slot)

        try:
            person, slot = self.people.add_template(
                b.kind, ticket.person, seal, slot=ticket.slot, role=ticket.role,
                source=peer, cause=env.trace,
            )  # fmt: skip
        except Refusal as r:
            return refused(r.reason, r.detail)
        if not ticket.person:
            self.publish(Audit(kind="person-added", detail=ticket.role, person=person), env.trace)
        return Done(ok=True, detail=f"{person}:{slot}")

    def _template_refused(self, r: Refusal, kind: str, peer: str, env: Envelope) -> Done:
        """A template without a good ticket: a recogniser acting on its own, on record."""
        self.bus.counters.drop("unauthorized", f"a {kind} template from {peer}: {r.reason}",
                               "commands")  # fmt: skip
        self.store.log("template-refused", method=kind, source=peer, reason=r.reason,
                       cause=env.trace)  # fmt: skip
        return refused(r.reason, r.detail)

    # -- a match at the door --------------------------------------------------------------
    def _match_flaw(self, match: Match) -> str | None:
        """Why a recogniser's named person cannot be taken at its word, or None (issue 11):
        a match needs a template of that kind in that slot, and needs to be said live."""
        if match.person is None:
            return None
        if not self.people.holds_template(match.method, match.person, match.slot):
            what = f"a {match.method} match for {match.person} slot {match.slot}"
            self.bus.counters.drop("unauthorized", f"{what}: no such template", "commands")
            return "no-template"
        return None if match.live else "not-live"

    # -- the templates, back to their matcher (L-10) --------------------------------------
    @accepts(TemplatesFetch)
    def on_templates(self, env: Envelope, peer: str) -> Templates | Done:
        b = env.body
        wrong = self._not_the_matcher(b.kind, peer, "a fetch")
        if wrong is not None:
            return wrong
        rows = self.people.templates(b.kind, b.offset, b.limit + 1)
        items = [
            {
                "person": person,
                "slot": slot,
                "template": self.vault.open(sealed, kind=b.kind, person=person, slot=slot),
            }
            for person, slot, sealed in rows[: b.limit]
        ]
        return Templates(items=items, more=len(rows) > b.limit)
