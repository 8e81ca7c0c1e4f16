"""Biometric templates: kept sealed by policy, opened only for the service that matches them.

A template never leaves the lock (L-10): it comes from the face or biometric service,
is sealed at rest, and goes back only to the service of its kind, e.g. to reload a
replaced fingerprint module or to match faces.
"""

from __future__ import annotations

from proto.biometric import EnrolCheck, Templates, TemplateSave, TemplatesFetch
from proto.control import Done, refused
from proto.policy import Audit
from proto.wire import Envelope
from services.base import accepts
from services.policy.people import Refusal

MATCHER = {"face": "face", "fingerprint": "biometric", "palm-vein": "biometric"}


class TemplateKeeping:
    """Mixed into PolicyService: uses its people, vault and bus counters."""

    def _not_the_matcher(self, kind: str, peer: str, what: str) -> Done | None:
        if MATCHER[kind] == peer:
            return None
        self.bus.counters.drop("unauthorized", f"{what} of {kind} from {peer}", "commands")
        return refused("unauthorized", f"{kind} templates belong to the {MATCHER[kind]} service")

    @accepts(TemplateSave, peers=("face", "biometric"))
    def on_template_save(self, env: Envelope, peer: str) -> Done:
        b = env.body
        wrong = self._not_the_matcher(b.kind, peer, "a template")
        if wrong is not None:
            return wrong
        if not b.template:
            return refused("bad-value", "an empty template")

        def seal(person: str, slot: int) -> bytes:
            return self.vault.seal(b.template, kind=b.kind, person=person, slot=slot)

        try:
            person, slot = self.people.add_template(
                b.kind, b.person, seal, role=b.role, source=peer, cause=env.trace
            )
        except Refusal as r:
            return refused(r.reason, r.detail)
        if not b.person:
            self.publish(Audit(kind="person-added", detail=b.role, person=person), env.trace)
        return Done(ok=True, detail=f"{person}:{slot}")

    @accepts(EnrolCheck, peers=("face", "biometric"))
    def on_enrol_check(self, env: Envelope, peer: str) -> Done:
        """Asked before a capture starts, so nobody is guided through poses for nothing.

        The panel's request must carry a live menu session (an administrator verified
        there, L-13): a keypad alone cannot have a stranger's finger enrolled.
        """
        b = env.body
        wrong = self._not_the_matcher(b.kind, peer, "an enrolment")
        if wrong is not None:
            return wrong
        if b.via == "keypad" and self._session(b.token) is None:
            why = f"{b.kind} enrolment without a session"
            self.bus.counters.drop("unauthorized", why, "commands")
            return refused("no-session", "the menu session has ended: enter the menu again")
        try:
            slot = self.people.free_template_slot(b.kind, b.person, role=b.role)
        except Refusal as r:
            return refused(r.reason, r.detail)
        return Done(ok=True, detail=str(slot))

    @accepts(TemplatesFetch, peers=("face", "biometric"))
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
