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
from services.policy.changes import Changes
from services.policy.decider import Decider
from services.policy.lock import Lock
from services.policy.people import Refusal


class Owner:
    """The owner's commands, answered from the store or applied as Changes."""

    def __init__(self, lock: Lock, decider: Decider, changes: Changes) -> None:
        self.lock, self.decider, self.changes = lock, decider, changes

    @accepts(PeopleRequest)
    def on_people(self, env: Envelope[PeopleRequest], peer: str) -> Listing:
        return Listing(items=self.lock.people.listing())

    @accepts(PersonAdd)
    def on_person_add(self, env: Envelope[PersonAdd], peer: str) -> Done:
        b = env.body
        return self.changes.add_person(b.role, b.name, b.code, source="remote", cause=env.trace)

    @accepts(PersonRename)
    def on_person_rename(self, env: Envelope[PersonRename], peer: str) -> Done:
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.rename(b.number, b.name, **e),
            "person-renamed",
            person=b.number,
            detail=b.name,
        )

    @accepts(PersonDelete)
    def on_person_delete(self, env: Envelope[PersonDelete], peer: str) -> Done:
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.delete(b.number, **e),
            "person-deleted",
            person=b.number,
        )

    @accepts(ValiditySet)
    def on_validity(self, env: Envelope[ValiditySet], peer: str) -> Done:
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.set_validity(b.number, b.start, b.end, b.slots, **e),
            "validity-set",
            person=b.number,
        )

    @accepts(DuressSet)
    def on_duress(self, env: Envelope[DuressSet], peer: str) -> Done:
        b = env.body
        answer = self.changes.rule_answer(b.code)
        if not answer.ok:
            return answer
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.set_duress(
                b.number, self.lock.hasher.digest(b.code), len(b.code), **e
            ),
            "duress-set",
            person=b.number,
        )

    @accepts(VisitorAdd)
    def on_visitor_add(self, env: Envelope[VisitorAdd], peer: str) -> Done:
        b = env.body
        answer = self.changes.rule_answer(b.code)
        if not answer.ok:
            return answer
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.add_visitor(
                b.label, self.lock.hasher.digest(b.code), len(b.code), b.start, b.end, b.uses, **e
            ),
            "visitor-added",
            detail=b.label,
        )

    @accepts(VisitorDelete)
    def on_visitor_delete(self, env: Envelope[VisitorDelete], peer: str) -> Done:
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.delete_visitor(b.label, **e),
            "visitor-deleted",
            detail=b.label,
        )

    @accepts(VisitorsRequest)
    def on_visitors(self, env: Envelope[VisitorsRequest], peer: str) -> Listing:
        return Listing(items=self.lock.people.visitors())

    @accepts(SettingsRequest)
    def on_settings(self, env: Envelope[SettingsRequest], peer: str) -> Listing:
        return Listing(items=[{"name": k, "value": v} for k, v in self.lock.settings.all().items()])

    @accepts(SettingSet)
    def on_setting_set(self, env: Envelope[SettingSet], peer: str) -> Done:
        b = env.body
        try:
            value = settings.parse(b.name, b.value)
        except Refusal as r:
            return refused(r.reason, r.detail)
        self.lock.settings.set(b.name, value, source="remote", cause=env.trace)
        if b.name == "lockout_protection":
            self.decider.lockout.enabled = value
        self.lock.publish(Audit(kind="setting", detail=f"{b.name}={value}"), env.trace)
        return OK

    @accepts(LockoutRelease)
    def on_lockout_release(self, env: Envelope[LockoutRelease], peer: str) -> Done:
        self.decider.release_lockout(source="remote", cause=env.trace)
        self.lock.publish(Audit(kind="lockout-released"), env.trace)
        return OK

    @accepts(RemoteUnlock)
    def on_remote_unlock(self, env: Envelope[RemoteUnlock], peer: str) -> Decision:
        return self.decider.judge(rules.Attempt("remote", person="owner"), env, source="remote")

    @accepts(EventsRequest)
    def on_events(self, env: Envelope[EventsRequest], peer: str) -> Listing:
        b = env.body
        rows = self.lock.store.events(b.limit, since=b.since, person=b.person, kind=b.kind)
        return Listing(items=rows)

    @accepts(AuditVerify)
    def on_audit_verify(self, env: Envelope[AuditVerify], peer: str) -> AuditReport:
        checked, bad, why = self.lock.store.verify_chain()
        return AuditReport(intact=bad is None, checked=checked, first_bad=bad, why=why)
