"""The owner's commands: people, codes, settings, lockout, events, audit (L-33 to L-36).

They come from the CLI's identity ("cli") until the app exists; nobody else may send them.
"""

from __future__ import annotations

from proto.control import OK, Done, refused
from proto.owner import (
    AuditReport,
    AuditVerify,
    DuressSet,
    EventsRequest,
    Listing,
    LockoutRelease,
    PeopleRequest,
    PersonAdd,
    PersonDelete,
    PersonRename,
    RemoteUnlock,
    SettingSet,
    SettingsRequest,
    ValiditySet,
    VisitorAdd,
    VisitorDelete,
    VisitorsRequest,
)
from proto.policy import Audit, Decision
from proto.wire import Envelope
from services.base import accepts
from services.policy import rules, settings
from services.policy.people import Refusal


class OwnerCommands:
    """Mixed into PolicyService: its store, people, settings and decisions are used here."""

    @accepts(PeopleRequest)
    def on_people(self, env: Envelope, peer: str) -> Listing:
        return Listing(items=self.people.listing())

    @accepts(PersonAdd)
    def on_person_add(self, env: Envelope, peer: str) -> Done:
        b = env.body
        return self._add_person(b.role, b.name, b.code, source="remote", cause=env.trace)

    @accepts(PersonRename)
    def on_person_rename(self, env: Envelope, peer: str) -> Done:
        b = env.body
        return self._changed(
            env,
            lambda **e: self.people.rename(b.number, b.name, **e),
            "person-renamed",
            person=b.number,
            detail=b.name,
        )

    @accepts(PersonDelete)
    def on_person_delete(self, env: Envelope, peer: str) -> Done:
        b = env.body
        return self._changed(
            env,
            lambda **e: self.people.delete(b.number, **e),
            "person-deleted",
            person=b.number,
        )

    @accepts(ValiditySet)
    def on_validity(self, env: Envelope, peer: str) -> Done:
        b = env.body
        return self._changed(
            env,
            lambda **e: self.people.set_validity(b.number, b.start, b.end, b.slots, **e),
            "validity-set",
            person=b.number,
        )

    @accepts(DuressSet)
    def on_duress(self, env: Envelope, peer: str) -> Done:
        b = env.body
        answer = self._rule_answer(b.code)
        if not answer.ok:
            return answer
        return self._changed(
            env,
            lambda **e: self.people.set_duress(
                b.number, self.hasher.digest(b.code), len(b.code), **e
            ),
            "duress-set",
            person=b.number,
        )

    @accepts(VisitorAdd)
    def on_visitor_add(self, env: Envelope, peer: str) -> Done:
        b = env.body
        answer = self._rule_answer(b.code)
        if not answer.ok:
            return answer
        return self._changed(
            env,
            lambda **e: self.people.add_visitor(
                b.label, self.hasher.digest(b.code), len(b.code), b.start, b.end, b.uses, **e
            ),
            "visitor-added",
            detail=b.label,
        )

    @accepts(VisitorDelete)
    def on_visitor_delete(self, env: Envelope, peer: str) -> Done:
        b = env.body
        return self._changed(
            env,
            lambda **e: self.people.delete_visitor(b.label, **e),
            "visitor-deleted",
            detail=b.label,
        )

    @accepts(VisitorsRequest)
    def on_visitors(self, env: Envelope, peer: str) -> Listing:
        return Listing(items=self.people.visitors())

    @accepts(SettingsRequest)
    def on_settings(self, env: Envelope, peer: str) -> Listing:
        return Listing(items=[{"name": k, "value": v} for k, v in self.settings.all().items()])

    @accepts(SettingSet)
    def on_setting_set(self, env: Envelope, peer: str) -> Done:
        b = env.body
        try:
            value = settings.parse(b.name, b.value)
        except Refusal as r:
            return refused(r.reason, r.detail)
        self.settings.set(b.name, value, source="remote", cause=env.trace)
        if b.name == "lockout_protection":
            self.lockout.enabled = value
        self.publish(Audit(kind="setting", detail=f"{b.name}={value}"), env.trace)
        return OK

    @accepts(LockoutRelease)
    def on_lockout_release(self, env: Envelope, peer: str) -> Done:
        was = self.lockout.active(self.clock())
        self.lockout.release()
        with self.store.transaction():
            self.store.append(
                "lockout-released",
                source="remote",
                cause=env.trace,
                detail="was active" if was else "was not active",
            )
            self.store.db.execute(
                "INSERT OR REPLACE INTO settings VALUES ('lockout_state', ?)",
                (self._lockout_state(),),
            )
        self.publish(Audit(kind="lockout-released"), env.trace)
        return OK

    @accepts(RemoteUnlock)
    def on_remote_unlock(self, env: Envelope, peer: str) -> Decision:
        return self._judge(rules.Attempt("remote", person="owner"), env, source="remote")

    @accepts(EventsRequest)
    def on_events(self, env: Envelope, peer: str) -> Listing:
        b = env.body
        rows = self.store.events(b.limit, since=b.since, person=b.person, kind=b.kind)
        return Listing(items=rows)

    @accepts(AuditVerify)
    def on_audit_verify(self, env: Envelope, peer: str) -> AuditReport:
        checked, bad, why = self.store.verify_chain()
        return AuditReport(intact=bad is None, checked=checked, first_bad=bad, why=why)
