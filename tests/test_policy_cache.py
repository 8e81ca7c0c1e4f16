"""What a decision reads of people and settings is kept in memory (services/policy/
readcache.py, issue 12 item 6), and never outlives a change: a deleted person, a validity
changed or run out, an exhausted visitor code, a lockout, a setting, a factory reset, a
rolled-back transaction and a write in plain SQL are each seen by the very next
decision. Policy's parts in this process, on a real store, as service.py wires them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from proto.board import Actuate
from proto.control import Done
from proto.policy import Decision, VerifyPasscode
from services.policy.account import Account
from services.policy.actuation import Actuation
from services.policy.board import Board
from services.policy.changes import Changes
from services.policy.decider import Decider
from services.policy.lock import Lock
from services.policy.pairing import PairingMode
from services.policy.panel import Panel
from services.policy.secrets import identity
from services.policy.tickets import TicketBook
from tests.policykit import SECRET, Clock, Outlet, envelope, make_lock

ADMIN, BOB, CAROL = "246813", "135792", "864209"
NOW = 1_800_000_000.0  # the wall clock the tests set (2027)


@dataclass
class Wall:
    """The lock's wall clock, moved by the test (Lock reads lock.wall at each use)."""

    now_s: float | None = NOW

    def now(self) -> float | None:
        return self.now_s


@dataclass
class Policy:
    lock: Lock
    outlet: Outlet
    clock: Clock
    wall: Wall
    decider: Decider
    changes: Changes
    panel: Panel

    def enter(self, code: str) -> Decision:
        return self.panel.on_verify(envelope(VerifyPasscode(entry=code), "keypad"), "keypad")

    def change(self, kind: str, person: str | None = None, **how) -> Done:
        """An owner's change, as owner.py applies it (Changes.apply reloads the codes)."""
        people = self.lock.people
        do = {
            "person-deleted": lambda **e: people.delete(person, **e),
            "validity-set": lambda **e: people.set_validity(person, how.get("start"),
                                                            how.get("end"), [], **e),
            "visitor-added": lambda **e: people.add_visitor(
                how["label"], self.lock.hasher.digest(how["code"]), len(how["code"]),
                None, None, how["uses"], **e),
        }[kind]  # fmt: skip
        return self.changes.apply(envelope(Done(ok=True)), do, kind, source="remote",
                                  person=person)  # fmt: skip

    def add(self, role: str, code: str) -> str:
        done = self.changes.add_person(role, "", code, source="remote", cause="test")
        assert done.ok, done
        return done.detail


def start(data: Path) -> Policy:
    clock, outlet, wall = Clock(), Outlet(answers={"motor": lambda body: Done(ok=True)}), Wall()
    lock = make_lock(data, clock, outlet)
    lock.wall = wall
    actuation = Actuation(lock)
    decider = Decider(lock, actuation)
    changes = Changes(lock, TicketBook(clock, 300.0))
    pairing = PairingMode(lock, identity(SECRET), Account(lock, SECRET))
    board = Board(lock, actuation, decider, pairing)
    panel = Panel(lock, decider, changes, actuation, board)
    return Policy(lock, outlet, clock, wall, decider, changes, panel)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    p = start(tmp_path / "data")
    p.lock.settings.set("direction", "right", source="keypad", cause="test")
    assert p.add("admin", ADMIN) == "001"
    assert p.enter(ADMIN).granted  # what it read is kept from now on
    return p


def reads(lock: Lock) -> list[str]:
    """The SQL statements the next calls run, as SQLite traces them."""
    seen: list[str] = []
    lock.store.db.set_trace_callback(seen.append)
    return seen


# -- the cache keeps what does not change ----------------------------------------------------
def test_issue_12_a_decision_reads_no_person_or_setting_already_read(policy):
    seen = reads(policy.lock)
    assert policy.enter(ADMIN).granted
    policy.lock.store.db.set_trace_callback(None)
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert not [s for s in selects if "FROM people" in s or "FROM settings" in s], selects
    assert any("INSERT INTO events" in s for s in seen)  # the decision was still written


# -- and forgets it at each change ------------------------------------------------------------
def test_l6_a_deleted_person_is_refused_and_their_reused_number_has_its_own_validity(policy):
    assert policy.add("user", BOB) == "002"
    assert policy.enter(BOB).granted  # 002's validity (none) is kept
    assert policy.change("person-deleted", "002").ok
    refused = policy.enter(BOB)
    assert (refused.granted, refused.reason) == (False, "invalid-credential")
    assert policy.add("user", CAROL) == "002"  # the number is reused (L-2)
    assert policy.change("validity-set", "002", start=NOW + 3600, end=NOW + 7200).ok
    later = policy.enter(CAROL)
    assert (later.granted, later.reason, later.person) == (False, "outside-validity", "002")


def test_l7_a_validity_changed_after_a_grant_refuses_the_next_entry(policy):
    assert policy.add("user", BOB) == "002"
    assert policy.enter(BOB).granted
    assert policy.change("validity-set", "002", start=NOW - 7200, end=NOW - 3600).ok
    assert (policy.enter(BOB).granted, policy.enter(BOB).reason) == (False, "outside-validity")
    assert policy.change("validity-set", "002", start=None, end=None).ok
    assert policy.enter(BOB).granted


def test_l7_a_window_that_runs_out_while_kept_refuses_when_its_time_comes(policy):
    assert policy.add("user", BOB) == "002"
    assert policy.change("validity-set", "002", start=NOW - 60, end=NOW + 60).ok
    assert policy.enter(BOB).granted  # the window is kept, not the verdict
    policy.wall.now_s = NOW + 60
    assert (policy.enter(BOB).granted, policy.enter(BOB).reason) == (False, "outside-validity")
    policy.wall.now_s = None  # a lock that lost the time refuses any restriction
    assert policy.enter(BOB).reason == "time-unknown"


def test_l9_an_exhausted_visitor_code_is_refused(policy):
    code = "97531864"
    assert policy.change("visitor-added", label="cleaner", code=code, uses=1).ok
    first = policy.enter(code)
    assert first.granted
    second = policy.enter(code)
    assert (second.granted, second.reason) == (False, "uses-exhausted")
    assert policy.enter(ADMIN).granted  # and a kept person is still fine


def test_l20_a_lockout_refuses_a_valid_code_whose_reads_are_kept(policy):
    for _ in range(5):
        assert not policy.enter("000000").granted
    locked = policy.enter(ADMIN)
    assert (locked.granted, locked.reason) == (False, "lockout")
    policy.clock.now += policy.lock.config["lockout"]["duration_s"]
    assert policy.enter(ADMIN).granted


def test_l18_l12_settings_changed_are_read_by_the_next_decision(policy):
    assert policy.lock.settings.get("remote_unlock") is False
    policy.lock.settings.set("remote_unlock", True, source="remote", cause="test")
    assert policy.lock.settings.get("remote_unlock") is True
    policy.lock.settings.set("direction", "left", source="keypad", cause="test")
    assert policy.enter(ADMIN).granted
    asked = [body for _, body, _ in policy.outlet.asked if isinstance(body, Actuate)]
    assert asked[-1].direction == "left"


def test_l21_a_mode_set_and_ended_is_seen_at_once(policy):
    policy.decider.set_mode("mute", True, source="keypad", cause="test")
    assert policy.decider.mode("mute")
    assert policy.enter(ADMIN).granted  # an unlock from outside ends it (L-21)
    assert not policy.decider.mode("mute")


def test_l30_a_factory_reset_puts_the_kept_lock_back_in_its_initial_state(policy):
    assert not policy.lock.initial
    policy.lock.store.factory_reset(source="keypad", cause="test")
    policy.lock.reload_codes()
    assert policy.lock.initial
    answer = policy.enter(ADMIN)
    assert (answer.granted, answer.reason) == (False, "initial-state")
    assert policy.lock.settings.get("direction") is None


def test_issue_12_what_a_rolled_back_transaction_read_of_its_own_change_is_forgotten(policy):
    assert policy.add("user", BOB) == "002"
    store, people = policy.lock.store, policy.lock.people
    with pytest.raises(RuntimeError), store.transaction():
        store.db.execute("UPDATE people SET valid_end=? WHERE number='002'", (NOW - 1,))
        assert people.validity("002").end == NOW - 1  # read, and kept, inside
        raise RuntimeError("the change fails")
    assert people.validity("002").end is None
    assert policy.enter(BOB).granted


def test_issue_12_any_statement_of_policys_connection_empties_what_it_changes(policy):
    """Not only People's and Settings' methods: a write path added later, in plain SQL,
    outside any transaction, is seen as well (the triggers watch the tables)."""
    assert policy.add("user", BOB) == "002"
    assert policy.enter(BOB).granted
    db = policy.lock.store.db
    db.execute("UPDATE people SET valid_end=? WHERE number='002'", (NOW - 1,))
    assert (policy.enter(BOB).granted, policy.enter(BOB).reason) == (False, "outside-validity")
    db.execute("INSERT OR REPLACE INTO settings VALUES ('direction', 'left')")
    assert policy.enter(ADMIN).granted
    asked = [body for _, body, _ in policy.outlet.asked if isinstance(body, Actuate)]
    assert asked[-1].direction == "left"
    db.execute("DELETE FROM people WHERE number='002'")
    policy.lock.reload_codes()
    assert policy.lock.people.count() == 1 and policy.lock.people.validity("002").end is None


def test_issue_12_a_restarted_policy_reads_what_another_connection_committed(policy, tmp_path):
    """Policy is the store's only writer; a store changed behind its back (root on the
    board) is read afresh at its next start, as the passcodes are."""
    assert policy.add("user", BOB) == "002"
    assert policy.enter(BOB).granted
    other = sqlite3.connect(tmp_path / "data" / "lock.db")
    with other:
        other.execute("UPDATE people SET valid_end=? WHERE number='002'", (NOW - 1,))
    other.close()
    policy.lock.store.close()
    restarted = start(tmp_path / "data")
    later = restarted.enter(BOB)
    assert (later.granted, later.reason) == (False, "outside-validity")
