"""Issue 15's access rules at the policy level: Matter's UserStatus, CredentialRule,
OperatingMode, RequirePINforRemoteOperation, WrongCodeEntryLimit and
UserCodeTemporaryDisableTime, the long-window guard, and L-20 at the door. Policy's own
parts on a real store with a hand-set clock (tests/policykit.py); the mesh's words are in
test_access_rules_mesh.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from proto.biometric import Match
from proto.board import Actuate, Siren
from proto.control import Done
from proto.owner import (
    CredentialRuleSet,
    OperatingModeRequest,
    OperatingModeSet,
    PairClaim,
    PersonAdd,
    PersonStatus,
    RemoteUnlock,
    SettingSet,
)
from proto.policy import Alarm, Decision, FactorsNeeded, LockoutNotice, VerifyPasscode
from services.policy import guessing
from services.policy.account import Account
from services.policy.actuation import Actuation
from services.policy.board import Board
from services.policy.changes import Changes
from services.policy.decider import Decider
from services.policy.lock import Lock
from services.policy.menu import Menu
from services.policy.modes import OperatingModes
from services.policy.owner import Owner
from services.policy.pairing import PairingMode
from services.policy.panel import Panel
from services.policy.secrets import identity
from services.policy.templates import Biometrics
from services.policy.tickets import TicketBook
from tests.policykit import SECRET, Clock, Outlet, envelope, events, make_lock

ADMIN_CODE, USER_CODE, PIN = "246813", "975312", "4711"
MONDAY_9 = 1796029200.0  # 2026-11-30 09:00 UTC, a Monday


@dataclass
class Policy:
    """Policy's parts wired as services/policy/service.py wires them."""

    lock: Lock
    outlet: Outlet
    clock: Clock
    decider: Decider
    owner: Owner
    panel: Panel
    modes: OperatingModes
    biometrics: Biometrics
    pairing: PairingMode
    board: Board

    def ask(self, handler, body, sender: str = "cli"):
        return handler(envelope(body, sender), sender)

    def code(self, entry: str) -> Decision:
        return self.ask(self.panel.on_verify, VerifyPasscode(entry=entry), "keypad")

    def face(self, person: str | None) -> Decision:
        match = Match(method="face", person=person, live=True, slot=1 if person else 0)
        return self.ask(self.biometrics.on_match, match, "face")

    def setting(self, name: str, value: str, sender: str = "cli") -> Done:
        return self.ask(self.owner.on_setting_set, SettingSet(name=name, value=value), sender)

    def mode(self, mode: str, pin: str = "", slots=(), sender: str = "cli") -> Done:
        body = OperatingModeSet(mode=mode, slots=list(slots), pin=pin)
        return self.ask(self.modes.on_set, body, sender)

    def published(self, kind: type) -> list:
        return self.outlet.of_type(kind)

    def asked(self, kind: type) -> list:
        return [body for _, body, _ in self.outlet.asked if isinstance(body, kind)]

    def tick(self) -> None:
        self.decider.tick(self.clock.now)
        self.modes.tick(self.clock.now)


def start(data: Path, clock: Clock | None = None) -> Policy:
    clock = clock or Clock()
    outlet = Outlet(answers={"motor": lambda body: Done(ok=True), "face": lambda b: Done(ok=True)})
    lock = make_lock(data, clock, outlet)
    lock.wall.now = lambda: MONDAY_9  # type: ignore[method-assign]
    tickets = TicketBook(clock, 300.0)
    changes = Changes(lock, tickets)
    actuation = Actuation(lock)
    decider = Decider(lock, actuation)
    account = Account(lock, SECRET)
    pairing = PairingMode(lock, identity(SECRET), account)
    board = Board(lock, actuation, decider, pairing)
    owner = Owner(lock, decider, changes, actuation, account)
    panel = Panel(lock, decider, changes, actuation, board)
    modes = OperatingModes(lock, actuation, board, owner.remote_authority)
    menu = Menu(lock, decider, changes, identity(SECRET))
    biometrics = Biometrics(lock, tickets, decider, menu)
    return Policy(lock, outlet, clock, decider, owner, panel, modes, biometrics, pairing, board)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    """A lock with administrator 001 and user 002 (a passcode and a face each)."""
    p = start(tmp_path / "data")
    p.lock.settings.set("direction", "right")
    assert p.ask(p.owner.on_person_add, PersonAdd(name="Ann", code=ADMIN_CODE, role="admin")).ok
    assert p.ask(p.owner.on_person_add, PersonAdd(name="Bob", code=USER_CODE)).ok
    for person in ("001", "002"):
        p.lock.people.add_template("face", person, lambda *_: b"sealed", slot=1)
    return p


def claim(p: Policy) -> None:
    p.pairing.open(None)
    who = identity(SECRET)
    body = PairClaim(serial=who.serial, code=who.verification_code, password="a long pw!", pin=PIN)
    assert p.ask(p.pairing.on_pair_claim, body).ok


def unlocks(p: Policy) -> list[str]:
    return [body.action for body in p.asked(Actuate)]


# -- UserStatus: disable without deleting (issue 15) --------------------------------------
def test_issue_15_a_disabled_person_is_refused_every_credential_and_enabled_again(policy):
    assert policy.ask(policy.owner.on_person_status, PersonStatus(number="002", enabled=False)).ok
    assert policy.code(USER_CODE).reason == "user-disabled"
    assert policy.face("002").reason == "user-disabled"
    assert unlocks(policy) == []
    assert policy.lock.people.listing()[1]["status"] == "disabled"
    assert [e["person"] for e in events(policy.lock, "person-disabled")] == ["002"]
    assert policy.ask(policy.owner.on_person_status, PersonStatus(number="002", enabled=True)).ok
    assert policy.code(USER_CODE).granted
    assert events(policy.lock, "person-enabled")[0]["source"] == "remote"


def test_issue_15_a_disabled_persons_refusals_do_not_count_toward_the_lockout(policy):
    policy.ask(policy.owner.on_person_status, PersonStatus(number="002", enabled=False))
    for _ in range(8):
        policy.code(USER_CODE)
    assert not policy.decider.locked_out()


def test_issue_15_the_last_enabled_administrator_cannot_be_disabled(policy):
    answer = policy.ask(policy.owner.on_person_status, PersonStatus(number="001", enabled=False))
    assert (answer.ok, answer.reason) == (False, "last-admin")
    assert policy.code(ADMIN_CODE).granted


# -- CredentialRule: multi-factor (issue 15) ---------------------------------------------
def test_issue_15_dual_needs_a_face_then_a_passcode_and_the_panel_hears_what_is_left(policy):
    rule = CredentialRuleSet(number="002", rule="dual")
    assert policy.ask(policy.owner.on_credential_rule, rule).ok
    first = policy.face("002")
    assert (first.granted, first.reason) == (False, "more-factors")
    needed = policy.published(FactorsNeeded)[-1]
    assert (needed.person, needed.still, needed.shown) == ("002", 1, ["face"])
    assert unlocks(policy) == []
    assert policy.face("002").reason == "more-factors"  # the same kind again is not a second
    assert policy.code(USER_CODE).granted
    assert unlocks(policy) == ["unlock"]
    assert [e["reason"] for e in events(policy.lock, "factor")] == ["more-factors"] * 2


def test_issue_15_tri_needs_three_different_kinds(policy):
    policy.ask(policy.owner.on_credential_rule, CredentialRuleSet(number="002", rule="tri"))
    policy.lock.people.add_template("fingerprint", "002", lambda *_: b"sealed", slot=1)
    assert policy.face("002").reason == "more-factors"
    assert policy.code(USER_CODE).reason == "more-factors"
    assert policy.published(FactorsNeeded)[-1].still == 1
    finger = Match(method="fingerprint", person="002", live=True, slot=1)
    assert policy.ask(policy.biometrics.on_match, finger, "biometric").granted


def test_issue_15_a_phone_key_is_one_factor_never_enough_alone_for_dual():
    from datetime import timezone

    from services.policy.rules import Attempt, Factors, decide

    lockout, factors = guessing.door_lockout(20), Factors(30.0)

    def show(method: str, mono: float):
        attempt = Attempt(method, person="002", factors=2)
        return decide(attempt, lockout, wall=MONDAY_9, mono=mono, tz=timezone.utc,
                      remote_enabled=True, factors=factors)  # fmt: skip

    assert show("ble", 1.0).reason == "more-factors"
    assert show("ble", 2.0).reason == "more-factors"  # the same kind again
    assert show("pin", 3.0).granted


def test_issue_15_a_half_done_attempt_times_out_as_one_failure(policy):
    policy.ask(policy.owner.on_credential_rule, CredentialRuleSet(number="002", rule="dual"))
    policy.face("002")
    policy.clock.now += 31  # past lockout.factor_window_s
    policy.tick()
    row = events(policy.lock, "refused")[0]
    assert (row["person"], row["reason"]) == ("002", "factor-timeout")
    assert policy.published(FactorsNeeded)[-1].timed_out
    assert len(policy.decider.lockout.failures) == 1
    assert policy.code(USER_CODE).reason == "more-factors"  # it starts afresh


def test_issue_15_five_half_done_attempts_lock_the_door_like_five_wrong_codes(policy):
    policy.ask(policy.owner.on_credential_rule, CredentialRuleSet(number="002", rule="dual"))
    for _ in range(5):
        policy.face("002")
        policy.clock.now += 31
        policy.tick()
    assert policy.decider.locked_out()
    assert policy.code(ADMIN_CODE).reason == "lockout"


# -- OperatingMode (issue 15) --------------------------------------------------------------
def test_issue_15_vacation_lets_only_administrators_in(policy):
    assert policy.mode("vacation").ok
    assert policy.code(USER_CODE).reason == "vacation-mode"
    assert policy.face("002").reason == "vacation-mode"
    assert policy.code(ADMIN_CODE).granted
    status = policy.ask(policy.modes.on_request, OperatingModeRequest())
    assert (status.mode, status.effective) == ("vacation", "vacation")
    assert json.loads(events(policy.lock, "setting")[0]["detail"].split("=", 1)[1])["mode"] == (
        "vacation"
    )


def test_issue_15_privacy_refuses_everything_from_outside_and_counts_nothing(policy):
    claim(policy)
    policy.setting("remote_unlock", "on")
    assert policy.mode("privacy").ok
    for _ in range(6):
        assert policy.code("000000").reason == "privacy-mode"
    assert policy.code(ADMIN_CODE).reason == "privacy-mode"
    assert policy.face("001").reason == "privacy-mode"
    assert policy.ask(policy.owner.on_remote_unlock, RemoteUnlock(pin=PIN)).reason == (
        "privacy-mode"
    )
    assert not policy.decider.locked_out() and unlocks(policy) == []


def test_issue_15_no_remote_refuses_the_remote_unlock_and_not_the_keypad(policy):
    claim(policy)
    policy.setting("remote_unlock", "on")
    assert policy.mode("no-remote").ok
    decision = policy.ask(policy.owner.on_remote_unlock, RemoteUnlock(pin=PIN), "gateway")
    assert decision.reason == "no-remote-mode"
    assert policy.code(USER_CODE).granted


def test_issue_15_passage_needs_the_remote_pin_and_holds_the_bolt_open(policy):
    assert policy.mode("passage").reason == "remote-unlock-off"
    claim(policy)
    policy.setting("remote_unlock", "on")
    assert policy.mode("passage", pin="0000").reason == "wrong-pin"
    assert policy.mode("passage", sender="gateway").reason == "wrong-pin"  # a hijacked app
    assert unlocks(policy) == []
    assert policy.mode("passage", pin=PIN).ok
    assert unlocks(policy) == ["unlock"]
    assert policy.code(USER_CODE).reason == "passage-mode"
    assert policy.mode("normal").ok
    assert unlocks(policy)[-1] == "lock"


def test_issue_15_passage_on_a_weekly_schedule_opens_and_closes_in_its_slots(policy):
    claim(policy)
    policy.setting("remote_unlock", "on")
    mon_9_to_10 = [0b10, 9 * 60, 10 * 60]  # Matter's DaysMask: bit 1 Monday
    assert policy.mode("passage", pin=PIN, slots=[mon_9_to_10]).ok
    assert unlocks(policy) == ["unlock"]  # 09:00 Monday: inside the slot
    policy.lock.wall.now = lambda: MONDAY_9 + 3600  # type: ignore[method-assign]
    policy.tick()
    assert unlocks(policy) == ["unlock", "lock"]
    policy.lock.wall.now = lambda: None  # type: ignore[method-assign]
    policy.tick()  # a lost clock never holds the bolt open
    assert policy.ask(policy.modes.on_request, OperatingModeRequest()).effective == "normal"


def test_issue_15_auto_lock_does_not_throw_the_bolt_in_passage_mode(policy):
    from proto.board import Bolt, Door

    claim(policy)
    policy.setting("remote_unlock", "on")
    policy.setting("auto_lock", "on")
    policy.setting("auto_lock_delay_s", "1")
    assert policy.mode("passage", pin=PIN).ok
    board = policy.board
    board.actuation.on_bolt(envelope(Bolt(state="unlocked"), "motor"))
    board.on_door(envelope(Door(open=False), "motor"))
    policy.clock.now += 2
    board.tick(policy.clock.now)
    assert unlocks(policy) == ["unlock"]  # passage's, and no auto-lock after it


def test_issue_15_passage_ending_with_the_door_open_locks_once_the_door_closes(policy):
    from proto.board import Door

    claim(policy)
    policy.setting("remote_unlock", "on")
    assert policy.mode("passage", pin=PIN).ok
    policy.board.on_door(envelope(Door(open=True), "motor"))
    assert policy.mode("normal").ok
    assert unlocks(policy) == ["unlock"]  # not thrown into the open door
    policy.board.on_door(envelope(Door(open=True), "motor"))  # still open: still waiting
    assert unlocks(policy) == ["unlock"]
    policy.board.on_door(envelope(Door(open=False), "motor"))
    assert unlocks(policy) == ["unlock", "lock"]
    policy.board.on_door(envelope(Door(open=True), "motor"))
    policy.board.on_door(envelope(Door(open=False), "motor"))
    assert unlocks(policy) == ["unlock", "lock"]  # once, not at every closing after


def test_issue_15_passage_back_in_force_while_the_door_was_open_is_not_locked_on_closing(
    policy,
):
    from proto.board import Door

    claim(policy)
    policy.setting("remote_unlock", "on")
    assert policy.mode("passage", pin=PIN).ok
    policy.board.on_door(envelope(Door(open=True), "motor"))
    assert policy.mode("normal").ok
    assert policy.mode("passage", pin=PIN).ok
    policy.board.on_door(envelope(Door(open=False), "motor"))
    assert unlocks(policy) == ["unlock", "unlock"]


# -- RequirePINforRemoteOperation (issue 15) ------------------------------------------------
def test_issue_15_remote_unlock_needs_the_pin_by_default_and_only_the_cli_may_drop_it(policy):
    claim(policy)
    policy.setting("remote_unlock", "on")
    assert policy.ask(policy.owner.on_remote_unlock, RemoteUnlock(pin="0000")).reason == (
        "wrong-pin"
    )
    refused = policy.setting("require_pin_for_remote", "off", sender="gateway")
    assert (refused.ok, refused.reason) == (False, "cli-only")
    assert policy.setting("require_pin_for_remote", "off").ok
    assert policy.ask(policy.owner.on_remote_unlock, RemoteUnlock(pin="0000")).granted


# -- WrongCodeEntryLimit, UserCodeTemporaryDisableTime (issue 15, L-20) ---------------------
def test_issue_15_the_lockout_settings_apply_at_once_within_safe_bounds(policy):
    assert policy.setting("wrong_code_entry_limit", "3").ok
    assert policy.setting("user_code_temporary_disable_time_s", "60").ok
    for bad in (("wrong_code_entry_limit", "2"), ("wrong_code_entry_limit", "11"),
                ("user_code_temporary_disable_time_s", "59")):  # fmt: skip
        assert policy.setting(*bad).reason == "bad-value"
    for _ in range(3):
        policy.code("000000")
    assert policy.decider.locked_out()
    policy.clock.now += 60
    assert policy.code(USER_CODE).granted


# -- L-20 at the door (issue 15) ---------------------------------------------------------
def test_l20_issue_15_a_lockout_sounds_the_siren_tells_the_panel_and_its_end_is_an_event(policy):
    for _ in range(5):
        policy.code("000000")
    assert [s.seconds for s in policy.asked(Siren)] == [10.0]
    assert policy.published(LockoutNotice)[-1].active
    assert policy.code(USER_CODE).reason == "lockout"
    policy.clock.now += 180
    policy.tick()
    assert not policy.published(LockoutNotice)[-1].active
    assert len(events(policy.lock, "lockout-ended")) == 1
    policy.tick()
    assert len(events(policy.lock, "lockout-ended")) == 1  # once


# -- the long-window guard (issue 15) -------------------------------------------------------
def test_issue_15_the_daily_budget_alarms_the_owner_and_lockouts_grow(policy):
    """Four wrong codes per five minutes never trip L-20; the twentieth code tested in a
    day does, and each lockout after it lasts twice the one before."""
    for _ in range(20):
        policy.code("000000")
        policy.clock.now += 76  # 4 per 5 minutes
        policy.tick()
    alarms = [a.code for a in policy.published(Alarm)]
    assert alarms == ["daily-failure-limit"]
    lockout = policy.decider.lockout
    assert lockout.until is not None and lockout.length() == 180
    policy.clock.now = lockout.until
    policy.code("000000")  # over budget: every failure trips, each twice as long
    assert lockout.length() == 360
    assert json.loads(policy.lock.store.setting("lockout_state"))["day"] == 21


def test_issue_15_a_long_entry_spends_the_budget_by_the_codes_it_tested(policy):
    """A 20-digit entry tests 15 six-digit codes (L-19): two of them reach the budget."""
    policy.code("0" * 20)
    assert not policy.decider.locked_out()
    policy.clock.now += 400
    policy.code("0" * 20)
    assert policy.decider.locked_out()
    assert [a.code for a in policy.published(Alarm)] == ["daily-failure-limit"]


def test_issue_15_the_expected_time_to_guess_is_years_with_the_guard():
    """The figures in readme-rules.md, from the real Lockout against the best of several
    attackers' paces (services/policy/guessing.py)."""
    assert guessing.best_per_day(None, days=3) > 17280  # the issue's pace is not the best
    assert guessing.expected_days(None) < 1
    assert guessing.best_per_day(20, days=30) < 40
    assert guessing.expected_days(20) > 365


# -- Matter's events (issue 15: events --matter) -------------------------------------------
def test_issue_15_log_rows_become_matters_events_with_matters_numbers():
    from proto.matter import matter_event

    def row(kind, **f):
        return {"kind": kind, "person": None, "method": None, "source": None, "reason": None,
                "detail": None, **f}  # fmt: skip

    assert matter_event(row("unlock", person="002", method="face", source="face")) == (
        "LockOperation",
        {"LockOperationType": 1, "OperationSource": 9, "UserIndex": 2,
         "Credentials": [{"CredentialType": 5}]},
    )  # fmt: skip
    error = matter_event(row("refused", person="002", method="pin", source="keypad",
                             reason="user-disabled"))  # fmt: skip
    assert error is not None and error[1]["OperationError"] == 2  # DisabledUserDenied
    assert (
        matter_event(row("refused", method="pin", source="app", reason="vacation-mode"))[1][
            "OperationError"
        ]
        == 3
    )  # Restricted
    assert matter_event(row("alarm", reason="daily-failure-limit")) == (
        "DoorLockAlarm",
        {"AlarmCode": 4},
    )
    assert matter_event(row("alarm", reason="low-battery")) is None  # not Door Lock's
    assert matter_event(row("person-disabled", person="002", source="remote"))[1] == {
        "LockDataType": 2, "DataOperationType": 2, "OperationSource": 7, "UserIndex": 2
    }  # fmt: skip
    assert (
        matter_event(row("template-added", person="002", method="palm-vein"))[1]["LockDataType"]
        == 0
    )  # no palm vein in Matter
    assert matter_event(row("setting", detail="volume=1")) is None


# -- the panel's words (services/keypad/door_rules.py) ------------------------------------
def test_l20_issue_15_the_panel_says_system_locked_not_verification_failed():
    from services.keypad import door_rules
    from services.keypad.effects import Say
    from services.keypad.menu import Menu

    menu = Menu(sleep_after_s=20.0, max_digits=20)
    menu.mode, menu.waiting = "entry", "verify"
    assert menu.answer("verify", False, "lockout")[0] == Say("system-locked")
    menu.waiting = "verify"
    assert menu.answer("verify", False, "invalid-credential")[0] == Say("verify-failed")
    menu.waiting = "verify"
    assert menu.answer("verify", False, "more-factors") == []  # policy's event speaks
    assert door_rules.lockout(True) == [Say("system-locked")]
    said = door_rules.factors(1, ["face"], timed_out=False)[0]
    assert said == Say("more-factors", {"shown": "face", "still": "1"})
