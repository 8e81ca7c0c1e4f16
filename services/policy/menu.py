"""The administrator's menu on the panel (L-13, L-14, L-16): sessions opened with a passcode.

The keypad may change people and settings only inside a session: SET, then an
administrator's passcode, gives it a token that expires when unused. A keypad that
forges requests without one is refused, so the panel cannot add an administrator alone.
"""

from __future__ import annotations

import secrets
from typing import Any

from proto.control import OK, Done, refused
from proto.policy import (
    Decision,
    MenuAddPerson,
    MenuArm,
    MenuDelete,
    MenuDirection,
    MenuInfo,
    MenuOpen,
    MenuOpenBiometric,
    MenuVerified,
    SystemInfo,
)
from proto.wire import Envelope
from services.base import accepts, firmware
from services.policy import passcodes, rules
from services.policy.changes import Change, Changes
from services.policy.decider import Decider
from services.policy.lock import Lock
from services.policy.secrets import Identity

SESSION_S = 120.0  # a menu left alone this long closes
MENU_ARM_S = 20.0  # after SET, a face, finger or palm verifies for the menu this long
MENU_BIO_S = 5.0  # the panel must ask for the session this soon after the match


class Menu:
    """The panel's menu sessions, and SET armed for a face, finger or palm."""

    def __init__(self, lock: Lock, decider: Decider, changes: Changes, identity: Identity) -> None:
        self.lock, self.decider, self.changes, self.identity = lock, decider, changes, identity
        self._sessions: dict[str, tuple[str, float]] = {}  # token: (administrator, expires)
        self._armed_until = 0.0  # SET pressed: a match verifies for the menu until then
        self._bio_admin: tuple[str | None, float] = (None, 0.0)  # verified by a match, when

    def session(self, token: str) -> str | None:
        """The administrator a live token belongs to, or None; each use extends it."""
        now = self.lock.clock()
        person, until = self._sessions.get(token, (None, 0.0))
        if person is None or now > until:
            self._sessions.pop(token, None)
            return None
        self._sessions[token] = (person, now + SESSION_S)
        return person

    def close_all(self) -> None:
        self._sessions.clear()

    def _in_session(self, env: Envelope[Any], token: str, change: Change, kind: str,
                    **audit: str) -> Done:  # fmt: skip
        if self.session(token) is None:
            return refused("no-session", "open the menu with SET and an administrator's code")
        return self.changes.apply(env, change, kind, source="keypad", **audit)

    @accepts(MenuOpen)
    def on_menu_open(self, env: Envelope[MenuOpen], peer: str) -> Done:
        self._armed_until = 0.0  # a code was typed: a finger now is for the door again
        entry = env.body.entry
        capped = self.decider.entry_refused(env, entry)
        if capped is not None:
            return capped
        ref = passcodes.find(entry, self.lock.codes, self.lock.lengths, self.lock.hasher)
        admin = (
            ref.owner
            if ref is not None
            and ref.kind == "normal"
            and self.lock.people.role(ref.owner) == "admin"
            else None
        )
        attempt = self.decider.attempt("pin", ref if admin is not None else None)
        verdict = self.decider.verify_only(attempt, env, source="keypad")
        if not verdict.granted or admin is None:
            return refused(verdict.reason or "not-admin", "verification failed")
        return self._new_session(admin)

    def _new_session(self, person: str) -> Done:
        token = secrets.token_hex(16)
        self._sessions[token] = (person, self.lock.clock() + SESSION_S)
        return Done(ok=True, detail=token)

    # -- a face, finger or palm for the menu (L-13) ---------------------------------------
    @accepts(MenuArm)
    def on_menu_arm(self, env: Envelope[MenuArm], peer: str) -> Done:
        self._armed_until = self.lock.clock() + MENU_ARM_S
        return OK

    def armed(self) -> bool:
        return self.lock.clock() < self._armed_until

    def match(self, attempt: rules.Attempt, env: Envelope[Any], peer: str) -> Decision:
        """A recogniser's match while SET is armed: it verifies for the menu, never unlocks;
        a failure counts toward the lockout as any other (L-20)."""
        self._armed_until = 0.0
        person = attempt.person
        is_admin = person is not None and self.lock.people.role(person) == "admin"
        verdict = self.decider.verify_only(
            attempt if is_admin else rules.Attempt(attempt.method), env, source=peer
        )
        if verdict.granted:
            self._bio_admin = (person, self.lock.clock())
        self.lock.publish(MenuVerified(person=person or "" if verdict.granted else ""), env.trace)
        return Decision(granted=False, method=attempt.method, reason="menu-verification",
                        person=person)  # fmt: skip

    @accepts(MenuOpenBiometric)
    def on_menu_open_bio(self, env: Envelope[MenuOpenBiometric], peer: str) -> Done:
        person, at = self._bio_admin
        self._bio_admin = (None, 0.0)
        if person is None or self.lock.clock() - at > MENU_BIO_S:
            return refused("not-verified", "no administrator was just verified")
        return self._new_session(person)

    @accepts(MenuAddPerson)
    def on_menu_add(self, env: Envelope[MenuAddPerson], peer: str) -> Done:
        b = env.body
        capped = self.decider.entry_refused(env, b.code, b.repeat)
        if capped is not None:
            return capped
        if self.session(b.token) is None:
            return refused("no-session", "open the menu with SET and an administrator's code")
        if b.repeat != b.code:
            return refused("mismatch", passcodes.RULES["mismatch"])
        return self.changes.add_person(b.role, "", b.code, source="keypad", cause=env.trace)

    @accepts(MenuDelete)
    def on_menu_delete(self, env: Envelope[MenuDelete], peer: str) -> Done:
        b = env.body
        return self._in_session(
            env,
            b.token,
            lambda **e: self.lock.people.delete(b.number, **e),
            "person-deleted",
            person=b.number,
        )

    @accepts(MenuDirection)
    def on_menu_direction(self, env: Envelope[MenuDirection], peer: str) -> Done:
        b = env.body
        return self._in_session(
            env,
            b.token,
            lambda **e: self.lock.settings.set("direction", b.direction, **e),
            "direction",
            detail=b.direction,
        )

    @accepts(MenuInfo)
    def on_menu_info(self, env: Envelope[MenuInfo], peer: str) -> SystemInfo | Done:
        if self.session(env.body.token) is None:
            return refused("no-session", "open the menu with SET and an administrator's code")
        return SystemInfo(
            serial=self.identity.serial,
            firmware=firmware(),
            verification_code=self.identity.verification_code,
        )
