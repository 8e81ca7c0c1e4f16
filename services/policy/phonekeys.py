"""Phone keys over Bluetooth (issue 16, L-32, L-34): policy's side.

The ble service only relays (services/ble/relay.py); here each answer is parsed and
checked, in this order, every refusal with its reason, counted, and nothing stored:
its nonce taken (one policy issued, unspent, in time: else `replayed`, `late`,
`unknown-nonce`); the owner's key as registered and its signature over the nonce, the
action and this lock's id (`unknown-key`, `bad-signature`); or a visitor's grant, for
this lock (`other-lock`), signed by the owner's key (`bad-grant-signature`), the answer
signed by the visitor key it names (`bad-signature`), not revoked (`revoked`), with the
time known (`time-unknown`, L-7's rule), inside its window (`not-yet-valid`, `expired`),
with the right (`no-right`) and uses left (`uses-exhausted`). Then the rules decide as
for any unlock, the use counted on disk before the bolt moves; it is logged with method
`ble` and the person: `owner`, or `visitor:LABEL`. Refusals are counted, not logged: the
radio is open to anyone in range, and a row per refusal would let anyone fill the card.

The owner's phone key is registered by an owner request after the claim, with the app
PIN, while someone is at the lock (pairing mode open, or within its window after the
claim): a hijacked gateway, which may send every owner request, can neither register a
key of its own nor unlock without the PIN. Its answer also carries the secret the
owner's offline visitor codes are made from (offline_codes.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import Counter
from dataclasses import dataclass

from proto import phonekey
from proto.ble import (
    BleAnswer,
    BleChallenge,
    BleNonce,
    BleState,
    PhoneKey,
    PhoneKeySet,
    PhoneRevoke,
)
from proto.control import OK, Done, refused
from proto.phonekey import Answer, Grant, Refused
from proto.policy import Audit
from proto.schema import Message
from proto.wire import Envelope
from services.base import accepts, hears
from services.policy import rules
from services.policy.account import PIN_LIMIT_ALARM, Account
from services.policy.actuation import Actuation
from services.policy.challenges import Challenges
from services.policy.decider import Decider
from services.policy.lock import Lock, owner_source
from services.policy.pairing import PairingMode

log = logging.getLogger(__name__)

OWNER_KEY = "phone_owner_key"  # settings rows (erased by a factory reset, L-30)
REVOKED = "phone_revoked:"  # + a grant id or a visitor key, in hex
USES = "phone_uses:"  # + a grant id: the unlocks it made


@dataclass(frozen=True)
class Holder:
    """Whose key signed an answer: the owner's, or a visitor's under a grant."""

    person: str
    grant: Grant | None = None


class PhoneKeys:
    def __init__(
        self,
        lock: Lock,
        decider: Decider,
        actuation: Actuation,
        account: Account,
        pairing: PairingMode,
        *,
        lock_id: bytes,
        code_key: bytes,
    ) -> None:
        self.lock, self.decider, self.actuation = lock, decider, actuation
        self.account, self.pairing = account, pairing
        self.lock_id, self._code_key = lock_id, code_key
        section = lock.config["ble"]
        self.challenges = Challenges(
            lock.clock, section["answer_within_s"], section["challenges_kept"]
        )
        self.refusals: Counter[str] = Counter()
        self.bluetooth = "absent"  # until the ble service says otherwise (Home, L-31)

    # -- what the lock keeps ----------------------------------------------------------------
    def owner_key(self) -> bytes | None:
        stored = self.lock.store.setting(OWNER_KEY)
        return bytes.fromhex(stored) if stored else None

    def code_secret(self) -> bytes | None:
        """The offline codes' secret: bound to this claim and the owner's phone key, so a
        new claim or a new phone voids the codes made before."""
        key = self.owner_key()
        if key is None:
            return None
        claim = (self.lock.store.setting("paired") or "").encode()
        return hmac.new(self._code_key, claim + b"|" + key, hashlib.sha256).digest()

    def _revoked(self, grant: Grant) -> bool:
        store = self.lock.store
        return any(store.setting(REVOKED + t.hex()) for t in (grant.grant_id, grant.visitor_key))

    def _uses(self, grant: Grant) -> int:
        return int(self.lock.store.setting(USES + grant.grant_id.hex()) or 0)

    # -- the radio --------------------------------------------------------------------------
    @hears(BleState)
    def on_radio(self, env: Envelope[BleState]) -> None:
        self.bluetooth = env.body.state

    @accepts(BleChallenge)
    def on_challenge(self, env: Envelope[BleChallenge], peer: str) -> BleNonce:
        within = self.challenges.within_s
        return BleNonce(lock_id=self.lock_id, nonce=self.challenges.issue(), expires_s=within)

    @accepts(BleAnswer)
    def on_answer(self, env: Envelope[BleAnswer], peer: str) -> Message:
        try:
            answer = phonekey.decode_answer(env.body.answer)
            self.challenges.take(answer.nonce)  # spent before anything else is looked at
            holder = self._holder(answer)
            return self._act(answer, holder, env)
        except Refused as r:
            self.refusals[r.reason] += 1
            log.info("phone key refused: %s", r)
            return refused(r.reason, r.detail)

    def _holder(self, answer: Answer) -> Holder:
        owner = self.owner_key()
        if owner is None:
            raise Refused("no-owner-key", "no phone key is registered: claim the lock first")
        signed = answer.signed_part(self.lock_id)
        if answer.kind == "owner":
            if not hmac.compare_digest(answer.credential, owner):
                raise Refused("unknown-key", "not the owner's phone key")
            if not phonekey.verifies(owner, answer.signature, signed):
                raise Refused("bad-signature", "the owner's key did not sign this")
            return Holder("owner")
        grant = answer.grant()
        if grant.lock_id != self.lock_id:
            raise Refused("other-lock", "this grant is for another lock")
        if not grant.signed_by(owner):
            raise Refused("bad-grant-signature", "the owner's key did not sign this grant")
        if not phonekey.verifies(grant.visitor_key, answer.signature, signed):
            raise Refused("bad-signature", "the grant's visitor key did not sign this")
        if self._revoked(grant):
            raise Refused("revoked", "the owner revoked this key")
        return Holder(f"visitor:{grant.label or grant.grant_id.hex()}", grant)

    def _act(self, answer: Answer, holder: Holder, env: Envelope[BleAnswer]) -> Message:
        if answer.action == "revoke":
            if holder.grant is not None:
                raise Refused("not-owner", "only the owner's key revokes")
            return self._revoke(answer.target, source="ble", cause=env.trace, person="owner")
        if holder.grant is not None:
            self._check_now(holder.grant, answer.action)
        if answer.action == "lock":
            failed = self.actuation.actuate(
                "lock", source="ble", cause=env.trace, person=holder.person, method="ble"
            )
            return refused(failed, f"the motor did not lock: {failed}") if failed else OK
        if holder.grant is not None:
            self._count_use(holder.grant)  # on disk before the bolt moves
        return self.decider.judge(rules.Attempt("ble", person=holder.person), env, source="ble")

    def _check_now(self, grant: Grant, action: str) -> None:
        now = self.lock.wall.now()
        if now is None:
            raise Refused("time-unknown", "the lock lost the time: visitor keys wait for it")
        if now < grant.not_before:
            raise Refused("not-yet-valid", "this grant's window has not begun")
        if now >= grant.not_after:
            raise Refused("expired", "this grant's window is over")
        if not grant.allows(action):
            raise Refused("no-right", f"this grant does not {action}")
        if action == "unlock" and grant.max_uses and self._uses(grant) >= grant.max_uses:
            raise Refused("uses-exhausted", f"{grant.max_uses} unlocks were granted")

    def _count_use(self, grant: Grant) -> None:
        with self.lock.store.transaction():
            self.lock.store.put_setting(USES + grant.grant_id.hex(), str(self._uses(grant) + 1))

    # -- revocation ---------------------------------------------------------------------------
    @accepts(PhoneRevoke)
    def on_revoke(self, env: Envelope[PhoneRevoke], peer: str) -> Done:
        try:
            target = bytes.fromhex(env.body.target)
        except ValueError:
            return refused("bad-target", "a grant id (16 hex digits) or a key (64)")
        try:
            return self._revoke(target, source=owner_source(peer), cause=env.trace)
        except Refused as r:
            return refused(r.reason, r.detail)

    def _revoke(self, target: bytes, *, source: str, cause: str, person: str | None = None) -> Done:
        if len(target) not in phonekey.TARGET_BYTES["revoke"]:
            raise Refused("bad-target", "a grant id (8 bytes) or a visitor key (32)")
        store = self.lock.store
        with store.transaction():
            store.put_setting(REVOKED + target.hex(), json.dumps({"at": self.lock.wall.now()}))
            store.append("phone-key-revoked", source=source, person=person,
                         method="ble" if source == "ble" else None, detail=target.hex(),
                         cause=cause)  # fmt: skip
        self.lock.publish(Audit(kind="phone-key-revoked", detail=target.hex()), cause)
        return OK

    # -- the owner's phone key ---------------------------------------------------------------
    @accepts(PhoneKeySet)
    def on_key_set(self, env: Envelope[PhoneKeySet], peer: str) -> Message:
        b, source = env.body, owner_source(peer)
        key = _hex_key(b.public_key)
        if isinstance(key, str):
            return refused("bad-key", key)
        if not self.account.claimed():
            return refused("not-claimed", "claim the lock first (L-17)")
        if not self.pairing.present():  # before the PIN: no oracle for it from afar
            return refused("not-pairing", "hold SET on the lock, or register right after the claim")
        pin = self.account.pin_refusal(b.pin)
        if pin is not None:
            return self._pin_refused(*pin, source=source, env=env)
        self._keep(key, source=source, cause=env.trace)
        secret = self.code_secret()
        assert secret is not None  # the key was just kept
        return PhoneKey(lock_id=self.lock_id.hex(), owner_key=key.hex(), code_secret=secret.hex())

    def _keep(self, key: bytes, *, source: str, cause: str) -> None:
        store = self.lock.store
        replaced = "replaced the owner's phone key" if self.owner_key() else ""
        with store.transaction():
            store.put_setting(OWNER_KEY, key.hex())
            for name, value in self.account.states().items():
                store.put_setting(name, value)
            detail = ", ".join(filter(None, (f"key {key.hex()[:16]}", replaced)))
            store.append("phone-key-set", source=source, detail=detail, cause=cause)
        self.lock.publish(Audit(kind="phone-key-set", detail=key.hex()[:16]), cause)

    def _pin_refused(
        self, reason: str, detail: str, *, source: str, env: Envelope[PhoneKeySet]
    ) -> Done:
        store = self.lock.store
        with store.transaction():
            store.append("phone-key-refused", source=source, reason=reason, detail=detail,
                         cause=env.trace)  # fmt: skip
            for name, value in self.account.states().items():
                store.put_setting(name, value)
        if reason == "wrong-pin" and self.account.pin_locked():  # this one started it
            self.lock.alarm(PIN_LIMIT_ALARM, "too many wrong app PINs", cause=env.trace)
        return refused(reason, detail)

    def forget(self) -> None:
        """After a factory reset: no challenge of before is answered."""
        self.challenges.clear()


def _hex_key(text: str) -> bytes | str:
    """The key's bytes, or why the text is none."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return "a phone key is 64 hex digits"
    return phonekey.key_flaw(key) or key
