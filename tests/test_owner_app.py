"""The owner app's side of policy (issue 13), part by part in this process on a real store:
the claim's password and PIN (L-17), app logins and their lockout, remote unlock with the
PIN and remote lock (L-18, L-32), Home (L-31), events paged back (L-35), the doorbell's
snapshot (L-23), and source="app" for what the gateway sends."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from proto.biometric import Snapshot
from proto.board import Actuate, Bolt, Chime, Door, Tamper
from proto.control import Done, StatusReply, refused
from proto.owner import (
    AppLogin,
    EventsRequest,
    HomeRequest,
    LockoutRelease,
    PairClaim,
    RemoteLock,
    RemoteUnlock,
    SettingSet,
)
from proto.policy import Alarm, Decision, Doorbell
from proto.power import Battery
from services.policy import settings as owner_settings
from services.policy.account import (
    LOGIN_LIMIT_ALARM,
    PASSWORD,
    PIN,
    PIN_LIMIT_ALARM,
    Account,
)
from services.policy.actuation import Actuation
from services.policy.board import Board
from services.policy.changes import Changes
from services.policy.decider import Decider
from services.policy.doorbell import NO_ANSWER, NO_VIDEO, Bell
from services.policy.home import HomeScreen
from services.policy.lock import Lock, owner_source
from services.policy.owner import Owner
from services.policy.pairing import PairingMode
from services.policy.people import Refusal
from services.policy.secrets import identity
from services.policy.tickets import TicketBook
from tests.policykit import SECRET, Clock, Outlet, envelope, events, make_lock

PASSWORD_1, PIN_1 = "correct horse battery", "4711"
PASSWORD_2, PIN_2 = "a whole new password", "90210"
LIMIT, WINDOW, DURATION = 5, 300.0, 180.0  # the account's defaults: like L-20's


@dataclass
class Policy:
    """Policy's parts wired as services/policy/service.py wires them."""

    lock: Lock
    outlet: Outlet
    clock: Clock
    actuation: Actuation
    decider: Decider
    account: Account
    pairing: PairingMode
    board: Board
    owner: Owner
    home: HomeScreen
    bell: Bell

    def ask(self, handler, body, sender: str = "gateway"):
        return handler(envelope(body, sender), sender)


def start_policy(data: Path, clock: Clock | None = None, outlet: Outlet | None = None) -> Policy:
    clock = clock or Clock()
    outlet = outlet or Outlet(answers={"motor": lambda body: Done(ok=True)})
    lock = make_lock(data, clock, outlet)
    actuation = Actuation(lock)
    decider = Decider(lock, actuation)
    account = Account(lock, SECRET)
    pairing = PairingMode(lock, identity(SECRET), account)
    board = Board(lock, actuation, decider, pairing)
    owner = Owner(lock, decider, Changes(lock, TicketBook(clock, 300.0)), actuation, account)
    home = HomeScreen(lock, actuation, board, decider, account)
    bell = Bell(lock, lambda: board.battery)
    return Policy(lock, outlet, clock, actuation, decider, account, pairing, board, owner,
                  home, bell)  # fmt: skip


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    p = start_policy(tmp_path / "data")
    p.lock.settings.set("direction", "right")
    return p


def claim(p: Policy, password: str = PASSWORD_1, pin: str = PIN_1, sender: str = "gateway"):
    """SET held (L-17), then the app's claim with the serial and code system info shows."""
    p.pairing.open(None)
    who = identity(SECRET)
    body = PairClaim(serial=who.serial, code=who.verification_code, password=password, pin=pin)
    return p.ask(p.pairing.on_pair_claim, body, sender)


def login(p: Policy, password: str, sender: str = "gateway") -> Done:
    return p.ask(p.account.on_app_login, AppLogin(password=password), sender)


def unlock(p: Policy, pin: str, sender: str = "gateway") -> Decision:
    return p.ask(p.owner.on_remote_unlock, RemoteUnlock(pin=pin), sender)


def remote_unlock_on(p: Policy) -> None:
    assert p.ask(p.owner.on_setting_set, SettingSet(name="remote_unlock", value="on")).ok


def actuations(p: Policy) -> list[str]:
    return [body.action for peer, body, _ in p.outlet.asked if isinstance(body, Actuate)]


# -- the claim (L-17, issue 13) -------------------------------------------------------------
def test_l17_issue_13_a_claim_keeps_only_argon2id_hashes_of_the_password_and_pin(policy):
    assert not policy.account.claimed()
    assert claim(policy).ok
    assert policy.account.claimed()
    stored = {k: policy.lock.store.setting(k) for k in (PASSWORD, PIN)}
    for key, secret in ((PASSWORD, PASSWORD_1), (PIN, PIN_1)):
        assert stored[key].startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored[key]
        assert secret not in stored[key]
    db = (policy.lock.store.db.execute("SELECT * FROM settings").fetchall(), events(policy.lock))
    assert PASSWORD_1 not in repr(db) and f"'{PIN_1}'" not in repr(db)
    [paired] = events(policy.lock, "paired")
    assert paired["source"] == "app"


def test_l17_issue_13_a_new_claim_replaces_both_and_a_wrong_one_changes_nothing(policy):
    claim(policy)
    policy.pairing.open(None)
    wrong = PairClaim(serial="LM0000000000", code="000000", password=PASSWORD_2, pin=PIN_2)
    assert policy.ask(policy.pairing.on_pair_claim, wrong).reason == "wrong-serial"
    assert login(policy, PASSWORD_1).ok
    assert claim(policy, PASSWORD_2, PIN_2).ok
    assert login(policy, PASSWORD_1).reason == "wrong-password"
    assert login(policy, PASSWORD_2).ok
    remote_unlock_on(policy)
    assert unlock(policy, PIN_1).reason == "wrong-pin"
    assert unlock(policy, PIN_2).granted
    assert "replaced the app password and PIN" in events(policy.lock, "paired")[0]["detail"]


def test_l30_issue_13_a_factory_reset_erases_the_password_and_pin(policy):
    claim(policy)
    policy.lock.store.factory_reset(source="keypad", cause=None)
    policy.account.forget()
    assert not policy.account.claimed()
    assert policy.lock.store.setting(PASSWORD) is None and policy.lock.store.setting(PIN) is None
    assert login(policy, PASSWORD_1).reason == "not-claimed"


# -- app logins ----------------------------------------------------------------------------
def test_issue_13_a_login_is_answered_and_every_attempt_logged(policy):
    assert login(policy, PASSWORD_1).reason == "not-claimed"  # nothing to log in to yet
    claim(policy)
    assert login(policy, PASSWORD_1) == Done(ok=True, detail="logged in")
    assert login(policy, "not the password").reason == "wrong-password"
    rows = [(e["kind"], e["source"], e["reason"], e["detail"]) for e in events(policy.lock)[:3]]
    assert rows == [
        ("app-login-failed", "app", "wrong-password", "failure 1 of 5"),
        ("app-login", "app", None, None),
        ("paired", "app", None, f"serial {identity(SECRET).serial}"),
    ]
    assert events(policy.lock, "app-login-failed")[-1]["reason"] == "not-claimed"


class CountingHasher:
    """The account's hasher, counting how often it is made to work."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, 0

    def matches(self, stored: str, secret: str) -> bool:
        self.calls += 1
        return self.real.matches(stored, secret)


def test_issue_13_five_wrong_passwords_lock_app_logins_for_three_minutes_unhashed(policy):
    claim(policy)
    counting = policy.account.passwords = CountingHasher(policy.account.passwords)
    for n in range(LIMIT):
        policy.clock.now += 10
        assert login(policy, f"wrong guess {n}").reason == "wrong-password"
    assert [a.code for a in policy.outlet.of_type(Alarm)] == [LOGIN_LIMIT_ALARM]
    assert counting.calls == LIMIT
    answer = login(policy, PASSWORD_1)  # even the right password, and it is not hashed
    assert (answer.reason, counting.calls) == ("locked-out", LIMIT)
    assert "180 s" in answer.detail
    assert events(policy.lock)[0]["kind"] == "app-login-locked"
    policy.clock.now += DURATION - 1
    assert login(policy, PASSWORD_1).reason == "locked-out"
    policy.clock.now += 1
    assert login(policy, PASSWORD_1).ok


def test_issue_13_wrong_passwords_spread_beyond_five_minutes_do_not_lock(policy):
    claim(policy)
    for n in range(3 * LIMIT):
        policy.clock.now += WINDOW / (LIMIT - 1) + 1  # never 5 within the window
        assert login(policy, f"wrong guess {n}").reason == "wrong-password"
    assert login(policy, PASSWORD_1).ok


def test_issue_13_the_login_lockout_survives_a_restart_of_policy_at_full_length(tmp_path):
    first = start_policy(tmp_path / "data")
    claim(first)
    for n in range(LIMIT):
        login(first, f"wrong guess {n}")
    first.clock.now += DURATION - 10  # nearly over, then policy restarts (a new boot's clock)
    first.lock.store.close()
    again = start_policy(tmp_path / "data", Clock(now=5.0))
    assert again.account.logins_locked()
    assert login(again, PASSWORD_1).reason == "locked-out"
    again.clock.now += DURATION - 1  # restored at its full length: pulling power never helps
    assert login(again, PASSWORD_1).reason == "locked-out"
    again.clock.now += 1
    assert login(again, PASSWORD_1).ok


# -- remote unlock with the app PIN (L-18, L-32) --------------------------------------------
def test_l18_issue_13_remote_unlock_needs_the_setting_the_claim_and_the_pin(policy):
    assert unlock(policy, PIN_1).reason == "remote-unlock-off"  # checked first: not counted
    remote_unlock_on(policy)
    assert unlock(policy, PIN_1).reason == "not-claimed"
    claim(policy)
    wrong = unlock(policy, "0000")
    assert (wrong.granted, wrong.reason, wrong.method) == (False, "wrong-pin", "remote")
    assert actuations(policy) == []
    right = unlock(policy, PIN_1)
    assert right.granted and actuations(policy) == ["unlock"]
    rows = [(e["kind"], e["source"], e["reason"]) for e in events(policy.lock)[:2]]
    assert rows == [("granted", "app", ""), ("refused", "app", "wrong-pin")]
    refusals = [e["reason"] for e in events(policy.lock, "refused")]
    assert refusals == ["wrong-pin", "not-claimed", "remote-unlock-off"]
    assert not policy.decider.locked_out()  # the PIN has its own count, not L-20's


def test_issue_13_five_wrong_pins_lock_remote_unlock_and_no_owner_command_lifts_it(tmp_path):
    p = start_policy(tmp_path / "data")
    p.lock.settings.set("direction", "right")
    remote_unlock_on(p)
    claim(p)
    for n in range(LIMIT):
        assert unlock(p, f"{1000 + n}").reason == "wrong-pin"
    assert [a.code for a in p.outlet.of_type(Alarm)] == [PIN_LIMIT_ALARM]
    assert unlock(p, PIN_1).reason == "pin-locked-out"  # even the right PIN
    assert p.ask(p.owner.on_lockout_release, LockoutRelease()).ok  # L-20's, not this one
    assert unlock(p, PIN_1).reason == "pin-locked-out"
    assert login(p, PASSWORD_1).ok  # the app still logs in: only remote unlock is locked
    assert actuations(p) == []
    p.lock.store.close()
    again = start_policy(tmp_path / "data", Clock(now=1.0))  # restarted: still locked out
    assert unlock(again, PIN_1).reason == "pin-locked-out"
    again.clock.now += DURATION
    assert unlock(again, PIN_1).granted


def test_issue_13_each_pin_lockout_doubles_survives_a_restart_and_a_right_pin_resets_it(
    tmp_path,
):
    """A hijacked gateway guessing the PIN: at a flat 3 minutes per five guesses a 4-digit
    PIN falls in days; doubling (to a day) makes it years."""
    p = start_policy(tmp_path / "data")
    p.lock.settings.set("direction", "right")
    remote_unlock_on(p)
    claim(p)
    guess = iter(range(1000, 9999))
    for length in (DURATION, 2 * DURATION, 4 * DURATION):
        for _ in range(LIMIT):
            assert unlock(p, f"{next(guess)}").reason == "wrong-pin"
        p.clock.now += length - 1
        assert unlock(p, PIN_1).reason == "pin-locked-out"
        p.clock.now += 1
    p.lock.store.close()
    p = start_policy(tmp_path / "data", Clock(now=p.clock.now))
    # the last lockout was saved active: a restart restores it at full length (fail-secure)
    assert unlock(p, PIN_1).reason == "pin-locked-out"
    p.clock.now += 4 * DURATION
    for _ in range(LIMIT):  # the strikes were kept: the next lockout is twice as long
        assert unlock(p, f"{next(guess)}").reason == "wrong-pin"
    p.clock.now += 8 * DURATION - 1
    assert unlock(p, PIN_1).reason == "pin-locked-out"
    p.clock.now += 1
    assert unlock(p, PIN_1).granted  # and the strikes start again
    for _ in range(LIMIT):
        assert unlock(p, f"{next(guess)}").reason == "wrong-pin"
    p.clock.now += DURATION
    assert unlock(p, PIN_1).granted
    assert p.account.pin_lockout.length() == DURATION


def test_issue_13_pin_lockouts_stop_doubling_at_a_day(policy):
    lockout = policy.account.pin_lockout
    lockout.strikes = 20
    assert lockout.length() == 86400.0


def test_issue_13_a_right_pin_clears_the_count_of_wrong_ones(policy):
    remote_unlock_on(policy)
    claim(policy)
    for _ in range(2):
        for n in range(LIMIT - 1):
            assert unlock(policy, f"{2000 + n}").reason == "wrong-pin"
        assert unlock(policy, PIN_1).granted
    assert not policy.account.pin_locked()


def test_l32_issue_13_remote_lock_drives_the_bolt_and_answers_the_motors_refusal(tmp_path):
    p = start_policy(tmp_path / "data")
    assert p.ask(p.owner.on_remote_lock, RemoteLock()).reason == "direction-unset"
    p.lock.settings.set("direction", "right")
    assert p.ask(p.owner.on_remote_lock, RemoteLock()).ok
    assert actuations(p) == ["lock"]
    p.outlet.answers["motor"] = lambda body: refused("jammed", "the bolt is stuck")
    assert p.ask(p.owner.on_remote_lock, RemoteLock(), "cli").reason == "jammed"
    failed = [(e["reason"], e["source"]) for e in events(p.lock, "actuation-failed")]
    assert failed == [("jammed", "remote"), ("direction-unset", "app")]


# -- source ----------------------------------------------------------------------------------
def test_issue_13_owner_actions_name_the_app_or_the_cli_as_their_source(policy):
    assert [owner_source(p) for p in ("gateway", "cli", "keypad")] == ["app", "remote", "keypad"]
    policy.ask(policy.owner.on_setting_set, SettingSet(name="volume", value="1"), "gateway")
    policy.ask(policy.owner.on_setting_set, SettingSet(name="volume", value="2"), "cli")
    rows = [(e["detail"], e["source"]) for e in events(policy.lock, "setting")[:2]]
    assert rows == [("volume=2", "remote"), ("volume=1", "app")]


# -- Home (L-31) and the settings (L-36) ---------------------------------------------------
def home(p: Policy):
    return p.ask(p.home.on_home, HomeRequest())


def hear(p: Policy, handler, body) -> None:
    handler(envelope(body, "motor" if not isinstance(body, Battery) else "power"))


def test_l31_home_shows_the_lock_as_its_parts_last_heard_it(policy):
    first = home(policy)
    assert (first.bolt, first.door, first.battery_percent, first.alarms) == (
        "unknown", "unknown", None, [],
    )  # fmt: skip
    assert (first.bluetooth, first.claimed, first.remote_unlock, first.wifi) == (
        "absent", False, False, True,
    )  # fmt: skip
    hear(policy, policy.actuation.on_bolt, Bolt(state="locked"))
    hear(policy, policy.board.on_door, Door(open=False))
    hear(policy, policy.board.on_battery, Battery(percent=80.0, volts=3.9, external=True))
    now = home(policy)
    assert (now.bolt, now.door, now.battery_percent, now.battery_volts) == (
        "locked", "closed", 80.0, 3.9,
    )  # fmt: skip
    assert now.external_power and now.video_allowed and now.alarms == []


def test_l31_home_lists_the_alarms_active_now_and_drops_them_when_they_end(policy):
    hear(policy, policy.board.on_battery, Battery(percent=10.0, volts=3.3, low=True,
                                                  video_allowed=False))  # fmt: skip
    hear(policy, policy.board.on_tamper, Tamper(removed=True))
    hear(policy, policy.actuation.on_bolt, Bolt(state="jammed", reason="stuck"))
    hear(policy, policy.board.on_door, Door(open=True))
    policy.board.tick(policy.clock.now + policy.lock.config["alarms"]["door_ajar_s"])
    now = home(policy)
    assert not now.video_allowed
    assert sorted(now.alarms) == [
        "door-ajar", "front-escutcheon-removed", "lock-jammed", "low-battery",
    ]  # fmt: skip
    hear(policy, policy.board.on_battery, Battery(percent=90.0, volts=4.0))
    hear(policy, policy.board.on_tamper, Tamper(removed=False))
    hear(policy, policy.actuation.on_bolt, Bolt(state="unlocked"))
    hear(policy, policy.board.on_door, Door(open=False))
    assert home(policy).alarms == []


def test_l31_a_restarted_policy_asks_the_motor_for_the_bolt_door_and_escutcheon(tmp_path):
    board = {"bolt": "locked", "door": "closed", "tamper": "removed"}
    status = StatusReply(service="motor", state="ready", pid=1, uptime_s=1.0, msgs_in=0,
                         msgs_out=0, detail=board)  # fmt: skip
    p = start_policy(tmp_path / "data", outlet=Outlet(answers={"motor": lambda body: status}))
    p.board.tick(p.clock.now)  # the bolt is unknown: the motor is asked
    now = home(p)
    assert (now.bolt, now.door, now.alarms) == ("locked", "closed", ["front-escutcheon-removed"])


def test_l31_l20_issue_13_home_shows_each_lockout(policy):
    remote_unlock_on(policy)
    claim(policy)
    for n in range(LIMIT):
        login(policy, f"wrong guess {n}")
        unlock(policy, f"{3000 + n}")
    now = home(policy)
    assert now.remote_unlock and now.claimed and not now.locked_out
    assert now.alarms == [LOGIN_LIMIT_ALARM, PIN_LIMIT_ALARM]
    for _ in range(LIMIT):  # L-20's lockout, of the codes at the door
        policy.decider.lockout.fail(policy.clock.now)
    assert home(policy).locked_out and "wrong-code-entry-limit" in home(policy).alarms


@pytest.mark.parametrize(
    "name, good, bad",
    [
        ("auto_lock", "on", "maybe"),
        ("auto_lock_delay_s", "30", "0"),
        ("lockout_protection", "off", "2"),
        ("remote_unlock", "on", "yes please"),
        ("wifi", "off", "5GHz"),
        ("volume", "3", "4"),
        ("direction", "left", "up"),
    ],
)
def test_l36_every_setting_of_the_app_exists_and_is_checked(name, good, bad):
    owner_settings.parse(name, good)
    with pytest.raises(Refusal):
        owner_settings.parse(name, bad)


# -- events, paged back (L-35) ----------------------------------------------------------------
def test_l35_issue_13_events_page_back_by_seq_over_thousands_of_rows(policy):
    store = policy.lock.store
    with store.transaction():
        for n in range(3000):
            store.append("doorbell" if n % 3 == 0 else "setting", detail=str(n))
    newest = store.events(1)[0]["seq"]
    seen, before, pages = [], None, 0
    started = time.perf_counter()
    while True:
        page = policy.ask(policy.owner.on_events, EventsRequest(limit=500, before=before)).items
        if not page:
            break
        seen += [row["seq"] for row in page]
        before, pages = page[-1]["seq"], pages + 1
    elapsed = time.perf_counter() - started
    assert seen == list(range(newest, 0, -1))  # each row once, newest first
    assert pages == -(-newest // 500)
    bells = store.events(1000, kind="doorbell", before=1500)
    assert bells and all(r["kind"] == "doorbell" and r["seq"] < 1500 for r in bells)
    assert elapsed < 5.0, elapsed
    plan = " ".join(
        str(row)
        for row in store.db.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM events WHERE 1 AND seq < ? ORDER BY seq DESC "
            "LIMIT ?",
            (100, 10),
        )
    )
    assert "INTEGER PRIMARY KEY" in plan and "TEMP B-TREE" not in plan, plan


# -- the doorbell's snapshot (L-23) --------------------------------------------------------
def ring(p: Policy) -> Done:
    return p.ask(p.bell.on_doorbell, Doorbell(), "keypad")


def test_l23_issue_13_the_bell_asks_the_face_service_for_a_snapshot_named_after_its_row(policy):
    policy.outlet.answers["face"] = lambda body: Done(ok=True, detail=f"{body.name}.jpg")
    answer = ring(policy)
    [row] = events(policy.lock, "doorbell")
    epoch = policy.lock.store.head().epoch
    assert row["detail"] == answer.detail == f"snapshot=bell-{epoch}-{row['seq']}"
    asked = [(peer, type(body)) for peer, body, _ in policy.outlet.asked]
    assert asked == [("face", Snapshot), ("motor", Chime)]  # the chime did not wait for it
    timeout = policy.outlet.asked[0][2]
    assert timeout == policy.lock.config["doorbell"]["snapshot_timeout_s"] <= 1.0
    assert row["reason"] is None  # chimed


@pytest.mark.parametrize(
    "face, note",
    [
        (lambda body: None, NO_ANSWER),
        (lambda body: refused("no-camera", ""), "snapshot: no-camera"),
    ],
)
def test_l23_issue_13_no_snapshot_is_said_and_the_bell_still_chimes(policy, face, note):
    policy.outlet.answers["face"] = face
    assert ring(policy).detail == note
    [row] = events(policy.lock, "doorbell")
    assert (row["detail"], row["reason"]) == (note, None)
    assert any(isinstance(body, Chime) for _, body, _ in policy.outlet.asked)


def test_l23_l28_a_battery_too_low_for_video_asks_for_no_snapshot(policy):
    policy.outlet.answers["face"] = lambda body: Done(ok=True)
    hear(policy, policy.board.on_battery, Battery(percent=15.0, volts=3.4, low=True,
                                                  video_allowed=False))  # fmt: skip
    assert ring(policy).detail == NO_VIDEO
    assert [type(body) for _, body, _ in policy.outlet.asked] == [Chime]


def test_l23_l28_on_the_usb_c_supply_a_low_battery_still_takes_the_snapshot(policy):
    """Policy and the face service judge video by one rule (proto/power.py video_off)."""
    policy.outlet.answers["face"] = lambda body: Done(ok=True, detail=body.name)
    hear(policy, policy.board.on_battery, Battery(percent=15.0, volts=3.4, low=True,
                                                  video_allowed=False, external=True))  # fmt: skip
    assert ring(policy).detail.startswith("snapshot=bell-")
    assert any(isinstance(body, Snapshot) for _, body, _ in policy.outlet.asked)
