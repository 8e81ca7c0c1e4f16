"""Decides every unlock, owns the store, and is the only one the motor obeys."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from zoneinfo import ZoneInfo

from hw.rtc import SimRtc, SystemClock, WallClock
from proto.biometric import Match
from proto.board import Bolt, Button, Door, Siren, Tamper
from proto.control import OK, Done, StatusReply, StatusRequest, refused
from proto.policy import (
    Alarm,
    ArmLeavingHome,
    Audit,
    CheckPasscode,
    CreateFirstAdmin,
    Decision,
    FactoryReset,
    LockInfo,
    LockInfoRequest,
    LockRequest,
    MuteOnce,
    SetDirection,
    VerifyPasscode,
)
from proto.power import Battery
from proto.wire import Envelope
from proto.witness import Head
from services.base import Service, accepts, hears
from services.policy import passcodes, rules
from services.policy.actuation import Actuation
from services.policy.doorbell import DoorbellCommands
from services.policy.menu import MenuCommands
from services.policy.owner import OwnerCommands
from services.policy.pairing import PairingCommands
from services.policy.people import CodeRef, People, Refusal
from services.policy.secrets import device_secret, lock_id, subkey
from services.policy.settings import Settings
from services.policy.store import Store
from services.policy.templates import TemplateKeeping
from services.policy.tickets import TicketBook
from services.policy.vault import Vault

# unlocks from outside (manual: the mechanical key)
OUTSIDE = ("keypad", "remote", "biometric", "face", "manual")
UNTIL_OUTSIDE = ("leaving-home", "mute")  # modes the next unlock from outside ends


class PolicyService(
    OwnerCommands,
    MenuCommands,
    TemplateKeeping,
    DoorbellCommands,
    PairingCommands,
    Actuation,
    Service,
):
    NAME = "policy"
    LISTENS = ("motor", "power")

    def setup(self) -> None:
        data = self.layout.data
        secret = device_secret(data / "device.secret", keyed=data / "lock.db")
        self.lock_id = lock_id(secret)
        self._identity(secret)
        self._sessions = {}  # the panel's menu sessions (menu.py)
        self.tickets = TicketBook(self.clock, self.config["enrol"]["ticket_s"])  # issue 11
        self.store = Store(self.layout.data / "lock.db", chain_key=subkey(secret, "audit-chain"))
        self.hasher = passcodes.Hasher(subkey(secret, "passcodes"))
        self.vault = Vault(subkey(secret, "templates"))
        self.people = People(self.store, self.config["capacity"], self._now_or_zero)
        self.settings = Settings(
            self.store, {"lockout_protection": self.config["lockout"]["enabled"]}
        )
        self.rules = self.config["passcode"]
        self.wall: WallClock = (
            SimRtc(self.layout.data / "sim-rtc.json")
            if self.config["board"]["kind"] == "sim"
            else SystemClock()
        )
        self.tz = ZoneInfo(self.config["clock"]["timezone"])
        self.lockout = self._restore_lockout()
        self._reload_codes()
        self.bolt, self.door = "unknown", "unknown"
        self._relock_at: tuple[float, str] | None = None
        self._open_since: tuple[float, str] | None = None
        self._battery_low = False
        self._reset_gesture_at: float | None = None
        self._next_probe = 0.0
        self._drives, self._interruptions = {}, set()  # drives ordered (actuation.py)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()

    def _now_or_zero(self) -> float:
        return self.wall.now() or 0.0

    def _reload_codes(self) -> None:
        self.codes, self.lengths = self.people.codes(), self.people.lengths()

    @property
    def initial(self) -> bool:
        return self.people.count("admin") == 0

    def status_detail(self) -> dict[str, Any]:
        return {
            "audit_head": self._audit_head(),
            "initial": self.initial,
            "direction": self.settings.get("direction"),
            "people": self.people.count(),
            "bolt": self.bolt,
            "door": self.door,
            "locked_out": self.lockout.active(self.clock()),
            "time_known": self.wall.now() is not None,
        }

    def _audit_head(self) -> dict[str, Any] | None:
        """The log's sealed head, for every peer to witness (issue 11: rollback shows)."""
        head = self.store.head()
        if head is None:
            return None
        return Head(self.lock_id, head.epoch, head.count, head.last.hex()).to_body()

    # -- the lockout survives restarts (L-20) ---------------------------------------------
    def _restore_lockout(self) -> rules.Lockout:
        c = self.config["lockout"]
        lockout = rules.Lockout(
            limit=c["failures"],
            window_s=c["window_s"],
            duration_s=c["duration_s"],
            enabled=self.settings.get("lockout_protection"),
        )
        saved = json.loads(self.store.setting("lockout_state") or "{}")
        now = self.clock()
        if saved.get("active"):  # restored at full length: pulling the power never shortens it
            lockout.until = now + lockout.duration_s
        lockout.failures = [now] * min(int(saved.get("failures", 0)), lockout.limit - 1)
        return lockout

    def _lockout_state(self) -> str:
        return json.dumps(
            {"active": self.lockout.active(self.clock()), "failures": len(self.lockout.failures)}
        )

    # -- what the motor reports -----------------------------------------------------------
    @hears(Bolt)
    def on_bolt(self, env: Envelope) -> None:
        self.bolt = env.body.state
        if self.bolt == "jammed":
            self._alarm("lock-jammed", env.body.reason, cause=env.id)
        self._bolt_reported(env)  # a drive's end is logged only now (issue 11)

    @hears(Door)
    def on_door(self, env: Envelope) -> None:
        self.door = "open" if env.body.open else "closed"
        self._relock_at = None
        self._open_since = (self.clock(), env.id) if env.body.open else None
        if self.door == "closed" and self.settings.get("auto_lock"):  # L-26
            self._relock_at = (self.clock() + self.settings.get("auto_lock_delay_s"), env.id)
        if self.door == "open" and self.bolt == "locked":  # opened with the bolt thrown
            self._alarm("door-forced-open", "the door opened while locked", cause=env.id)
        if self.door == "open" and self._mode("leaving-home"):  # no outside unlock since (L-22)
            self._alarm("inside-opening-while-away", "opened from inside", cause=env.id)

    @hears(Button)
    def on_button(self, env: Envelope) -> None:
        if env.body.button == "lock":  # the inside lock button (L-25)
            self._lock(source="button", cause=env.id)
        elif env.body.button == "key":  # the mechanical key (L-18): logged, nothing to decide
            self.store.log("unlock", method="mechanical-key", source="manual", cause=env.id)
            self._outside_success("manual", env.id)
        elif env.body.button == "set-long":  # L-17: pairing mode
            self._open_pairing(env.id)
        elif env.body.button == "factory-reset":  # L-30: only ✓ on the panel is missing
            self._reset_gesture_at = self.clock()
            self.store.log("factory-reset-offered", source="button", cause=env.id)

    @accepts(FactoryReset)
    def on_factory_reset(self, env: Envelope, peer: str) -> Done:
        """L-30: erase everything, if the SET gesture was just made at the lock itself. A
        panel alone cannot ask for this: the gesture needs the battery out and back."""
        seen = self._reset_gesture_at
        if seen is None or self.clock() - seen > self.config["motor"]["reset_confirm_s"]:
            self.bus.counters.drop("unauthorized", "factory reset without the gesture", "commands")
            return refused("no-gesture", "hold SET for 5 s while putting the battery back")
        self._reset_gesture_at = None
        self.store.factory_reset(source="keypad", cause=env.trace)
        self._sessions.clear()
        self.tickets.clear()
        self.lockout = self._restore_lockout()
        self._reload_codes()
        self.publish(Audit(kind="factory-reset"), env.trace)
        return OK

    @hears(Tamper)
    def on_tamper(self, env: Envelope) -> None:
        if env.body.removed:  # L-29: the siren for about a minute, and the owner is told
            self._alarm("front-escutcheon-removed", "the front panel was removed", cause=env.id)
            seconds = self.config["alarms"]["tamper_siren_s"]
            self.request("motor", Siren(seconds=seconds), cause=env.id)

    def _probe_motor(self, now: float) -> None:
        """Ask the motor where bolt and door are: its events at start may have been missed."""
        self._next_probe = now + 1.0
        answer = self.request("motor", StatusRequest(), timeout=0.3)
        if answer is not None and isinstance(answer.body, StatusReply):
            self.bolt = answer.body.detail.get("bolt", "unknown")
            self.door = answer.body.detail.get("door", "unknown")

    @hears(Battery)
    def on_battery(self, env: Envelope) -> None:
        """Low battery is an alarm once per crossing of the threshold (L-28, L-29)."""
        if env.body.low and not self._battery_low:
            self._alarm("low-battery", f"{env.body.percent:.0f} %", cause=env.id)
        self._battery_low = env.body.low
        self.battery = env.body  # whether the doorbell's snapshot may use video (L-23)

    def tick(self, now: float) -> None:
        self._pairing_tick(now)
        self._drives_tick(now)
        if self.bolt == "unknown" and now >= self._next_probe:
            self._probe_motor(now)
        if self._relock_at is not None and now >= self._relock_at[0]:
            cause, self._relock_at = self._relock_at[1], None
            if self.door == "closed" and self.bolt == "unlocked":
                self._lock(source="auto", cause=cause)
        ajar = self.config["alarms"]["door_ajar_s"]
        if self._open_since is not None and now - self._open_since[0] >= ajar:
            self._alarm("door-ajar", f"open for {ajar:.0f} s", cause=self._open_since[1])
            self._open_since = None  # once per opening

    def _lock(self, *, source: str, cause: str) -> None:
        """Logged `lock` when the motor reports the bolt thrown (actuation.py)."""
        self._actuate("lock", source=source, cause=cause)

    # -- the panel's requests -------------------------------------------------------------
    @accepts(LockInfoRequest)
    def on_info(self, env: Envelope, peer: str) -> LockInfo:
        return LockInfo(
            initial=self.initial,
            direction=self.settings.get("direction"),
            people=self.people.count(),
            bolt=self.bolt,
            door=self.door,
            muted=self._mode("mute"),
        )

    @accepts(SetDirection)
    def on_set_direction(self, env: Envelope, peer: str) -> Done:
        if not self.initial:
            return refused("not-allowed", "the direction is changed from the menu (L-14)")
        direction = env.body.direction
        self.settings.set("direction", direction, source=peer, cause=env.trace)
        self.publish(Audit(kind="direction", detail=direction), env.trace)
        return OK

    @accepts(CheckPasscode)
    def on_check(self, env: Envelope, peer: str) -> Done:
        return self._entry_refused(env, env.body.code) or self._rule_answer(env.body.code)

    @accepts(CreateFirstAdmin)
    def on_create_admin(self, env: Envelope, peer: str) -> Done:
        capped = self._entry_refused(env, env.body.code, env.body.repeat)
        if capped is not None:
            return capped
        if not self.initial:
            return refused("not-allowed", "an administrator exists: use the menu (L-13)")
        if self.settings.get("direction") is None:
            return refused("direction-unset", "choose the opening direction first (L-12)")
        if env.body.repeat != env.body.code:
            answer = self._rule_answer(env.body.code)
            return answer if not answer.ok else refused("mismatch", passcodes.RULES["mismatch"])
        return self._add_person("admin", "", env.body.code, source=peer, cause=env.trace)

    def _changed(
        self, env: Envelope, change, kind: str, *, source: str = "remote", **audit: Any
    ) -> Done:
        """Run a change; a refusal becomes the answer, a success is published and logged."""
        try:
            change(source=source, cause=env.trace)
        except Refusal as r:
            return refused(r.reason, r.detail)
        self._reload_codes()
        if kind == "person-deleted":  # numbers are reused (L-2): their enrolment goes too
            self.tickets.void_person(audit["person"])
        self.publish(Audit(kind=kind, **audit), env.trace)
        return OK

    def _add_person(self, role: str, name: str, code: str, **event: Any) -> Done:
        answer = self._rule_answer(code)
        if not answer.ok:
            return answer
        try:
            number = self.people.add(role, name, self.hasher.digest(code), len(code), **event)
        except Refusal as r:
            return refused(r.reason, r.detail)
        self._reload_codes()
        self.publish(Audit(kind="person-added", detail=role, person=number), event.get("cause"))
        return Done(ok=True, detail=number)

    def _rule_answer(self, code: str) -> Done:
        broken = passcodes.rule_broken(
            code, min_digits=self.rules["min_digits"], max_digits=self.rules["max_digits"]
        )
        return OK if broken is None else refused(broken, passcodes.RULES[broken])

    @accepts(VerifyPasscode)
    def on_verify(self, env: Envelope, peer: str) -> Decision:
        entry = env.body.entry
        flaw = passcodes.entry_flaw(entry, self.config["keypad"]["max_digits"])
        if flaw is not None:  # no panel sends this: a failure, counted (L-19, L-20)
            return self._judge(rules.Attempt("pin"), env, source="keypad", why=flaw)
        if self.initial:
            return Decision(granted=False, method="pin", reason="initial-state")
        ref = passcodes.find(entry, self.codes, self.lengths, self.hasher)
        return self._judge(self._attempt("pin", ref), env, source="keypad")

    @accepts(Match)
    def on_match(self, env: Envelope, peer: str) -> Decision | Done:
        """A face, finger or palm at the door: the recogniser says who, policy decides."""
        b = env.body
        wrong = self._not_the_matcher(b.method, peer, "a match")
        if wrong is not None:
            return wrong
        if self.initial:
            return Decision(granted=False, method=b.method, reason="initial-state")
        why = self._match_flaw(b)  # a person without that template, or not live (issue 11)
        if b.person is None or why is not None:  # a photo that matches fails too (L-20)
            attempt = rules.Attempt(b.method)
        else:
            attempt = rules.Attempt(b.method, person=b.person,
                                    validity=self.people.validity(b.person))  # fmt: skip
        if self._menu_armed():  # SET was just pressed: this verifies for the menu (L-13)
            return self._menu_match(attempt, env, peer)
        return self._judge(attempt, env, source=peer, why=why)

    def _attempt(self, method: str, ref: CodeRef | None) -> rules.Attempt:
        if ref is None:
            return rules.Attempt(method)
        if ref.kind == "visitor":
            return rules.Attempt(method, visitor=self.people.visitor(ref.owner))
        return rules.Attempt(
            method,
            person=ref.owner,
            validity=self.people.validity(ref.owner),
            duress=ref.kind == "duress",
        )

    # -- deciding -------------------------------------------------------------------------
    def _judge(
        self, attempt: rules.Attempt, env: Envelope, *, source: str, why: str | None = None
    ) -> Decision:
        """Decide, then write it down, then act, then say it: what is acted on is on disk.
        The decision, stamped first, is the drive's cause; it is published as soon as the
        motor has been asked, while the motor works: publishing first held the bolt back
        by a fifth of the time outside the write (issue 12, `lockmesh bench policy`).
        why names a refusal more precisely than the rules can (a face that is not live).
        A grant is logged `granted`; the unlock, when the motor has done it (issue 11)."""
        verdict = self._verify(attempt, env, source=source, success="granted", why=why)
        decision = Decision(
            granted=verdict.granted,
            method=attempt.method,
            reason=verdict.reason,
            person=attempt.person,
        )
        sent = self.stamp_event(decision, env.trace)
        said: list[Envelope] = []

        def say() -> None:  # once, and before anything else is published (its sequence)
            if not said:
                said.append(self.publish_stamped(sent))

        if verdict.granted:
            self._actuate(
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
            self._alarm(verdict.alarm, verdict.reason, person=attempt.person, cause=sent.id)
        if verdict.granted:
            self._outside_success(source, sent.id)
        return decision

    def _verify_only(
        self, attempt: rules.Attempt, env: Envelope, *, source: str, why: str | None = None
    ) -> rules.Verdict:
        """A verification that opens nothing (the menu's, L-13); failures still count (L-20)."""
        verdict = self._verify(attempt, env, source=source, success="menu-opened", why=why)
        if verdict.alarm is not None:
            self._alarm(verdict.alarm, verdict.reason, person=attempt.person, cause=env.trace)
        return verdict

    def _verify(
        self,
        attempt: rules.Attempt,
        env: Envelope,
        *,
        source: str,
        success: str,
        why: str | None = None,
    ) -> rules.Verdict:
        """The verdict, logged with the lockout's state in one transaction."""
        verdict = rules.decide(
            attempt,
            self.lockout,
            wall=self.wall.now(),
            mono=self.clock(),
            tz=self.tz,
            remote_enabled=self.settings.get("remote_unlock"),
        )
        if why is not None and verdict.reason == "invalid-credential":
            verdict = dataclasses.replace(verdict, reason=why)
        visitor = attempt.visitor.label if attempt.visitor else None
        with self.store.transaction():
            self.store.append(
                success if verdict.granted else "refused",
                person=attempt.person,
                method=attempt.method,
                source=source,
                reason=verdict.reason,
                cause=env.trace,
                detail=f"visitor {visitor}" if visitor else None,
            )
            if verdict.granted and visitor is not None:
                self.people.use_visitor(visitor)
            self.store.db.execute(
                "INSERT OR REPLACE INTO settings VALUES ('lockout_state', ?)",
                (self._lockout_state(),),
            )
        return verdict

    # -- modes that last until the next unlock from outside (L-21, L-22) ------------------
    def _mode(self, name: str) -> bool:
        return self.store.setting(name) == "on"

    def _set_mode(self, name: str, on: bool, *, source: str, cause: str) -> None:
        self.store.set_setting(name, "on" if on else "off", source=source, cause=cause)
        self.publish(Audit(kind=name, detail="on" if on else "off"), cause)

    @accepts(ArmLeavingHome)
    def on_arm_leaving_home(self, env: Envelope, peer: str) -> Done:
        self._set_mode("leaving-home", True, source=peer, cause=env.trace)
        return OK

    @accepts(LockRequest)
    def on_lock_request(self, env: Envelope, peer: str) -> Done:
        """✓ pressed outside after the door was shut (L-24)."""
        self._lock(source="keypad", cause=env.trace)
        return OK

    @accepts(MuteOnce)
    def on_mute(self, env: Envelope, peer: str) -> Done:
        self._set_mode("mute", True, source=peer, cause=env.trace)
        return OK

    def _outside_success(self, source: str, cause: str) -> None:
        if source not in OUTSIDE:
            return
        for name in UNTIL_OUTSIDE:
            if self._mode(name):
                self._set_mode(name, False, source=source, cause=cause)

    def _alarm(
        self, code: str, detail: str, *, person: str | None = None, cause: str | None = None
    ) -> None:
        """Logged, then published; the duress alarm goes to the owner only, never the panel."""
        self.store.log("alarm", reason=code, person=person, detail=detail, cause=cause)
        self.publish(Alarm(code=code, detail=detail, person=person), cause)
