"""The owner's app account (issue 13): the password and the app PIN set at the claim, kept
only as argon2id hashes, and the two lockouts that throttle guessing them.

Each hash is of an HMAC of the secret under a subkey of the device secret (a pepper), so
a copy of lock.db alone cannot be searched for a 4-digit PIN. The hashes and the lockouts'
state live in the store's settings table, which a factory reset erases (L-30). The
lockouts are kept like L-20's, but always on (they guard the network side, not the
keypad) and lifted by no owner command: a hijacked gateway that could lift them could
guess on.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from proto.control import Done, refused
from proto.owner import AppLogin
from proto.wire import Envelope
from services.base import accepts
from services.policy import lockouts, rules
from services.policy.lock import Lock, owner_source
from services.policy.secrets import subkey

PASSWORD, PIN = "app_password", "app_pin"  # settings rows: the hashes
LOGIN_STATE, PIN_STATE = "app_login_state", "app_pin_state"  # settings rows: the lockouts
LOGIN_LIMIT_ALARM = "wrong-password-entry-limit"
PIN_LIMIT_ALARM = "wrong-pin-entry-limit"  # like Matter's wrong-code-entry-limit (L-20)


class Hasher:
    """argon2id over HMAC-SHA256(key, secret): slow to guess, and useless without the key."""

    def __init__(self, key: bytes, config: dict[str, Any]) -> None:
        self._key = key
        self._argon = PasswordHasher(
            time_cost=config["argon2_time_cost"],
            memory_cost=config["argon2_memory_kib"],
            parallelism=1,
            type=Type.ID,
        )

    def _peppered(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    def hash(self, secret: str) -> str:
        return self._argon.hash(self._peppered(secret))

    def matches(self, stored: str, secret: str) -> bool:
        """Whether secret is the one hashed; a damaged hash matches nothing."""
        try:
            return self._argon.verify(stored, self._peppered(secret))
        except (VerificationError, InvalidHashError):
            return False


class Account:
    """Whether the lock is claimed, the app's logins, and the PIN check for remote unlock."""

    def __init__(self, lock: Lock, secret: bytes) -> None:
        self.lock = lock
        config = lock.config["account"]
        self.passwords = Hasher(subkey(secret, "app-password"), config)
        self.pins = Hasher(subkey(secret, "app-pin"), config)
        self.forget()

    def _restored(self, key: str, max_s: float | None = None) -> rules.Lockout:
        lockout = lockouts.made(self.lock.config["account"], max_s=max_s)
        return lockouts.restored(lockout, self.lock.store.setting(key), self.lock.clock())

    def forget(self) -> None:
        """The lockouts as the store keeps them (after a factory reset: none). The PIN's
        escalate: a hijacked gateway's five guesses per lockout would find a 4-digit PIN
        in days at a flat 3 minutes; doubling up to pin_lockout_max_s makes it years."""
        self.logins_lockout = self._restored(LOGIN_STATE)
        self.pin_lockout = self._restored(
            PIN_STATE, self.lock.config["account"]["pin_lockout_max_s"]
        )

    # -- the claim (pairing.py) ------------------------------------------------------------
    def claimed(self) -> bool:
        store = self.lock.store
        return store.setting(PASSWORD) is not None and store.setting(PIN) is not None

    def hashes(self, password: str, pin: str) -> dict[str, str]:
        """The rows a claim writes (slow: hash before the transaction)."""
        return {PASSWORD: self.passwords.hash(password), PIN: self.pins.hash(pin)}

    def keep(self, hashes: dict[str, str]) -> None:
        """Within the claim's transaction: the new hashes replace any old ones, and the
        lockouts start afresh (the claim was made at the door, in pairing mode)."""
        for lockout in (self.logins_lockout, self.pin_lockout):
            lockout.release()
            lockout.succeed()  # and no strikes: the claim was made at the door
        for key, value in {**hashes, **self.states()}.items():
            self.lock.store.put_setting(key, value)

    def states(self) -> dict[str, str]:
        now = self.lock.clock()
        return {
            LOGIN_STATE: lockouts.saved(self.logins_lockout, now),
            PIN_STATE: lockouts.saved(self.pin_lockout, now),
        }

    def save(self) -> None:
        """The lockouts' state, when no row is written beside it (a right PIN)."""
        with self.lock.store.transaction():
            self._put_states()

    def _put_states(self) -> None:
        for key, value in self.states().items():
            self.lock.store.put_setting(key, value)

    def logins_locked(self) -> bool:
        return self.logins_lockout.active(self.lock.clock())

    def pin_locked(self) -> bool:
        return self.pin_lockout.active(self.lock.clock())

    # -- logging in ----------------------------------------------------------------------
    @accepts(AppLogin)
    def on_app_login(self, env: Envelope[AppLogin], peer: str) -> Done:
        """Every attempt logged; while locked out the password is not even hashed, so
        guessing costs the lock no CPU."""
        source = owner_source(peer)
        stored = self.lock.store.setting(PASSWORD)
        if stored is None or not self.claimed():
            self._log("app-login-failed", source, env, reason="not-claimed")
            return refused("not-claimed", "claim the lock first: hold SET, then pair the app")
        if self.logins_locked():
            left = self._left(self.logins_lockout)
            self._log("app-login-locked", source, env, reason="locked-out", detail=left)
            return refused("locked-out", f"too many wrong passwords: try again in {left}")
        if self.passwords.matches(stored, env.body.password):
            self.logins_lockout.succeed()
            self._log("app-login", source, env)
            return Done(ok=True, detail="logged in")
        started = self.logins_lockout.fail(self.lock.clock()) is not None
        self._log("app-login-failed", source, env, reason="wrong-password",
                  detail=self._count(self.logins_lockout, started))  # fmt: skip
        if started:
            detail = "app logins locked: too many wrong passwords"
            self.lock.alarm(LOGIN_LIMIT_ALARM, detail, cause=env.trace)
        return refused("wrong-password", "that is not the owner's password")

    def _log(self, kind: str, source: str, env: Envelope[Any], **fields: Any) -> None:
        """The row and the lockouts' state, in one transaction."""
        with self.lock.store.transaction():
            self.lock.store.append(kind, source=source, cause=env.trace, **fields)
            self._put_states()

    def _count(self, lockout: rules.Lockout, started: bool) -> str:
        if started:
            return f"locked out for {lockout.length():.0f} s"
        return f"failure {len(lockout.failures)} of {lockout.limit}"

    def _left(self, lockout: rules.Lockout) -> str:
        until = lockout.until if lockout.until is not None else self.lock.clock()
        return f"{max(0.0, until - self.lock.clock()):.0f} s"

    # -- the app PIN, for a remote unlock (owner.py) --------------------------------------
    def pin_refusal(self, pin: str) -> tuple[str, str] | None:
        """None when pin is the owner's app PIN; else (reason, detail), a wrong one
        counted toward the PIN's own lockout. The caller logs the refusal with states()."""
        stored = self.lock.store.setting(PIN)
        if stored is None or not self.claimed():
            return "not-claimed", "claim the lock with the app first (L-17)"
        if self.pin_locked():
            left = self._left(self.pin_lockout)
            return "pin-locked-out", f"too many wrong PINs: try again in {left}"
        if self.pins.matches(stored, pin):
            self.pin_lockout.succeed()
            return None
        started = self.pin_lockout.fail(self.lock.clock()) is not None
        return "wrong-pin", self._count(self.pin_lockout, started)
