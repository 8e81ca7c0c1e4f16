"""Enrolment tickets (issue 11): a recogniser stores a template only under one of these.

Policy opens an enrolment for the owner or a live menu session and gives the recogniser
a ticket naming whose template it will be (a person, or a new person with a role), of
which kind, in which slot, until when. The ticket is good for one TemplateSave: a
hijacked recogniser cannot store a second template, choose the person or the role, or
keep a ticket past its time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

from services.policy.people import Refusal


@dataclass
class Ticket:
    id: str
    kind: str  # face, fingerprint, palm-vein
    person: str  # "": a new person, created with this template as their first (L-14)
    role: str  # the new person's role; "" for an existing person
    slot: int  # the person's template slot it fills (L-3)
    matcher: str  # the service the capture was asked of
    expires: float  # on policy's monotonic clock
    used: bool = False


class TicketBook:
    """The open tickets; used and expired ones are kept a while to say why they fail."""

    def __init__(self, clock: Callable[[], float], lifetime_s: float) -> None:
        self.clock, self.lifetime_s = clock, lifetime_s
        self._tickets: dict[str, Ticket] = {}

    def open(self, *, kind: str, person: str, role: str, slot: int, matcher: str) -> Ticket:
        self._forget_old()
        ticket = Ticket(secrets.token_hex(16), kind, person, role, slot, matcher,
                        expires=self.clock() + self.lifetime_s)  # fmt: skip
        self._tickets[ticket.id] = ticket
        return ticket

    def started(self, ticket: Ticket) -> None:
        """The recogniser took this capture: it runs one at a time, so its older tickets
        are void."""
        for other in list(self._tickets.values()):
            if other.matcher == ticket.matcher and other is not ticket:
                other.used = True

    def revoke(self, ticket: Ticket) -> None:
        self._tickets.pop(ticket.id, None)

    def void_person(self, person: str) -> None:
        """A person deleted: their open enrolment must not fill whoever gets the number next."""
        for ticket in list(self._tickets.values()):
            if ticket.person == person:
                del self._tickets[ticket.id]

    def take(self, ticket_id: str, kind: str) -> Ticket:
        """The ticket for one TemplateSave of this kind, now used; Refusal if it is not one.
        Presented once, it is spent whatever the outcome."""
        self._forget_old()
        ticket = self._tickets.get(ticket_id) if ticket_id else None
        if ticket is None:
            raise Refusal("no-ticket", "no enrolment was opened for this template")
        if ticket.used:
            raise Refusal("ticket-used", "this enrolment's template was already given")
        ticket.used = True
        if self.clock() > ticket.expires:
            raise Refusal("ticket-expired", "this enrolment has ended: open it again")
        if ticket.kind != kind:
            raise Refusal("wrong-kind", f"this enrolment is for a {ticket.kind} template")
        return ticket

    def clear(self) -> None:
        self._tickets.clear()

    def _forget_old(self) -> None:
        """Past their time for as long again: by then nobody asks why they fail."""
        now = self.clock()
        for ticket in list(self._tickets.values()):
            if now > ticket.expires + self.lifetime_s:
                del self._tickets[ticket.id]
