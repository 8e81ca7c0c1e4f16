"""What the benches share: pacing, percentiles, failing clearly, a lock to bench on."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from proto.bus import Bus
from proto.keypad import SimKeys
from proto.policy import LockInfo, LockInfoRequest

BENCH_CODE = "246813"  # the administrator's code the bench sets up on a lock in initial state
WARMUP = 10


class Failed(RuntimeError):
    pass


def expect(answer: Any, what: str) -> Any:
    if answer is None:
        raise Failed(f"no answer to {what}: is the lock up?")
    return answer.body


def paced(count: int, rate: float, once: Callable[[], float | None]) -> tuple[list[float], float]:
    """Call once() count times at rate per second; (latencies in seconds, elapsed).

    once() may return the latency it measured itself, to leave out its own bookkeeping.
    """
    latencies: list[float] = []
    start = time.perf_counter()
    for i in range(count + WARMUP):
        due = start + i / rate
        if (delay := due - time.perf_counter()) > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        took = once()
        if i >= WARMUP:
            latencies.append(time.perf_counter() - t0 if took is None else took)
    return latencies, time.perf_counter() - start


def summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "count": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "throughput_per_s": len(ordered) / elapsed,
    }


def set_up_if_initial(bus: Bus) -> str | None:
    """A lock in initial state gets a direction and administrator 001 with BENCH_CODE,
    typed on the simulated keypad; the code, or None when the lock was set up already."""
    info = expect(bus.client("policy").request(LockInfoRequest(), timeout=2), "policy.info")
    if not (isinstance(info, LockInfo) and info.initial):
        return None
    keys = ["ok", "1"] if info.direction is None else []
    keys += ["touch", "ok", *BENCH_CODE, "ok", *BENCH_CODE, "ok"]
    expect(bus.client("keypad").request(SimKeys(keys=keys), timeout=5), "setting up")
    return BENCH_CODE
