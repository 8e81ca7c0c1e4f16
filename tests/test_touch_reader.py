"""The Pi board's keypad wiring: simulated MPR121 chips, the reader thread, the loop's pipe.

The chips are hw/sim_mpr121.py's on a simulated bus, polled for real by the reader's
thread; inputs are taken from its pipe as the keypad service's loop does (L-11, L-21).
"""

from __future__ import annotations

import select
import time

import pytest

from hw.sim_mpr121 import SimTouchBus
from hw.touch_keys import KeyScanner
from proto.config import DEFAULTS
from services.keypad.touch_reader import TouchReader, panel_from_config
from tests.meshkit import eventually

HW = DEFAULTS["keypad_hw"]
MAIN, SECOND = HW["addresses"]
HOLD_S = 0.3  # shortened from hold_s for the test


class ReaderClock:
    """The reader's clock, moved on by the test: a contact lasts on the reader's timeline
    exactly what the test says, however late a busy machine runs the reader's thread."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.reads = 0  # one per sample, read after the keys

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def passes(self, seconds: float) -> None:
        """The reader samples the keys as they are, then again seconds later."""
        self._sampled()
        self.now += seconds
        self._sampled()

    def _sampled(self) -> None:
        # two reads: the first may end a sample whose keys were read before the change
        until = self.reads + 2
        eventually(lambda: self.reads >= until, timeout=3, every=0.002)


@pytest.fixture
def board():
    bus = SimTouchBus()
    reader = TouchReader(
        panel_from_config(bus, HW),
        KeyScanner(debounce_s=HW["debounce_s"], hold_s=HOLD_S, idle_s=20.0),
        poll_s=HW["poll_s"],
        clock=ReaderClock(),
    )
    reader.start()
    yield bus, reader
    reader.close()


def electrode(address: int, key: str) -> int:
    return HW["keys"][HW["addresses"].index(address)].index(key)


def tap(board, address: int, key: str, hold_s: float = 0.08) -> None:
    bus, reader = board
    bus.chip(address).touch(electrode(address, key))
    reader.clock.passes(hold_s)
    bus.chip(address).release(electrode(address, key))
    reader.clock.passes(0.06)  # released for longer than the debounce


def inputs(reader: TouchReader, count: int, timeout: float = 3.0) -> list[str]:
    """What the loop would press: woken by the pipe, as Service.watch wakes it."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([reader.fd], [], [], deadline - time.monotonic())
        if ready:
            got += reader.take()
    return got


def test_l11_the_first_contact_wakes_then_keys_press_on_both_chips(board):
    bus, reader = board
    eventually(lambda: reader.fault is None, timeout=3)
    tap(board, MAIN, "7")
    assert inputs(reader, 1) == ["touch"]  # a touch only wakes the panel
    tap(board, MAIN, "7")
    tap(board, MAIN, "ok")
    tap(board, SECOND, "bell")
    assert inputs(reader, 3) == ["7", "ok", "bell"]


def test_l21_holding_0_is_hold_0_and_a_short_0_is_0(board):
    bus, reader = board
    tap(board, MAIN, "5")
    assert inputs(reader, 1) == ["touch"]
    tap(board, MAIN, "0")
    assert inputs(reader, 1) == ["0"]
    tap(board, MAIN, "0", hold_s=HOLD_S + 0.15)
    assert inputs(reader, 1) == ["hold-0"]


def test_l11_a_panel_gone_dark_is_woken_again_by_the_next_contact(board):
    bus, reader = board
    tap(board, MAIN, "1")
    tap(board, MAIN, "2")
    assert inputs(reader, 2) == ["touch", "2"]
    reader.sleep()  # the service lit nothing: the menu slept
    tap(board, MAIN, "3")
    assert inputs(reader, 1) == ["touch"]


def test_an_unplugged_chip_is_a_fault_until_it_answers_again(board):
    bus, reader = board
    eventually(lambda: reader.fault is None, timeout=3)
    bus.chip(SECOND).fault = "unplugged"
    assert "0x5b" in eventually(lambda: reader.fault, timeout=3)
    bus.chip(SECOND).fault = None
    eventually(lambda: reader.fault is None, timeout=5)  # restarted after RETRY_S
    tap(board, SECOND, "home")
    assert inputs(reader, 1) == ["touch"]


def test_keypad_hw_keys_must_be_panel_keys():
    wrong = {**HW, "keys": [["0", "1", "star"], ["home"]]}
    with pytest.raises(ValueError, match="star"):
        panel_from_config(SimTouchBus(), wrong)
    with pytest.raises(ValueError):
        panel_from_config(SimTouchBus(), {**HW, "addresses": [0x5A]})  # two lists of keys
