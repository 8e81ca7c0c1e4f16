"""Changes to people, codes and settings, whoever asks (the owner, the menu, the first
start): the passcode rules checked, a refusal turned into the answer, a success announced."""

from __future__ import annotations

from typing import Any, Callable

from proto.control import OK, Done, refused
from proto.policy import Audit
from proto.wire import Envelope
from services.policy import passcodes
from services.policy.lock import Lock
from services.policy.people import Refusal
from services.policy.tickets import TicketBook

Change = Callable[..., None]  # called with source= and cause= for its log row


class Changes:
    def __init__(self, lock: Lock, tickets: TicketBook) -> None:
        self.lock, self.tickets = lock, tickets

    def apply(
        self,
        env: Envelope[Any],
        change: Change,
        kind: str,
        *,
        source: str,
        **audit: Any,
    ) -> Done:
        """Run a change; a refusal becomes the answer, a success is published and logged."""
        try:
            change(source=source, cause=env.trace)
        except Refusal as r:
            return refused(r.reason, r.detail)
        self.lock.reload_codes()
        if kind == "person-deleted":  # numbers are reused (L-2): their enrolment goes too
            self.tickets.void_person(audit["person"])
        self.lock.publish(Audit(kind=kind, **audit), env.trace)
        return OK

    def add_person(self, role: str, name: str, code: str, **event: Any) -> Done:
        answer = self.rule_answer(code)
        if not answer.ok:
            return answer
        lock = self.lock
        try:
            number = lock.people.add(role, name, lock.hasher.digest(code), len(code), **event)
        except Refusal as r:
            return refused(r.reason, r.detail)
        lock.reload_codes()
        lock.publish(Audit(kind="person-added", detail=role, person=number), event.get("cause"))
        return Done(ok=True, detail=number)

    def add_visitor(
        self,
        env: Envelope[Any],
        label: str,
        code: str,
        window: tuple[float | None, float | None],
        uses: int | None,
        *,
        source: str,
    ) -> Done:
        """L-9: a visitor code under L-4's rules, from the owner or a fleet's push."""
        answer = self.rule_answer(code)
        if not answer.ok:
            return answer
        lock = self.lock
        return self.apply(
            env,
            lambda **e: lock.people.add_visitor(
                label, lock.hasher.digest(code), len(code), *window, uses, **e
            ),
            "visitor-added",
            source=source,
            detail=label,
        )

    def rule_answer(self, code: str) -> Done:
        """L-4's rules on a new passcode: OK, or the first one it breaks."""
        rules = self.lock.config["passcode"]
        broken = passcodes.rule_broken(
            code, min_digits=rules["min_digits"], max_digits=rules["max_digits"]
        )
        return OK if broken is None else refused(broken, passcodes.RULES[broken])
