"""The paths of `lockmesh bench gateway` (bench_gateway.py tells the method): HTTP
requests on keep-alive connections, metered with the CPU time they cost; a closed-loop
saturation; remote unlock and lock with the bolt really moving; the door to a page."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from ops.bench_http import Connection, Owner, Page, cpu_seconds
from ops.benchkit import (
    Block,
    Connect,
    Failed,
    Once,
    OpenLoop,
    expect,
    percentiles,
    watch_bolt,
)
from proto.board import Door, SimBoard
from proto.bus import Bus
from proto.control import StatusReply, StatusRequest

BESIDE_BLOCK = 25  # the other clients' status requests, scheduled this many at a time
BOLT_TIMEOUT_S = 5.0
PAGE_TIMEOUT_S = 10.0  # past the hub's 5 s poll of Home: a missed event shows as a tail
TARGET = {"unlock": "unlocked", "lock": "locked"}


def status_of(bus: Bus, service: str) -> StatusReply:
    body = expect(bus.client(service).request(StatusRequest(), timeout=5), f"{service} status")
    if not isinstance(body, StatusReply):
        raise Failed(f"{service} answered its status with {body}")
    return body


def http_path(url: str, owner: Owner, path: str) -> Connect:
    """A worker's own keep-alive connection, and its once(): GET path, answered 200."""

    @contextmanager
    def connect() -> Iterator[Once]:
        conn = Connection(url, owner)
        try:
            conn.expect("GET", path)  # connected before the schedule starts
            yield lambda: conn.expect("GET", path)
        finally:
            conn.close()

    return connect


class Metered:
    """A runner whose blocks are charged the CPU time the gateway, policy and this
    process (the clients) spent while they ran."""

    def __init__(self, runner: OpenLoop, pids: dict[str, int]) -> None:
        self.runner, self.name, self.pids = runner, runner.name, pids
        self.cpu = {name: 0.0 for name in (*pids, "bench")}
        self.requests = 0

    def _now(self) -> dict[str, float]:
        return {**{n: cpu_seconds(pid) for n, pid in self.pids.items()},
                "bench": time.process_time()}  # fmt: skip

    def run(self, count: int, rate: float) -> Block:
        before = self._now()
        block = self.runner.run(count, rate)
        after = self._now()
        for name in self.cpu:
            self.cpu[name] += after[name] - before[name]
        self.requests += len(block.latencies)
        return block

    def warm_up(self, rate: float) -> None:
        self.runner.warm_up(rate)

    def close(self) -> None:
        self.runner.close()

    def cpu_ms_per_request(self) -> dict[str, float]:
        return {name: s * 1000 / max(1, self.requests) for name, s in self.cpu.items()}


def saturated(connect: Connect, clients: int, seconds: float) -> dict[str, Any]:
    """Closed loop: clients each sending the next request as the last is answered, for
    seconds; the completions a second (what N clients can get done, not a latency)."""
    done, ends, errors = [0] * clients, [0.0] * clients, []
    times: dict[str, float] = {}

    def begin() -> None:  # run once all are connected, before any is let go
        times["start"] = time.perf_counter()
        times["end"] = times["start"] + seconds

    ready = threading.Barrier(clients + 1, action=begin)

    def work(i: int) -> None:
        try:
            with connect() as once:
                ready.wait()
                while time.perf_counter() < times["end"]:
                    once()
                    done[i] += 1
                    ends[i] = time.perf_counter()
        except threading.BrokenBarrierError:
            pass
        except BaseException as e:  # told to the caller below
            errors.append(e)
            ready.abort()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join(timeout=seconds + 30)
    if errors or "start" not in times:
        raise Failed(f"saturating: {errors[0] if errors else 'the clients did not connect'}")
    elapsed = max(ends) - times["start"]
    return {"clients": clients, "seconds": elapsed, "done": sum(done),
            "throughput_per_s": sum(done) / elapsed}  # fmt: skip


class Drives:
    """Remote unlock and lock from the app, alternately, one at a time, the other
    clients' status requests (if any) running meanwhile."""

    name = "unlock"

    def __init__(self, bus: Bus, url: str, owner: Owner, pin: str,
                 beside: OpenLoop | None, rate: float) -> None:  # fmt: skip
        self.bus, self.pin, self.beside, self.beside_rate = bus, pin, beside, rate
        self.conn = Connection(url, owner)
        self.motor, self.events = bus.client("motor"), bus.subscribe("motor")
        self._clear()

    def _clear(self) -> None:
        self.answers: dict[str, list[float]] = {"unlock": [], "lock": []}
        self.moving_to_answer: list[float] = []  # the bolt began to move -> the answer
        self.answer_to_reached: list[float] = []
        self.travel: list[float] = []
        self.waited_for_bolt = 0  # answers that came once the bolt had reached its end
        self.moves, self.elapsed = 0, 0.0
        self.beside_block = Block()

    def run(self, count: int, rate: float) -> Block:
        """count movements; the rate does not apply (the bolt moves one at a time)."""
        stop = threading.Event()
        load = threading.Thread(target=self._load, args=(stop,), daemon=True)
        if self.beside is not None:
            load.start()
        start, block = time.perf_counter(), Block()
        try:
            state = self._bolt()
            for _ in range(count):
                action = "unlock" if state == "locked" else "lock"
                took = self._move(action)
                if action == "unlock":
                    block.latencies.append(took)
                    block.from_send.append(took)
                state = TARGET[action]
        finally:
            stop.set()
            if load.is_alive():
                load.join(timeout=30)
        block.elapsed = time.perf_counter() - start
        self.moves += count
        self.elapsed += block.elapsed
        return block

    def _load(self, stop: threading.Event) -> None:
        assert self.beside is not None
        while not stop.is_set():
            self.beside_block.extend(self.beside.run(BESIDE_BLOCK, self.beside_rate))

    def warm_up(self, rate: float) -> None:
        self.run(2, rate)
        self._clear()

    def _bolt(self) -> str:
        deadline = time.monotonic() + BOLT_TIMEOUT_S
        while time.monotonic() < deadline:
            state = status_of(self.bus, "motor").detail.get("bolt")
            if state in ("locked", "unlocked"):
                return str(state)
            time.sleep(0.02)
        raise Failed(f"the bolt did not come to rest within {BOLT_TIMEOUT_S:.0f} s")

    def _move(self, action: str) -> float:
        while self.events.poll(0):  # what came before this movement
            self.events.recv_multipart()
        sent = time.monotonic()
        if action == "unlock":
            answer = self.conn.expect("POST", "/api/unlock", {"pin": self.pin})
            if answer != {"granted": True}:
                raise Failed(f"remote unlock answered {answer}")
        else:
            self.conn.expect("POST", "/api/lock")
        answered = time.monotonic()
        moving, reached = watch_bolt(self.bus, self.events, TARGET[action], mono=True)
        self.answers[action].append(answered - sent)
        self.moving_to_answer.append(answered - moving)
        self.answer_to_reached.append(reached - answered)
        self.travel.append(reached - moving)
        self.waited_for_bolt += answered >= reached
        return answered - sent

    def report(self) -> dict[str, Any]:
        beside = self.beside_block.summary() if self.beside_block.latencies else None
        return {
            "lock": percentiles(self.answers["lock"]),
            "moves": self.moves,
            "moves_per_s": self.moves / self.elapsed,
            "moving_to_answer": percentiles(self.moving_to_answer),
            "answer_to_reached": percentiles(self.answer_to_reached),
            "travel": percentiles(self.travel),
            "answers_after_the_bolt_reached": self.waited_for_bolt,
            "status_beside": beside,
        }

    def close(self) -> None:
        self.conn.close()
        self.events.close(linger=0)


class DoorToPage:
    """The door opened or closed on the simulated board, to the page's `home` event."""

    name = "page"

    def __init__(self, bus: Bus, page: Page, door: str) -> None:
        self.bus, self.page, self.open = bus, page, door == "open"
        self.motor, self.events = bus.client("motor"), bus.subscribe("motor")
        self.from_event: list[float] = []
        self.to_event: list[float] = []  # the request sent -> the motor's Door event

    def run(self, count: int, rate: float) -> Block:
        """count movements of the door, one at a time, no sooner than 1/rate apart."""
        start, block = time.perf_counter(), Block()
        for _ in range(count):
            began = time.monotonic()
            took, from_event = self.move(not self.open)
            block.latencies.append(took)
            block.from_send.append(took)
            self.from_event.append(from_event)
            self.to_event.append(took - from_event)
            time.sleep(max(0.0, began + 1 / rate - time.monotonic()))
        block.elapsed = time.perf_counter() - start
        return block

    def move(self, opened: bool) -> tuple[float, float]:
        """(send -> page, Door event -> page) in seconds."""
        want = "open" if opened else "closed"
        while self.events.poll(0):
            self.events.recv_multipart()
        self.page.drain()
        sent = time.monotonic()
        how = SimBoard(action="door", arg="open" if opened else "close")
        expect(self.motor.request(how, timeout=5), "motor sim door")
        read = self.page.wait_for("home", lambda d: d.get("door") == want, PAGE_TIMEOUT_S)
        self.open = opened
        return read - sent, read - self._stamp(opened)

    def _stamp(self, opened: bool) -> float:
        """The motor's stamp of its Door event (heard by now: the page has it)."""
        while self.events.poll(int(BOLT_TIMEOUT_S * 1000)):
            env = self.bus.receive_event(self.events, "motor")
            if env is not None and isinstance(env.body, Door) and env.body.open == opened:
                return env.mono
        raise Failed("the page changed but no Door event was heard")

    def warm_up(self, rate: float) -> None:
        self.run(2, rate)
        self.from_event.clear()
        self.to_event.clear()

    def close(self) -> None:
        self.events.close(linger=0)
