"""The administrator's menu on the panel (L-13, L-14, L-16): sessions opened with a passcode.

The keypad may change people and settings only inside a session: SET, then an
administrator's passcode, gives it a token that expires when unused. A keypad that
forges requests without one is refused, so the panel cannot add an administrator alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from importlib.metadata import PackageNotFoundError, version
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
from services.base import accepts
from services.policy import passcodes, rules

SESSION_S = 120.0  # a menu left alone this long closes
MENU_ARM_S = 20.0  # after SET, a face, finger or palm verifies for the menu this long
MENU_BIO_S = 5.0  # the panel must ask for the session this soon after the match


def firmware() -> str:
    try:
        return version("lockmesh")
    except PackageNotFoundError:
        return "unknown"


class MenuCommands:
    """Mixed into PolicyService: uses its people, hasher, rules and device secret."""

    _sessions: dict[str, tuple[str, float]]  # token: (administrator, expires), made in setup

    def _session(self, token: str) -> str | None:
        """The administrator a live token belongs to, or None; each use extends it."""
        sessions = self._sessions
        person, until = sessions.get(token, (None, 0.0))
        if person is None or self.clock() > until:
            sessions.pop(token, None)
            return None
        sessions[token] = (person, self.clock() + SESSION_S)
        return person

    def _in_session(self, env: Envelope, change, kind: str, **audit: Any) -> Done:
        if self._session(env.body.token) is None:
            return refused("no-session", "open the menu with SET and an administrator's code")
        return self._changed(env, change, kind, source="keypad", **audit)

    def _entry_refused(self, env: Envelope, *entries: str) -> Done | None:
        """L-19's cap on every passcode entry the panel sends, None when all are within it.
        The panel stops typing at the cap, so an entry beyond it is a forgery, refused as
        a failed verification that counts toward the lockout (L-20): a long entry would
        try thousands of codes for the price of one failure."""
        cap = self.config["keypad"]["max_digits"]
        flaw = next((f for e in entries if (f := passcodes.entry_flaw(e, cap))), None)
        if flaw is None:
            return None
        verdict = self._verify_only(rules.Attempt("pin"), env, source="keypad", why=flaw)
        return refused(verdict.reason, f"a passcode entry is 1 to {cap} digits")

    @accepts(MenuOpen)
    def on_menu_open(self, env: Envelope, peer: str) -> Done:
        self._menu_armed_until = 0.0  # a code was typed: a finger now is for the door again
        entry = env.body.entry
        capped = self._entry_refused(env, entry)
        if capped is not None:
            return capped
        ref = passcodes.find(entry, self.codes, self.lengths, self.hasher)
        is_admin = (
            ref is not None and ref.kind == "normal" and self.people.role(ref.owner) == "admin"
        )
        attempt = self._attempt("pin", ref if is_admin else None)
        verdict = self._verify_only(attempt, env, source="keypad")
        if not verdict.granted:
            return refused(verdict.reason or "not-admin", "verification failed")
        return self._new_session(ref.owner)

    def _new_session(self, person: str) -> Done:
        token = secrets.token_hex(16)
        self._sessions[token] = (person, self.clock() + SESSION_S)
        return Done(ok=True, detail=token)

    # -- a face, finger or palm for the menu (L-13) ---------------------------------------
    @accepts(MenuArm)
    def on_menu_arm(self, env: Envelope, peer: str) -> Done:
        self._menu_armed_until = self.clock() + MENU_ARM_S
        return OK

    def _menu_armed(self) -> bool:
        return self.clock() < getattr(self, "_menu_armed_until", 0.0)

    def _menu_match(self, attempt: rules.Attempt, env: Envelope, peer: str) -> Decision:
        """A recogniser's match while SET is armed: it verifies for the menu, never unlocks;
        a failure counts toward the lockout as any other (L-20)."""
        self._menu_armed_until = 0.0
        is_admin = attempt.person is not None and self.people.role(attempt.person) == "admin"
        verdict = self._verify_only(
            attempt if is_admin else rules.Attempt(attempt.method), env, source=peer
        )
        if verdict.granted:
            self._bio_admin = (attempt.person, self.clock())
        self.publish(MenuVerified(person=attempt.person if verdict.granted else ""), env.trace)
        return Decision(granted=False, method=attempt.method, reason="menu-verification",
                        person=attempt.person)  # fmt: skip

    @accepts(MenuOpenBiometric)
    def on_menu_open_bio(self, env: Envelope, peer: str) -> Done:
        person, at = getattr(self, "_bio_admin", (None, 0.0))
        self._bio_admin = (None, 0.0)
        if person is None or self.clock() - at > MENU_BIO_S:
            return refused("not-verified", "no administrator was just verified")
        return self._new_session(person)

    @accepts(MenuAddPerson)
    def on_menu_add(self, env: Envelope, peer: str) -> Done:
        b = env.body
        capped = self._entry_refused(env, b.code, b.repeat)
        if capped is not None:
            return capped
        if self._session(b.token) is None:
            return refused("no-session", "open the menu with SET and an administrator's code")
        if b.repeat != b.code:
            return refused("mismatch", passcodes.RULES["mismatch"])
        return self._add_person(b.role, "", b.code, source="keypad", cause=env.trace)

    @accepts(MenuDelete)
    def on_menu_delete(self, env: Envelope, peer: str) -> Done:
        number = env.body.number
        return self._in_session(
            env, lambda **e: self.people.delete(number, **e), "person-deleted", person=number
        )

    @accepts(MenuDirection)
    def on_menu_direction(self, env: Envelope, peer: str) -> Done:
        direction = env.body.direction
        return self._in_session(
            env,
            lambda **e: self.settings.set("direction", direction, **e),
            "direction",
            detail=direction,
        )

    @accepts(MenuInfo)
    def on_menu_info(self, env: Envelope, peer: str) -> SystemInfo | Done:
        if self._session(env.body.token) is None:
            return refused("no-session", "open the menu with SET and an administrator's code")
        return SystemInfo(
            serial=self.serial, firmware=firmware(), verification_code=self.verification_code
        )

    def _identity(self, secret: bytes) -> None:
        """Serial number and verification code, derived from the device secret: stable."""
        digest = hmac.new(secret, b"identity", hashlib.sha256).hexdigest()
        self.serial = "LM" + digest[:10].upper()
        self.verification_code = str(int(digest[10:20], 16) % 1_000_000).zfill(6)
