"""The service loop's timing rule, on a clock of the test's own: a message that makes a
service tick faster (the motor's drive, whose end switches are polled 100 times a
second) takes effect at once, not after the slow tick an idle service keeps."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from proto.layout import Layout
from services.base import Service

SLOW_S, FAST_S = 5.0, 0.01
POLL_ROUNDING_S = 0.002  # the loop polls whole milliseconds, one more than it must wait


class FakePoller:
    """poll() lets the clock run to its timeout, or to the one message due before it."""

    def __init__(self, clock: SimpleNamespace, message_at: float) -> None:
        self.clock, self.message_at = clock, message_at

    def poll(self, timeout_ms: int) -> list[tuple[Any, int]]:
        until = self.clock.now + timeout_ms / 1000
        if self.clock.now <= self.message_at <= until:
            self.clock.now = self.message_at
            self.message_at = float("inf")
            return [("request", 1)]
        self.clock.now = until
        return []


class Driving(Service):
    NAME = "motor"
    TICK_S = SLOW_S

    def __init__(self, layout: Layout, clock: SimpleNamespace, message_at: float) -> None:
        super().__init__(layout, {"mesh": {"heartbeat_s": 60.0}}, clock=lambda: clock.now)
        self.moving, self.ticks = False, []
        self._poller = FakePoller(clock, message_at)
        self.bus = SimpleNamespace(counters=SimpleNamespace(save=lambda path: None))
        self.publish = lambda body, cause=None: None  # heartbeats: not what is tested here

    def _heartbeat(self) -> Any:
        return None

    def _dispatch(self, sock: Any) -> None:
        self.moving = True  # the request started a drive

    def tick_s(self) -> float:
        return FAST_S if self.moving else SLOW_S

    def tick(self, now: float) -> None:
        self.ticks.append(now)
        if len(self.ticks) == 3:
            self.stop()


def test_a_message_that_makes_the_service_tick_faster_is_followed_by_a_tick_at_once(tmp_path):
    clock = SimpleNamespace(now=100.0)
    service = Driving(Layout.at(tmp_path), clock, message_at=101.0)
    service._loop()
    first, after_message, next_fast = service.ticks
    assert first == pytest.approx(100.0, abs=POLL_ROUNDING_S)  # the loop ticks as it starts
    # the old rule waited out the slow tick, to 105.0: the message at 101.0 is what counts
    assert 101.0 <= after_message <= 101.0 + FAST_S + POLL_ROUNDING_S
    assert next_fast - after_message == pytest.approx(FAST_S, abs=POLL_ROUNDING_S)


def test_an_idle_service_ticks_at_its_own_pace(tmp_path):
    clock = SimpleNamespace(now=100.0)
    service = Driving(Layout.at(tmp_path), clock, message_at=float("inf"))
    service._loop()
    assert service.ticks == pytest.approx([100.0, 105.0, 110.0], abs=3 * POLL_ROUNDING_S)
