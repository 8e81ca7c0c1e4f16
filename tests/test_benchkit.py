"""The bench's method, without a mesh: open loop, percentiles and their intervals,
interleaving, and the benches that need ../shared stopping when it is absent (issue 12)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from ops.benchkit import (
    P99_MIN_SAMPLES,
    Block,
    Once,
    OpenLoop,
    interleaved,
    percentiles,
    quantile,
    rank_interval,
    summary,
)


def sleeper(seconds: float):
    @contextmanager
    def connect() -> Iterator[Once]:
        yield lambda: time.sleep(seconds)

    return connect


def test_a_queue_shows_up_in_open_loop_latencies_and_throughput_is_what_was_done():
    """One worker taking 20 ms a request, asked 100 times a second: each request waits
    for those before it, and an open loop counts that wait (coordinated omission would
    report 20 ms for every one); 50 requests a second are done, not the 100 offered."""
    path = OpenLoop("slow", sleeper(0.02), workers=1)
    try:
        block = path.run(40, rate=100)
    finally:
        path.close()
    result = summary(block.latencies, block.elapsed)
    assert max(block.latencies) > 0.3  # the last one waited for 39 others: about 0.41 s
    assert result["p50_ms"] > 100
    # what was done, never what was offered: at most the one worker's 50 a second (a
    # loaded machine only lowers it, so there is no floor to race)
    assert result["throughput_per_s"] == 40 / block.elapsed <= 55
    assert block.late >= 30  # sent late: queued behind the busy worker


def test_enough_workers_keep_up_and_the_offered_rate_is_then_done():
    path = OpenLoop("fast", sleeper(0.005), workers=4)
    try:
        block = path.run(50, rate=100)
    finally:
        path.close()
    result = summary(block.latencies, block.elapsed)
    # four workers have 8x the capacity asked for: the margins are for a loaded machine
    assert result["p50_ms"] < 100 and 70 <= result["throughput_per_s"] <= 105


def test_p99_only_from_1000_samples_and_p50_always_with_an_interval():
    rng = random.Random(12)
    few = percentiles([rng.expovariate(1) for _ in range(P99_MIN_SAMPLES - 1)])
    assert few["p99_ms"] is None and few["p99_ci_ms"] is None
    assert few["p50_ci_ms"][0] <= few["p50_ms"] <= few["p50_ci_ms"][1]
    enough = percentiles([rng.expovariate(1) for _ in range(P99_MIN_SAMPLES)])
    low, high = enough["p99_ci_ms"]
    assert low <= enough["p99_ms"] <= high <= enough["max_ms"]


def test_the_order_statistic_interval_covers_the_true_quantile_95_times_in_100():
    """Exponential samples, whose true median is ln 2 and 99th percentile ln 100."""
    rng = random.Random(5)
    for q, n, truth in ((0.5, 41, 0.6931), (0.99, 1000, 4.6052)):
        ranks = rank_interval(n, q)
        assert ranks is not None
        covered = 0
        for _ in range(400):
            ordered = sorted(rng.expovariate(1) for _ in range(n))
            covered += ordered[ranks[0] - 1] <= truth <= ordered[ranks[1] - 1]
        assert covered / 400 >= 0.92, (q, n, covered)


def test_too_few_samples_have_no_interval():
    assert rank_interval(3, 0.5) is None  # 3 samples cannot hold a median at 95 %
    assert rank_interval(200, 0.99) is None
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


def test_interleaved_paths_take_turns_and_each_gets_its_count():
    order: list[str] = []

    class Recording:
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, count: int, rate: float) -> Block:
            order.extend([self.name] * count)
            return Block(latencies=[0.001] * count, elapsed=count / rate)

        def warm_up(self, rate: float) -> None:
            pass

        def close(self) -> None:
            pass

    blocks = interleaved([Recording("a"), Recording("b")], {"a": 10, "b": 4}, 100, rounds=2)
    assert len(blocks["a"].latencies) == 10 and len(blocks["b"].latencies) == 4
    assert order == ["a"] * 5 + ["b"] * 2 + ["b"] * 2 + ["a"] * 5  # turns, rotated


@pytest.mark.parametrize("args", [["keypad", "--load"], ["face"]])
def test_a_bench_that_needs_the_shared_photos_says_so_and_stops(tmp_path, args):
    """Issue 12: no falling back to a random-noise frame without a word."""
    result = subprocess.run(
        [sys.executable, "-m", "ops.cli", "bench", *args, "--faces", str(tmp_path / "none"),
         "--data", str(tmp_path)],  # fmt: skip
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [
        f"lockmesh bench: bench {' '.join(args)} needs the dev photos of ../shared/faces and "
        f"found none in {tmp_path / 'none' / 'dev'}: stopped (pass --faces DIR)"
    ]
    assert "Traceback" not in result.stderr
