"""The bolt driver on the simulated board, over gpiozero MockFactory pins (L-12, L-27)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from hw.bolt import JAMMED, LOCKED, MOVING, UNKNOWN, UNLOCKED, BoltDrive, retract_forward
from hw.sim_board import SimBoard
from proto.config import DEFAULTS
from tests.meshkit import eventually

PINS = DEFAULTS["pins"]
TRAVEL_S = 0.05  # the simulated bolt's travel end to end
TIMEOUT_S = 0.5  # the driver's jam timeout: ten times the travel
DEADLINE_S = 1.5  # how long a test waits for anything


def drive_to_end(drive: BoltDrive) -> str:
    """poll() until the drive ends, as the motor service's loop does."""
    return eventually(lambda: drive.poll(time.monotonic()), timeout=DEADLINE_S, every=0.005)


class Rig:
    """One fresh MockFactory, a BoltDrive on it and (optionally) a SimBoard moving its pins."""

    def __init__(
        self, state_file: Path, *, handing: str = "right", timeout_s: float = TIMEOUT_S
    ) -> None:
        self.factory = MockFactory()
        self.state_file, self.handing, self.timeout_s = state_file, handing, timeout_s
        self.drive = BoltDrive(
            motor_a=PINS["motor_a"],
            motor_b=PINS["motor_b"],
            locked_pin=PINS["bolt_locked"],
            unlocked_pin=PINS["bolt_unlocked"],
            travel_timeout_s=timeout_s,
            pin_factory=self.factory,
        )
        self.board: SimBoard | None = None
        self.closed = False

    def with_board(self) -> "Rig":
        self.board = SimBoard(
            self.factory, PINS, self.state_file, travel_s=TRAVEL_S, handing=self.handing
        )
        self.board.start()
        return self

    def motor_pins(self) -> tuple[bool, bool]:
        return (
            bool(self.factory.pin(PINS["motor_a"]).state),
            bool(self.factory.pin(PINS["motor_b"]).state),
        )

    def position(self) -> float:
        assert self.board is not None
        return self.board.world["bolt"]

    def run_physics(self, steps: int) -> None:
        """Until the simulated board has run this many more steps of its physics."""
        assert self.board is not None
        board, until = self.board, self.board.steps + steps
        eventually(lambda: board.steps >= until, timeout=DEADLINE_S, every=0.005)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.board is not None:
            self.board.close()
        # A pressed gpiozero Button's hold thread sleeps out hold_time (1 s) before it
        # notices close(): release the end switches first so teardown stays fast.
        for name in ("bolt_locked", "bolt_unlocked"):
            self.factory.pin(PINS[name]).drive_high()
        self.drive.close()
        self.factory.close()


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "sim-board.json"


@pytest.fixture
def rigs(state_file: Path):
    made: list[Rig] = []

    def make(**kw) -> Rig:
        made.append(Rig(state_file, **kw))
        return made[-1]

    yield make
    for rig in reversed(made):
        rig.close()


def put_bolt(state_file: Path, position: float) -> None:
    state_file.write_text(json.dumps({"bolt": position, "door_open": False, "jammed": False}))


# -- fail-secure --------------------------------------------------------------------------
def test_l27_driver_never_moves_the_motor_at_start(rigs) -> None:
    rig = rigs()
    assert rig.motor_pins() == (False, False)
    assert rig.drive.poll(time.monotonic()) is None  # idle: nothing to report


def test_l27_bolt_stays_where_it_was_at_start(rigs, state_file: Path) -> None:
    put_bolt(state_file, 1.0)
    rig = rigs().with_board()
    assert rig.drive.state == UNLOCKED
    rig.run_physics(10)  # nothing moves unless driven
    assert rig.position() == 1.0 and rig.motor_pins() == (False, False)
    assert rig.drive.state == UNLOCKED


def test_l27_fresh_board_starts_locked(rigs) -> None:
    rig = rigs().with_board()
    assert rig.drive.state == LOCKED and rig.position() == 0.0


def test_l27_closing_the_driver_mid_drive_stops_the_bolt_where_it_is(
    rigs, state_file: Path
) -> None:
    put_bolt(state_file, 0.2)  # no end switch pressed: the drive has some way to go
    rig = rigs().with_board()
    rig.drive.start(UNLOCKED, "right", time.monotonic())
    rig.drive.close()  # the motor service dies mid-drive
    assert rig.motor_pins() == (False, False)
    rig.run_physics(1)  # a step that read the pins before they went off is over
    stopped = rig.position()
    rig.run_physics(6)
    assert rig.position() == stopped < 1.0
    rig.drive = BoltDrive(
        motor_a=PINS["motor_a"],
        motor_b=PINS["motor_b"],
        locked_pin=PINS["bolt_locked"],
        unlocked_pin=PINS["bolt_unlocked"],
        travel_timeout_s=TIMEOUT_S,
        pin_factory=rig.factory,
    )  # the restart
    assert rig.motor_pins() == (False, False)
    assert rig.drive.state == UNKNOWN and rig.position() == stopped


def test_l27_bolt_between_the_ends_is_unknown(rigs, state_file: Path) -> None:
    put_bolt(state_file, 0.5)
    rig = rigs().with_board()
    assert rig.drive.state == UNKNOWN


# -- driving ------------------------------------------------------------------------------
def test_l27_unlock_with_right_handing_reaches_the_unlocked_end(rigs) -> None:
    rig = rigs(handing="right").with_board()
    assert rig.drive.start(UNLOCKED, "right", time.monotonic())
    assert rig.drive.state == MOVING
    assert rig.motor_pins() == (True, False)  # forward retracts on a right-opening door
    assert drive_to_end(rig.drive) == UNLOCKED
    assert rig.drive.state == UNLOCKED and rig.position() == 1.0
    assert rig.motor_pins() == (False, False)


def test_l27_lock_again_reaches_the_locked_end(rigs, state_file: Path) -> None:
    put_bolt(state_file, 1.0)
    rig = rigs(handing="right").with_board()
    assert rig.drive.start(LOCKED, "right", time.monotonic())
    assert rig.motor_pins() == (False, True)
    assert drive_to_end(rig.drive) == LOCKED
    assert rig.position() == 0.0 and rig.motor_pins() == (False, False)


def test_l12_left_opening_door_turns_the_motor_the_other_way(rigs) -> None:
    rig = rigs(handing="left").with_board()
    assert rig.drive.start(UNLOCKED, "left", time.monotonic())
    assert rig.motor_pins() == (False, True)
    assert drive_to_end(rig.drive) == UNLOCKED
    assert rig.position() == 1.0


def test_l12_direction_decides_the_motor_turn() -> None:
    assert retract_forward("right") is True
    assert retract_forward("left") is False


def test_l12_wrong_handing_drives_the_other_way(rigs, state_file: Path) -> None:
    put_bolt(state_file, 0.5)  # half way: either end can be reached
    rig = rigs(handing="right").with_board()
    rig.drive.start(UNLOCKED, "left", time.monotonic())  # the door is right-opening
    eventually(lambda: rig.position() == 0.0, timeout=DEADLINE_S, every=0.005)  # out, not back
    assert rig.drive.at_locked.is_active and not rig.drive.at_unlocked.is_active
    assert drive_to_end(rig.drive) == JAMMED  # the unlocked end never came
    assert rig.motor_pins() == (False, False)


def test_l27_drive_to_where_the_bolt_is_does_nothing(rigs) -> None:
    rig = rigs().with_board()
    assert rig.drive.start(LOCKED, "right", time.monotonic()) is False
    assert rig.motor_pins() == (False, False)
    assert rig.drive.poll(time.monotonic()) is None


def test_l27_unknown_target_is_refused(rigs) -> None:
    rig = rigs()
    with pytest.raises(ValueError):
        rig.drive.start("open", "right", time.monotonic())
    assert rig.motor_pins() == (False, False)


# -- jams ---------------------------------------------------------------------------------
def test_l27_jammed_bolt_is_reported_after_the_timeout_and_the_motor_stops(rigs) -> None:
    rig = rigs(timeout_s=0.2).with_board()
    rig.board.set_jammed(True)
    started = time.monotonic()
    rig.drive.start(UNLOCKED, "right", started)
    assert rig.motor_pins() == (True, False)
    assert rig.drive.poll(started + 0.1) is None  # not yet: within the travel time
    assert drive_to_end(rig.drive) == JAMMED
    assert time.monotonic() - started >= 0.2
    assert rig.motor_pins() == (False, False)
    assert rig.position() == 0.0  # it never left the locked end
    assert rig.drive.poll(time.monotonic()) is None  # reported once


def test_l27_jam_between_the_ends_leaves_state_jammed(rigs, state_file: Path) -> None:
    put_bolt(state_file, 0.5)
    rig = rigs(timeout_s=0.1).with_board()
    rig.board.set_jammed(True)
    rig.drive.start(LOCKED, "right", time.monotonic())
    assert drive_to_end(rig.drive) == JAMMED
    assert rig.drive.state == JAMMED and rig.motor_pins() == (False, False)


def test_l27_a_freed_bolt_can_be_driven_again(rigs) -> None:
    rig = rigs(timeout_s=0.1).with_board()
    rig.board.set_jammed(True)
    rig.drive.start(UNLOCKED, "right", time.monotonic())
    assert drive_to_end(rig.drive) == JAMMED
    rig.board.set_jammed(False)
    rig.drive.travel_timeout_s = TIMEOUT_S
    assert rig.drive.start(UNLOCKED, "right", time.monotonic())
    assert drive_to_end(rig.drive) == UNLOCKED


def test_l27_a_drive_read_late_is_finished_not_jammed(rigs) -> None:
    """The motor's process may wait for a core past the jam timeout while a real bolt
    travels on: the simulated bolt is caught up to the moment its switches are read."""
    rig = rigs().with_board()
    rig.board.close()  # its physics thread stalls for good: only catch_up moves it now
    started = time.monotonic()
    rig.drive.start(UNLOCKED, "right", started)
    rig.board.catch_up(started)  # the loop's turn right after the drive began
    late = started + TIMEOUT_S + 1.0
    assert rig.position() == 0.0
    rig.board.catch_up(late)
    assert rig.position() == 1.0
    assert rig.drive.poll(late) == UNLOCKED


# -- the simulated world persists ---------------------------------------------------------
def test_l27_bolt_position_persists_across_a_new_board(rigs, state_file: Path) -> None:
    rig = rigs().with_board()
    rig.drive.start(UNLOCKED, "right", time.monotonic())
    assert drive_to_end(rig.drive) == UNLOCKED
    rig.board.set_jammed(True)
    rig.board.set_door(True)
    rig.close()
    assert json.loads(state_file.read_text()) == {
        "bolt": 1.0,
        "door_open": True,
        "jammed": True,
        "tamper_removed": False,
    }

    again = rigs().with_board()  # a new factory, new pins, the same world
    assert again.board.world == {
        "bolt": 1.0,
        "door_open": True,
        "jammed": True,
        "tamper_removed": False,
    }
    assert again.drive.state == UNLOCKED
    door = again.factory.pin(PINS["door"])
    assert door.state  # open: the contact is released (high)


def test_unreadable_state_file_starts_locked(rigs, state_file: Path) -> None:
    state_file.write_text("{not json")
    rig = rigs().with_board()
    assert rig.position() == 0.0 and rig.drive.state == LOCKED


def test_door_contact_follows_the_world(rigs) -> None:
    rig = rigs().with_board()
    door = rig.factory.pin(PINS["door"])
    assert not door.state  # closed: contact pulled low
    rig.board.set_door(True)
    assert door.state
    rig.board.set_door(False)
    assert not door.state
