"""What the benches share: an open-loop schedule, percentiles with confidence intervals,
measured paths interleaved with their baselines, failing clearly, a lock to bench on.

Open loop, as wrk2 does it: request i is due at t0 + i/rate and its latency is counted
from then, not from when it could be sent, so a queue (ours or the service's) shows up
in the figures instead of slowing the schedule down. Requests are answered one by one,
so a pool of workers, each with its own sockets, keeps several in flight; a request due
while every worker waits is queued here, and that wait is counted too.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import zmq

from proto.board import Bolt
from proto.bus import Bus
from proto.health import Heartbeat
from proto.keypad import SimKeys
from proto.policy import LockInfo, LockInfoRequest
from proto.schema import Message
from proto.wire import Envelope

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"  # the photos beside us
BENCH_CODE = "246813"  # the administrator's code the bench sets up on a lock in initial state
WARMUP = 10  # requests per path before the measured ones, thrown away
P99_MIN_SAMPLES = 1000  # fewer samples than this leave the 99th percentile to chance
CONFIDENCE = 0.95
LATE_S = 0.001  # a request sent this much after it was due waited in the bench's queue

Once = Callable[[], Any]  # one request, waiting for its answer
Connect = Callable[[], AbstractContextManager[Once]]  # a worker's own sockets, and its once()


class Failed(RuntimeError):
    pass


def expect(answer: Any, what: str) -> Any:
    if answer is None:
        raise Failed(f"no answer to {what}: is the lock up?")
    return answer.body


# -- statistics ---------------------------------------------------------------------------
def rank_interval(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (l, u) such that [x_(l), x_(u)] holds the q-quantile with at least
    the given confidence, from the binomial law of how many samples fall below it
    (distribution-free); None when n is too small for such an interval."""
    tail = (1 - confidence) / 2
    below, lower, upper = 0.0, 0, None
    for k in range(n + 1):  # below = P(X <= k), X ~ Binomial(n, q)
        below += math.exp(_log_binomial(n, k, q))
        if below <= tail:
            lower = k + 1  # P(X < lower) <= tail
        if upper is None and 1 - below <= tail:
            upper = k + 1  # P(X >= upper) <= tail
            break
    if lower < 1 or upper is None or upper > n:
        return None
    return lower, upper


def _log_binomial(n: int, k: int, q: float) -> float:
    return (
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(q) + (n - k) * math.log1p(-q)
    )  # fmt: skip


def quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank q-quantile of sorted samples."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def percentile(ordered: list[float], q: float) -> tuple[float, list[float] | None]:
    """(q-quantile in ms, its confidence interval in ms or None)."""
    ranks = rank_interval(len(ordered), q)
    ci = None if ranks is None else [ordered[ranks[0] - 1] * 1000, ordered[ranks[1] - 1] * 1000]
    return quantile(ordered, q) * 1000, ci


def percentiles(samples: list[float]) -> dict[str, Any]:
    """p50 always; p99 only from P99_MIN_SAMPLES samples on (else None), both with CIs."""
    ordered = sorted(samples)
    p50, p50_ci = percentile(ordered, 0.5)
    p99, p99_ci = percentile(ordered, 0.99) if len(ordered) >= P99_MIN_SAMPLES else (None, None)
    return {
        "count": len(ordered),
        "p50_ms": p50,
        "p50_ci_ms": p50_ci,
        "p99_ms": p99,
        "p99_ci_ms": p99_ci,
        "max_ms": ordered[-1] * 1000,
    }


def summary(latencies: list[float], elapsed: float) -> dict[str, Any]:
    """Percentiles, and throughput as completions over the wall time they took."""
    if not latencies:
        raise Failed("no request completed")
    return {
        **percentiles(latencies),
        "elapsed_s": elapsed,
        "throughput_per_s": len(latencies) / elapsed,
    }


def verdict(result: dict[str, Any], bound_ms: float, unit: str = "samples") -> str:
    """pass or fail when the p99's confidence interval is wholly below or above the bound."""
    if result["p99_ms"] is None:
        return f"not judged: p99 needs {P99_MIN_SAMPLES} {unit}, had {result['count']}"
    low, high = result["p99_ci_ms"] or (result["p99_ms"], result["p99_ms"])
    if high <= bound_ms:
        return "pass"
    if low > bound_ms:
        return "fail"
    return "undecided: the p99's interval holds the bound"


def show_ms(value: float | None, ci: list[float] | None, count: int) -> str:
    """'4.12 ms [4.01, 4.30]', or 'n/a (n=40)' for a percentile left out."""
    if value is None:
        return f"n/a (n={count})"
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"{value:.3f} ms{interval}"


def show_from_send(r: dict[str, Any]) -> str:
    """What the same requests read from their actual sends, as a closed loop would say."""
    s = r["from_send"]
    return (
        f"    from each actual send: p50 {show_ms(s['p50_ms'], None, r['count'])}, "
        f"p99 {show_ms(s['p99_ms'], None, r['count'])}; {r['late']} sent 1 ms or more late"
    )


def show_line(label: str, r: dict[str, Any], width: int = 12) -> str:
    line = (
        f"  {label:<{width}} p50 {show_ms(r['p50_ms'], r['p50_ci_ms'], r['count'])}  "
        f"p99 {show_ms(r['p99_ms'], r['p99_ci_ms'], r['count'])}  max {r['max_ms']:.3f} ms"
    )
    if "throughput_per_s" in r:
        line += f"  {r['throughput_per_s']:.1f}/s done"
    return line + f"  (n={r['count']})"


# -- running a path -----------------------------------------------------------------------
@dataclass
class Block:
    """One stretch of requests of a path: latencies from when each was due."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    late: int = 0  # sent LATE_S or more after due: behind busy workers, or the bench starved
    from_send: list[float] = field(default_factory=list)  # what a closed loop would report

    def extend(self, other: "Block") -> None:
        self.latencies += other.latencies
        self.elapsed += other.elapsed
        self.late += other.late
        self.from_send += other.from_send

    def summary(self) -> dict[str, Any]:
        """From when each was due (the figures); how many went late, and the p50 and p99
        from when each was sent, to show what of the wait was the bench's own."""
        sent = percentiles(self.from_send) if self.from_send else None
        return {
            **summary(self.latencies, self.elapsed),
            "late": self.late,
            "from_send": sent and {"p50_ms": sent["p50_ms"], "p99_ms": sent["p99_ms"]},
        }


class Runner(Protocol):
    name: str

    def run(self, count: int, rate: float) -> Block: ...

    def warm_up(self, rate: float) -> None: ...

    def close(self) -> None: ...


class OpenLoop:
    """A path driven open-loop: workers each with their own connection, fed on schedule."""

    def __init__(self, name: str, connect: Connect, workers: int = 8) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[float] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[float, float, float, BaseException | None]] = (
            queue.SimpleQueue()
        )
        ready: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, args=(connect, ready), daemon=True)
            for _ in range(workers)
        ]
        for t in self._threads:
            t.start()
        errors = [e for e in (ready.get() for _ in self._threads) if e is not None]
        if errors:
            self.close()
            raise Failed(f"{name}: could not connect: {errors[0]}")

    def _work(self, connect: Connect, ready: queue.SimpleQueue) -> None:
        try:
            opened = connect()
            once = opened.__enter__()
        except BaseException as e:  # reported to run()'s caller, not lost in a thread
            ready.put(e)
            return
        ready.put(None)
        try:
            while (job := self._jobs.get()) is not None:
                sent, error = time.perf_counter(), None
                try:
                    once()
                except BaseException as e:
                    error = e
                self._done.put((job[0], sent, time.perf_counter(), error))
        finally:
            opened.__exit__(None, None, None)

    def run(self, count: int, rate: float) -> Block:
        start = time.perf_counter() + 0.002
        for i in range(count):
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            self._jobs.put((due,))
        block, last, errors = Block(), start, []
        for _ in range(count):
            due, sent, done, error = self._done.get()
            if error is not None:
                errors.append(error)
                continue
            block.latencies.append(done - due)
            block.from_send.append(done - sent)
            block.late += sent - due >= LATE_S
            last = max(last, done)
        if errors:
            raise Failed(f"{self.name}: {len(errors)} of {count} failed: {errors[0]}"
                         f"{answered_in(block.latencies)}")  # fmt: skip
        # the block's share of the schedule, or longer if answers came later than that
        block.elapsed = max(last, start + count / rate) - start
        return block

    def warm_up(self, rate: float) -> None:
        self.run(WARMUP, rate)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=5)


def answered_in(latencies: list[float]) -> str:
    """What the answered requests of a failed block took: all slow says a queue behind a
    stalled or starved service, all quick says requests lost on their own."""
    if not latencies:
        return "; none answered"
    return (f"; the {len(latencies)} answered took {min(latencies) * 1000:.0f}-"
            f"{max(latencies) * 1000:.0f} ms from when they were due")  # fmt: skip


def interleaved(
    runners: list[Runner], counts: dict[str, int], rate: float, rounds: int
) -> dict[str, Block]:
    """Each runner's count in rounds of blocks, the runners taking turns (in a rotating
    order), so that every path and baseline meets the same load of the machine."""
    for r in runners:
        r.warm_up(rate)
    blocks = {r.name: Block() for r in runners}
    for i in range(rounds):
        for r in runners[i % len(runners) :] + runners[: i % len(runners)]:
            share = counts[r.name] // rounds + (i < counts[r.name] % rounds)
            if share:
                blocks[r.name].extend(r.run(share, rate))
    return blocks


def rounds_for(count: int, block: int = 50) -> int:
    return max(1, math.ceil(count / block))


def bus_path(layout: Any, request: Callable[[Bus], Once]) -> Connect:
    """A worker's connection to the mesh: its own Bus as 'bench', so its own session."""

    @contextmanager
    def connect() -> Iterator[Once]:
        with Bus(layout, "bench") as bus:
            yield request(bus)

    return connect


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


class Recorder:
    """The events of some publishers (of some types only, with their heartbeats), kept as
    raw frames while a bench runs and decoded afterwards, so that decoding them does not
    compete with the requests being timed; nor does waking for the others."""

    def __init__(
        self, layout: Any, peers: tuple[str, ...], types: tuple[type[Message], ...] | None = None
    ) -> None:
        self.layout, self.peers = layout, peers
        self.types = None if types is None else (*types, Heartbeat)
        self.frames: list[tuple[str, list[bytes]]] = []
        self._stop = threading.Event()
        self._heard: set[str] = set()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        if peers:  # a poller with nothing to poll returns at once: no thread to spin
            self._thread.start()

    def _listen(self) -> None:
        with Bus(self.layout, "bench") as bus:
            poller = zmq.Poller()
            socks = {bus.subscribe(peer, self.types): peer for peer in self.peers}
            for sock in socks:
                poller.register(sock, zmq.POLLIN)
            while not self._stop.is_set():
                for sock, _ in poller.poll(50):
                    self.frames.append((socks[sock], sock.recv_multipart()))
                    self._heard.add(socks[sock])

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every publisher was heard (a heartbeat will do): subscribed."""
        deadline = time.monotonic() + timeout
        while self._heard != set(self.peers):
            if time.monotonic() > deadline:
                raise Failed(f"heard nothing from {sorted(set(self.peers) - self._heard)}")
            time.sleep(0.05)

    def events(self, bus: Bus) -> list[Envelope]:
        """What was recorded so far, decoded (the bad ones counted and left out)."""
        taken, self.frames = self.frames, []
        whole = self.types is None  # a stream of some types has gaps by design: no loss
        decoded = (bus.receive_event_frames(frames, peer, whole=whole) for peer, frames in taken)
        return [env for env in decoded if env is not None]

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> "Recorder":
        self.settle()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def closed_loop(count: int, rate: float, once: Callable[[], float]) -> dict[str, Any]:
    """For a path that takes one request at a time (a finger on a sensor): each starts
    when the last has ended, no sooner than 1/rate after it started, and is timed by
    once() from its own request. Percentiles only: the throughput would be the pace."""
    latencies = []
    for i in range(count + WARMUP):
        started = time.perf_counter()
        took = once()
        if i >= WARMUP:
            latencies.append(took)
        time.sleep(max(0.0, started + 1 / rate - time.perf_counter()))
    return {**percentiles(latencies), "closed_loop": True}


BOLT_WATCH_S = 5.0  # a simulated drive takes 0.3 s


def watch_bolt(
    bus: Bus, events: zmq.Socket[bytes], target: str, *, mono: bool = False
) -> tuple[float, float]:
    """The motor's stamps of a drive's first 'moving' (not a refused drive's) and of target
    reached, read from a subscription to the motor: wall clock, or monotonic with mono."""
    moving, deadline = None, time.monotonic() + BOLT_WATCH_S
    while (left := deadline - time.monotonic()) > 0:
        if not events.poll(int(left * 1000) + 1):
            break
        env = bus.receive_event(events, "motor")
        if env is None or not isinstance(env.body, Bolt):
            continue
        stamp = env.mono if mono else env.wall
        state, reason = env.body.state, env.body.reason
        if state == "moving" and moving is None and reason.startswith("driving"):
            moving = stamp
        elif state == target and moving is not None:
            return moving, stamp
        elif state in (target, "jammed"):
            raise Failed(f"the bolt did not move to {target}: {state} {reason!r}")
    raise Failed(f"no Bolt {target} from the motor within {BOLT_WATCH_S:.0f} s")
