"""Deciding: every credential's verdict under the rules, logged with the lockout's state,
then acted on and announced; and the modes the next unlock from outside ends (L-21, L-22)."""

from __future__ import annotations

import dataclasses
from typing import Any

from proto.board import Siren
from proto.control import Done, refused
from proto.policy import Audit, Decision, FactorsNeeded, LockoutNotice
from proto.schema import Message
from proto.wire import Envelope
from services.policy import lockouts, passcodes, rules
from services.policy.actuation import Actuation
from services.policy.lock import Lock
from services.policy.modes import mode_now
from services.policy.people import CodeRef

# unlocks from outside (manual: the mechanical key; app: the owner's app, bridge: MQTT's
# remote unlock, issue 13; ble: a phone key at the door, issue 16)
OUTSIDE = ("keypad", "remote", "app", "bridge", "biometric", "face", "manual", "ble")
UNTIL_OUTSIDE = ("leaving-home", "mute")  # modes the next unlock from outside ends


class Decider:
    """The only path to an unlock: the rules' verdict, the lockout it counts (L-20)."""

    def __init__(self, lock: Lock, actuation: Actuation) -> None:
        self.lock, self.actuation = lock, actuation
        self.lockout = self.restored_lockout()
        self.factors = rules.Factors(lock.config["lockout"]["factor_window_s"])  # issue 15
        self._was_locked = self.locked_out()  # an end is announced once (issue 15, L-20)

    # -- the lockout survives restarts (L-20) ---------------------------------------------
    def restored_lockout(self) -> rules.Lockout:
        """Restored at full length: pulling the power never shortens it."""
        settings = self.lock.settings
        lockout = lockouts.door_lockout(
            self.lock.config["lockout"],
            enabled=settings.get("lockout_protection"),
            limit=settings.get("wrong_code_entry_limit"),
            duration_s=settings.get("user_code_temporary_disable_time_s"),
        )
        saved = self.lock.store.setting("lockout_state")
        return lockouts.restored(lockout, saved, self.lock.clock())

    def settings_changed(self) -> None:
        """The owner's lockout settings, taken at once (L-36, issue 15)."""
        settings, lockout = self.lock.settings, self.lockout
        lockout.enabled = settings.get("lockout_protection")
        lockout.limit = settings.get("wrong_code_entry_limit")
        lockout.duration_s = settings.get("user_code_temporary_disable_time_s")

    def operating_mode(self) -> str:
        return mode_now(self.lock)

    def forget(self) -> None:
        """After a factory reset: the lockout as the erased store has it."""
        self.lockout = self.restored_lockout()
        self.factors.clear()
        self._was_locked = False

    def locked_out(self) -> bool:
        return self.lockout.active(self.lock.clock())

    def _lockout_state(self) -> str:
        return lockouts.saved(self.lockout, self.lock.clock())

    def release_lockout(self, *, source: str, cause: str) -> None:
        """The owner lifts the lockout; logged with the state it leaves."""
        was = self.locked_out()
        self.lockout.release()
        self._was_locked = False  # its end is this row, and said now
        self.lock.publish(LockoutNotice(active=False), cause)
        with self.lock.store.transaction():
            self.lock.store.append(
                "lockout-released",
                source=source,
                cause=cause,
                detail="was active" if was else "was not active",
            )
            self.lock.store.put_setting("lockout_state", self._lockout_state())

    # -- the attempt ----------------------------------------------------------------------
    def attempt(self, method: str, ref: CodeRef | None) -> rules.Attempt:
        if ref is None:
            return rules.Attempt(method)
        people = self.lock.people
        if ref.kind == "visitor":
            return rules.Attempt(method, visitor=people.visitor(ref.owner))
        return rules.Attempt(
            method,
            person=ref.owner,
            validity=people.validity(ref.owner),
            duress=ref.kind == "duress",
        )

    def entry_refused(self, env: Envelope[Any], *entries: str) -> Done | None:
        """L-19's cap on every passcode entry the panel sends, None when all are within it.
        The panel stops typing at the cap, so an entry beyond it is a forgery, refused as
        a failed verification that counts toward the lockout (L-20): a long entry would
        try thousands of codes for the price of one failure."""
        cap = self.lock.config["keypad"]["max_digits"]
        flaw = next((f for e in entries if (f := passcodes.entry_flaw(e, cap))), None)
        if flaw is None:
            return None
        verdict = self.verify_only(rules.Attempt("pin"), env, source="keypad", why=flaw)
        return refused(verdict.reason, f"a passcode entry is 1 to {cap} digits")

    # -- deciding -------------------------------------------------------------------------
    def judge(
        self, attempt: rules.Attempt, env: Envelope[Any], *, source: str, why: str | None = None
    ) -> Decision:
        """judge_drive's decision: the panel and the recognisers hear a drive that was not
        taken from policy's ActuationFailed, as the door says it."""
        return self.judge_drive(attempt, env, source=source, why=why)[0]

    def judge_drive(
        self, attempt: rules.Attempt, env: Envelope[Any], *, source: str, why: str | None = None
    ) -> tuple[Decision, str | None]:
        """Decide, then write it down, then act, then say it: what is acted on is on disk.
        The decision, stamped first, is the drive's cause; it is published as soon as the
        motor has been asked, while the motor works: publishing first held the bolt back
        by a fifth of the time outside the write (issue 12, `lockmesh bench policy`).
        why names a refusal more precisely than the rules can (a face that is not live).
        A grant is logged `granted`; the unlock, when the motor has done it (issue 11).
        Also why a granted drive was not taken (the motor busy, the battery flat), or None."""
        verdict = self.verify(attempt, env, source=source, success="granted", why=why)
        decision = Decision(
            granted=verdict.granted,
            method=attempt.method,
            reason=verdict.reason,
            person=attempt.person,
        )
        sent = self.lock.stamp_event(decision, env.trace)
        said: list[Envelope[Message]] = []

        def say() -> None:  # once, and before anything else is published (its sequence)
            if not said:
                said.append(self.lock.publish_stamped(sent))

        not_taken = None
        if verdict.granted:
            not_taken = self.actuation.actuate(
                "unlock",
                source=source,
                cause=sent.id,
                log_cause=env.trace,
                person=attempt.person,
                method=attempt.method,
                detail=f"visitor {attempt.visitor.label}" if attempt.visitor else None,
                ordered=say,
            )
        say()
        self.announce(verdict, attempt, sent.id)
        if verdict.granted:
            self.outside_success(source, sent.id)
        return decision, not_taken

    def announce(self, verdict: rules.Verdict, attempt: rules.Attempt, cause: str) -> None:
        """What a verdict sets off beside its answer: its alarm; a lockout's start at the
        door (the siren, and the panel says "system locked", L-20); what a multi-factor
        attempt still needs (issue 15)."""
        if verdict.alarm is not None:
            self.lock.alarm(verdict.alarm, verdict.reason, person=attempt.person, cause=cause)
        if verdict.alarm in ("wrong-code-entry-limit", "daily-failure-limit"):
            self._lockout_began(cause)
        if verdict.reason == "more-factors" and attempt.person is not None:
            shown = sorted(self.factors.methods)
            left = self.factors.left(self.lock.clock())
            needed = FactorsNeeded(person=attempt.person, still=verdict.still, seconds=left,
                                   shown=shown)  # fmt: skip
            self.lock.publish(needed, cause)

    def _lockout_began(self, cause: str) -> None:
        self._was_locked = True
        left = max(0.0, (self.lockout.until or 0.0) - self.lock.clock())
        self.lock.publish(LockoutNotice(active=True, seconds=left), cause)
        self.lock.request("motor", Siren(seconds=self.lock.config["lockout"]["siren_s"]),
                          cause=cause, timeout=0.5)  # fmt: skip

    # -- what time ends: a lockout, a half-done multi-factor attempt (issue 15) -----------
    def tick(self, now: float) -> None:
        expired = self.factors.expired(now)
        if expired is not None:
            self._factor_timed_out(expired, now)
        locked = self.lockout.active(now)
        if self._was_locked and not locked:
            self._was_locked = False
            with self.lock.store.transaction():
                self.lock.store.append("lockout-ended", source="policy", detail="time")
                self.lock.store.put_setting("lockout_state", self._lockout_state())
            self.lock.publish(LockoutNotice(active=False))

    def _factor_timed_out(self, person: str, now: float) -> None:
        """A half-done multi-factor attempt counts as one failure (issue 15)."""
        trip = self.lockout.fail(now)
        with self.lock.store.transaction():
            self.lock.store.append("refused", person=person, source="keypad",
                                   reason="factor-timeout",
                                   detail="a multi-factor attempt was not finished")  # fmt: skip
            self.lock.store.put_setting("lockout_state", self._lockout_state())
        event = self.lock.publish(FactorsNeeded(person=person, still=0, timed_out=True))
        if trip is not None:
            self.lock.alarm(trip, "factor-timeout", person=person, cause=event.id)
            self._lockout_began(event.id)

    def refuse(
        self,
        method: str,
        reason: str,
        env: Envelope[Any],
        *,
        source: str,
        detail: str = "",
        keep: dict[str, str] | None = None,
    ) -> Decision:
        """A refusal decided before the rules are asked (the app's PIN, issue 13): logged
        and announced as the rules' refusals are, with keep (state that counted it, such
        as a lockout's) in the same transaction; nothing counts toward L-20's lockout."""
        store = self.lock.store
        with store.transaction():
            store.append("refused", method=method, source=source, reason=reason,
                         cause=env.trace, detail=detail or None)  # fmt: skip
            for key, value in (keep or {}).items():
                store.put_setting(key, value)
        decision = Decision(granted=False, method=method, reason=reason)
        self.lock.publish(decision, env.trace)
        return decision

    def verify_only(
        self, attempt: rules.Attempt, env: Envelope[Any], *, source: str, why: str | None = None
    ) -> rules.Verdict:
        """A verification that opens nothing (the menu's, L-13); failures still count (L-20)."""
        verdict = self.verify(attempt, env, source=source, success="menu-opened", why=why)
        self.announce(verdict, attempt, env.trace)
        return verdict

    def verify(
        self,
        attempt: rules.Attempt,
        env: Envelope[Any],
        *,
        source: str,
        success: str,
        why: str | None = None,
    ) -> rules.Verdict:
        """The verdict, logged with the lockout's state in one transaction."""
        lock = self.lock
        attempt = self.standing(attempt)
        expired = self.factors.expired(lock.clock())  # before this one joins an attempt
        if expired is not None:
            self._factor_timed_out(expired, lock.clock())
        verdict = rules.decide(
            attempt,
            self.lockout,
            wall=lock.wall.now(),
            mono=lock.clock(),
            tz=lock.tz,
            remote_enabled=lock.settings.get("remote_unlock"),
            mode=self.operating_mode(),
            factors=self.factors,
        )
        if why is not None and verdict.reason == "invalid-credential":
            verdict = dataclasses.replace(verdict, reason=why)
        visitor = attempt.visitor.label if attempt.visitor else None
        with lock.store.transaction():
            lock.store.append(
                success if verdict.granted else _refusal_kind(verdict),
                person=attempt.person,
                method=attempt.method,
                source=source,
                reason=verdict.reason,
                cause=env.trace,
                detail=f"visitor {visitor}" if visitor else _factor_detail(verdict),
            )
            if verdict.granted and visitor is not None:
                lock.people.use_visitor(visitor)
            lock.store.put_setting("lockout_state", self._lockout_state())
        return verdict

    def standing(self, attempt: rules.Attempt) -> rules.Attempt:
        """The attempt with its person's UserStatus, role and CredentialRule (issue 15);
        the owner's remote unlock is an administrator's (vacation mode lets it in)."""
        if attempt.method == "remote":
            return dataclasses.replace(attempt, admin=True)
        if attempt.person is None or attempt.visitor is not None:
            return attempt
        s = self.lock.people.standing(attempt.person)
        return dataclasses.replace(attempt, disabled=s.disabled, admin=s.admin, factors=s.factors)

    # -- modes that last until the next unlock from outside (L-21, L-22) ------------------
    def mode(self, name: str) -> bool:
        return self.lock.store.setting(name) == "on"

    def set_mode(self, name: str, on: bool, *, source: str, cause: str) -> None:
        self.lock.store.set_setting(name, "on" if on else "off", source=source, cause=cause)
        self.lock.publish(Audit(kind=name, detail="on" if on else "off"), cause)

    def outside_success(self, source: str, cause: str) -> None:
        if source not in OUTSIDE:
            return
        for name in UNTIL_OUTSIDE:
            if self.mode(name):
                self.set_mode(name, False, source=source, cause=cause)


def _refusal_kind(verdict: rules.Verdict) -> str:
    """A right credential that its person's CredentialRule wants more beside is logged
    `factor`, not `refused`: nothing failed (issue 15)."""
    return "factor" if verdict.reason == "more-factors" else "refused"


def _factor_detail(verdict: rules.Verdict) -> str | None:
    if verdict.reason != "more-factors":
        return None
    abandoned = "; another person's half-done attempt counted as a failure"
    return f"{verdict.still} more needed" + (abandoned if verdict.abandoned else "")
