"""The panel's requests outside the menu: the first start (L-12, L-13), passcodes at the
door (L-19), the lock button outside (L-24), leaving home and mute (L-21, L-22), and what
the panel shows of the lock."""

from __future__ import annotations

import dataclasses

from proto.control import OK, Done, refused
from proto.policy import (
    ArmLeavingHome,
    Audit,
    CheckPasscode,
    CreateFirstAdmin,
    Decision,
    LockInfo,
    LockInfoRequest,
    LockRequest,
    MuteOnce,
    SetDirection,
    VerifyPasscode,
)
from proto.wire import Envelope
from services.base import accepts
from services.policy import passcodes, rules
from services.policy.actuation import Actuation
from services.policy.board import Board
from services.policy.changes import Changes
from services.policy.decider import Decider
from services.policy.lock import Lock
from services.policy.offline_codes import OfflineCodes


class Panel:
    def __init__(
        self,
        lock: Lock,
        decider: Decider,
        changes: Changes,
        actuation: Actuation,
        board: Board,
        offline: OfflineCodes | None = None,
    ) -> None:
        self.lock, self.decider, self.changes = lock, decider, changes
        self.actuation, self.board, self.offline = actuation, board, offline

    @accepts(LockInfoRequest)
    def on_info(self, env: Envelope[LockInfoRequest], peer: str) -> LockInfo:
        return LockInfo(
            initial=self.lock.initial,
            direction=self.lock.settings.get("direction"),
            people=self.lock.people.count(),
            bolt=self.actuation.bolt,
            door=self.board.door,
            muted=self.decider.mode("mute"),
            volume=self.lock.settings.get("volume"),  # the panel's level from its start (L-36)
        )

    @accepts(VerifyPasscode)
    def on_verify(self, env: Envelope[VerifyPasscode], peer: str) -> Decision:
        entry = env.body.entry
        flaw = passcodes.entry_flaw(entry, self.lock.config["keypad"]["max_digits"])
        if flaw is not None:  # no panel sends this: a failure, counted (L-19, L-20)
            return self.decider.judge(rules.Attempt("pin"), env, source="keypad", why=flaw)
        if self.lock.initial:
            return Decision(granted=False, method="pin", reason="initial-state")
        ref = passcodes.find(entry, self.lock.codes, self.lock.lengths, self.lock.hasher)
        if ref is None and self.offline is not None:  # issue 16: made away from the lock
            offline = self.offline.judge(entry, env)
            if offline is not None:
                return offline
        attempt = self.decider.attempt("pin", ref)
        tries = passcodes.tried(entry, self.lock.lengths)  # the daily budget's (issue 15)
        return self.decider.judge(dataclasses.replace(attempt, tries=tries), env, source="keypad")

    # -- the first start ------------------------------------------------------------------
    @accepts(SetDirection)
    def on_set_direction(self, env: Envelope[SetDirection], peer: str) -> Done:
        if not self.lock.initial:
            return refused("not-allowed", "the direction is changed from the menu (L-14)")
        direction = env.body.direction
        self.lock.settings.set("direction", direction, source=peer, cause=env.trace)
        self.lock.publish(Audit(kind="direction", detail=direction), env.trace)
        return OK

    @accepts(CheckPasscode)
    def on_check(self, env: Envelope[CheckPasscode], peer: str) -> Done:
        code = env.body.code
        return self.decider.entry_refused(env, code) or self.changes.rule_answer(code)

    @accepts(CreateFirstAdmin)
    def on_create_admin(self, env: Envelope[CreateFirstAdmin], peer: str) -> Done:
        b = env.body
        capped = self.decider.entry_refused(env, b.code, b.repeat)
        if capped is not None:
            return capped
        if not self.lock.initial:
            return refused("not-allowed", "an administrator exists: use the menu (L-13)")
        if self.lock.settings.get("direction") is None:
            return refused("direction-unset", "choose the opening direction first (L-12)")
        if b.repeat != b.code:
            answer = self.changes.rule_answer(b.code)
            return answer if not answer.ok else refused("mismatch", passcodes.RULES["mismatch"])
        return self.changes.add_person("admin", "", b.code, source=peer, cause=env.trace)

    # -- the lock, and the modes until the next unlock from outside -----------------------
    @accepts(LockRequest)
    def on_lock_request(self, env: Envelope[LockRequest], peer: str) -> Done:
        """✓ pressed outside after the door was shut (L-24)."""
        self.actuation.lock_bolt(source="keypad", cause=env.trace)
        return OK

    @accepts(ArmLeavingHome)
    def on_arm_leaving_home(self, env: Envelope[ArmLeavingHome], peer: str) -> Done:
        self.decider.set_mode("leaving-home", True, source=peer, cause=env.trace)
        return OK

    @accepts(MuteOnce)
    def on_mute(self, env: Envelope[MuteOnce], peer: str) -> Done:
        self.decider.set_mode("mute", True, source=peer, cause=env.trace)
        return OK
