"""Deciding: every credential's verdict under the rules, logged with the lockout's state,
then acted on and announced; and the modes the next unlock from outside ends (L-21, L-22)."""

from __future__ import annotations

import dataclasses
from typing import Any

from proto.control import Done, refused
from proto.policy import Audit, Decision
from proto.schema import Message
from proto.wire import Envelope
from services.policy import lockouts, passcodes, rules
from services.policy.actuation import Actuation
from services.policy.lock import Lock
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

    # -- the lockout survives restarts (L-20) ---------------------------------------------
    def restored_lockout(self) -> rules.Lockout:
        """Restored at full length: pulling the power never shortens it."""
        enabled = self.lock.settings.get("lockout_protection")
        lockout = lockouts.made(self.lock.config["lockout"], enabled=enabled)
        saved = self.lock.store.setting("lockout_state")
        return lockouts.restored(lockout, saved, self.lock.clock())

    def forget(self) -> None:
        """After a factory reset: the lockout as the erased store has it."""
        self.lockout = self.restored_lockout()

    def locked_out(self) -> bool:
        return self.lockout.active(self.lock.clock())

    def _lockout_state(self) -> str:
        return lockouts.saved(self.lockout, self.lock.clock())

    def release_lockout(self, *, source: str, cause: str) -> None:
        """The owner lifts the lockout; logged with the state it leaves."""
        was = self.locked_out()
        self.lockout.release()
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
        """Decide, then write it down, then act, then say it: what is acted on is on disk.
        The decision, stamped first, is the drive's cause; it is published as soon as the
        motor has been asked, while the motor works: publishing first held the bolt back
        by a fifth of the time outside the write (issue 12, `lockmesh bench policy`).
        why names a refusal more precisely than the rules can (a face that is not live).
        A grant is logged `granted`; the unlock, when the motor has done it (issue 11)."""
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

        if verdict.granted:
            self.actuation.actuate(
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
        if verdict.alarm is not None:
            self.lock.alarm(verdict.alarm, verdict.reason, person=attempt.person, cause=sent.id)
        if verdict.granted:
            self.outside_success(source, sent.id)
        return decision

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
        if verdict.alarm is not None:
            self.lock.alarm(verdict.alarm, verdict.reason, person=attempt.person, cause=env.trace)
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
        verdict = rules.decide(
            attempt,
            self.lockout,
            wall=lock.wall.now(),
            mono=lock.clock(),
            tz=lock.tz,
            remote_enabled=lock.settings.get("remote_unlock"),
        )
        if why is not None and verdict.reason == "invalid-credential":
            verdict = dataclasses.replace(verdict, reason=why)
        visitor = attempt.visitor.label if attempt.visitor else None
        with lock.store.transaction():
            lock.store.append(
                success if verdict.granted else "refused",
                person=attempt.person,
                method=attempt.method,
                source=source,
                reason=verdict.reason,
                cause=env.trace,
                detail=f"visitor {visitor}" if visitor else None,
            )
            if verdict.granted and visitor is not None:
                lock.people.use_visitor(visitor)
            lock.store.put_setting("lockout_state", self._lockout_state())
        return verdict

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
