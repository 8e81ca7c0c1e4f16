"""The owner's commands: people, codes, settings, lockout, remote unlock and lock, events,
audit (L-18, L-32 to L-36).

They come from the owner's identities only (the trust table's OWNER: the CLI and the
app's gateway); each is logged with owner_source(peer): "app" or "remote" (issue 13).
"""

from __future__ import annotations

from typing import Any

from proto.control import OK, Done, refused
from proto.owner import (
    AuditReport,
    AuditVerify,
    CredentialRuleSet,
    DuressSet,
    EventsRequest,
    Listing,
    LockoutRelease,
    PeopleRequest,
    PersonAdd,
    PersonDelete,
    PersonRename,
    PersonStatus,
    RemoteLock,
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
from services.policy.account import PIN_LIMIT_ALARM, Account
from services.policy.actuation import Actuation
from services.policy.changes import Changes
from services.policy.decider import Decider
from services.policy.lock import Lock, owner_source
from services.policy.people import Refusal


class Owner:
    """The owner's commands, answered from the store or applied as Changes."""

    def __init__(
        self,
        lock: Lock,
        decider: Decider,
        changes: Changes,
        actuation: Actuation,
        account: Account,
    ) -> None:
        self.lock, self.decider, self.changes = lock, decider, changes
        self.actuation, self.account = actuation, account

    @accepts(PeopleRequest)
    def on_people(self, env: Envelope[PeopleRequest], peer: str) -> Listing:
        return Listing(items=self.lock.people.listing())

    @accepts(PersonAdd)
    def on_person_add(self, env: Envelope[PersonAdd], peer: str) -> Done:
        b = env.body
        source = owner_source(peer)
        return self.changes.add_person(b.role, b.name, b.code, source=source, cause=env.trace)

    @accepts(PersonRename)
    def on_person_rename(self, env: Envelope[PersonRename], peer: str) -> Done:
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.rename(b.number, b.name, **e),
            "person-renamed",
            source=owner_source(peer),
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
            source=owner_source(peer),
            person=b.number,
        )

    @accepts(PersonStatus)
    def on_person_status(self, env: Envelope[PersonStatus], peer: str) -> Done:
        """Matter's UserStatus (issue 15): disabled keeps the person, refuses them."""
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.set_status(b.number, b.enabled, **e),
            "person-enabled" if b.enabled else "person-disabled",
            source=owner_source(peer),
            person=b.number,
        )

    @accepts(CredentialRuleSet)
    def on_credential_rule(self, env: Envelope[CredentialRuleSet], peer: str) -> Done:
        """Matter's CredentialRule (issue 15): single, dual or tri."""
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.set_credential_rule(b.number, b.rule, **e),
            "credential-rule-set",
            source=owner_source(peer),
            person=b.number,
            detail=b.rule,
        )

    @accepts(ValiditySet)
    def on_validity(self, env: Envelope[ValiditySet], peer: str) -> Done:
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.set_validity(b.number, b.start, b.end, b.slots, **e),
            "validity-set",
            source=owner_source(peer),
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
            source=owner_source(peer),
            person=b.number,
        )

    @accepts(VisitorAdd)
    def on_visitor_add(self, env: Envelope[VisitorAdd], peer: str) -> Done:
        b = env.body
        window = (b.start, b.end)
        return self.changes.add_visitor(
            env, b.label, b.code, window, b.uses, source=owner_source(peer)
        )

    @accepts(VisitorDelete)
    def on_visitor_delete(self, env: Envelope[VisitorDelete], peer: str) -> Done:
        b = env.body
        return self.changes.apply(
            env,
            lambda **e: self.lock.people.delete_visitor(b.label, **e),
            "visitor-deleted",
            source=owner_source(peer),
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
        if b.name == "require_pin_for_remote" and not value and peer != "cli":
            return refused("cli-only", "only the owner's CLI may stop asking for the app PIN")
        self.lock.settings.set(b.name, value, source=owner_source(peer), cause=env.trace)
        self.decider.settings_changed()
        self.lock.publish(Audit(kind="setting", detail=f"{b.name}={value}"), env.trace)
        return OK

    @accepts(LockoutRelease)
    def on_lockout_release(self, env: Envelope[LockoutRelease], peer: str) -> Done:
        self.decider.release_lockout(source=owner_source(peer), cause=env.trace)
        self.lock.publish(Audit(kind="lockout-released"), env.trace)
        return OK

    @accepts(RemoteUnlock)
    def on_remote_unlock(self, env: Envelope[RemoteUnlock], peer: str) -> Decision:
        """L-18, L-32: remote unlock on, the lock claimed, the app PIN right and not locked
        out (issue 13), then the rules' verdict as for any unlock. Away from the door the
        answer is all the owner sees: a grant whose drive the motor did not take (busy,
        a flat battery) is answered with that reason, not as an unlock."""
        source = owner_source(peer)
        refusal = self.remote_authority(env.body.pin, env, source)
        if refusal is not None:
            return Decision(granted=False, method="remote", reason=refusal[0])
        attempt = rules.Attempt("remote", person="owner")
        decision, not_taken = self.decider.judge_drive(attempt, env, source=source)
        if not_taken is not None:  # granted, but the bolt did not move: the owner hears why
            return Decision(granted=False, method="remote", reason=not_taken, person="owner")
        return decision

    def remote_authority(self, pin: str, env: Envelope[Any], source: str) -> tuple[str, str] | None:
        """The one rule for what unlocks from away from the door (a remote unlock, passage
        mode): remote unlock on, then, while RequirePINforRemoteOperation is on (the
        default), the app PIN, checked here and counted toward its own lockout (issue 13,
        issue 15). None when allowed; else (reason, detail), already logged and announced."""
        refusal = self._remote_refusal(pin)
        if refusal is None:
            self.account.save()
            return None
        reason, detail = refusal
        self.decider.refuse(
            "remote", reason, env, source=source, detail=detail, keep=self.account.states()
        )
        if reason == "wrong-pin" and self.account.pin_locked():  # this one started it
            detail = "remote unlock locked: too many wrong app PINs"
            self.lock.alarm(PIN_LIMIT_ALARM, detail, cause=env.trace)
        return reason, detail

    def _remote_refusal(self, pin: str) -> tuple[str, str] | None:
        settings = self.lock.settings
        if not settings.get("remote_unlock"):  # before the PIN: nothing to count
            return "remote-unlock-off", "remote unlock is off in the settings (L-18)"
        if not settings.get("require_pin_for_remote"):  # the owner's choice, from the CLI
            return None
        return self.account.pin_refusal(pin)

    @accepts(RemoteLock)
    def on_remote_lock(self, env: Envelope[RemoteLock], peer: str) -> Done:
        """L-32: the bolt thrown, as by the lock button; logged `lock` on the motor's word,
        or `actuation-failed` with the reason, which is also the answer."""
        failed = self.actuation.lock_bolt(source=owner_source(peer), cause=env.trace)
        return refused(failed, f"the motor did not lock: {failed}") if failed else OK

    @accepts(EventsRequest)
    def on_events(self, env: Envelope[EventsRequest], peer: str) -> Listing:
        b = env.body
        rows = self.lock.store.events(
            b.limit, since=b.since, person=b.person, kind=b.kind, before=b.before
        )
        return Listing(items=rows)

    @accepts(AuditVerify)
    def on_audit_verify(self, env: Envelope[AuditVerify], peer: str) -> AuditReport:
        checked, bad, why = self.lock.store.verify_chain()
        return AuditReport(intact=bad is None, checked=checked, first_bad=bad, why=why)
