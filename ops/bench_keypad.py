"""`lockmesh bench keypad`: passcode decisions through keypad, policy and motor, real bolt
movements, and (with --load) key-to-feedback while face recognition saturates the CPU.

decisions: touch, the code and ok in one SimKeys request, open-loop; done when the keypad
answers, which it does once policy has decided, written the decision down and had the
motor answer its Actuate. The bolt is already unlocked for nearly all of them: this path
times the decision, not the bolt.

bolt: real movements, one at a time (the motor takes one drive at a time, so this path
is closed-loop by nature): unlocked by the code on the keypad, locked by the inside
button, alternately, each timed from its request to the motor's first Bolt "moving" (the
motor acting) and to its Bolt event for the state reached. The simulated bolt's travel
(board.sim_travel_s) is most of the second figure.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ops.benchkit import (
    Block,
    Failed,
    Once,
    OpenLoop,
    Runner,
    bus_path,
    expect,
    percentiles,
    set_up_if_initial,
    verdict,
    watch_bolt,
)
from proto import config as configuration
from proto.board import SimBoard as SimBoardRequest
from proto.bus import Bus
from proto.control import StatusReply, StatusRequest
from proto.keypad import SimKeys
from proto.layout import Layout
from proto.policy import Decision
from proto.wire import Envelope

KEYS = ["touch", *"1234567890", "back"]  # wake, type, clear: the panel never asks policy
KEY_FEEDBACK_BOUND_MS = 30.0  # issue 4: p99 key-to-feedback with face recognition running
BOLT_TIMEOUT_S = 5.0


def decision_path(layout: Layout, code: str, workers: int = 8) -> OpenLoop:
    keys = SimKeys(keys=["touch", *code, "ok"])

    def request(bus: Bus) -> Once:
        keypad = bus.client("keypad")

        def once() -> None:
            body = expect(keypad.request(keys, timeout=5), "keypad.sim_keys")
            if not getattr(body, "ok", False):
                raise Failed(f"keypad refused: {body}")

        return once

    return OpenLoop("decisions", bus_path(layout, request), workers)


class BoltMoves:
    """The bolt path: pairs of movements (lock, then unlock) from unlocked back to it."""

    name = "bolt"

    def __init__(self, bus: Bus, code: str) -> None:
        self.bus, self.code = bus, code
        self.keypad, self.motor = bus.client("keypad"), bus.client("motor")
        self.events = bus.subscribe("motor")
        self.times: dict[str, dict[str, list[float]]] = {
            action: {"to_moving": [], "to_reached": [], "travel": []}
            for action in ("unlock", "lock")
        }

    def run(self, count: int, rate: float) -> Block:
        """count movements (rounded up to pairs); rate does not apply: one at a time."""
        start, block = time.perf_counter(), Block()
        if self._bolt() != "unlocked":
            self._move("unlock")  # the decisions' blocks leave it unlocked; not counted
        for _ in range((count + 1) // 2):
            for action in ("lock", "unlock"):
                block.latencies.append(self._move(action))
        block.elapsed = time.perf_counter() - start
        return block

    def warm_up(self, rate: float) -> None:
        self.run(2, rate)
        for legs in self.times.values():
            for samples in legs.values():
                samples.clear()

    def _bolt(self) -> str:
        """Where the bolt is, once it is not moving (the decisions may have just moved it)."""
        deadline = time.monotonic() + BOLT_TIMEOUT_S
        while time.monotonic() < deadline:
            body = expect(self.motor.request(StatusRequest(), timeout=5), "motor status")
            state = body.detail.get("bolt") if isinstance(body, StatusReply) else None
            if state in ("locked", "unlocked"):
                return state
            time.sleep(0.02)
        raise Failed(f"the bolt did not come to rest within {BOLT_TIMEOUT_S:.0f}s")

    def _move(self, action: str) -> float:
        target = "unlocked" if action == "unlock" else "locked"
        while self.events.poll(0):  # what came before this movement
            self.events.recv_multipart()
        sent = time.time()
        if action == "unlock":
            request: Any = SimKeys(keys=["touch", *self.code, "ok"])
            expect(self.keypad.request(request, timeout=5), "keypad.sim_keys")
        else:
            request = SimBoardRequest(action="button", arg="lock")
            expect(self.motor.request(request, timeout=5), "motor sim button lock")
        moving, reached = watch_bolt(self.bus, self.events, target)
        kept = self.times[action]
        kept["to_moving"].append(moving - sent)
        kept["to_reached"].append(reached - sent)
        kept["travel"].append(reached - moving)
        return reached - sent

    def report(self) -> dict[str, Any]:
        return {
            action: {leg: percentiles(samples) for leg, samples in legs.items() if samples}
            for action, legs in self.times.items()
        }

    def close(self) -> None:
        pass


class KeypadBench:
    """`bench keypad`: the decisions, open-loop, and the bolt's real movements."""

    peers = ("policy",)

    def __init__(self, layout: Layout, bus: Bus, code: str, service: str) -> None:
        self.path = "SimKeys touch + code + ok -> keypad -> policy -> motor"
        self.bolt = BoltMoves(bus, code)
        self.sim_travel_s = configuration.load(layout.config_file)["board"]["sim_travel_s"]
        self.runners: list[Runner] = [decision_path(layout, code), self.bolt]

    def counts(self, count: int, moves: int) -> dict[str, int]:
        return {"decisions": count, "bolt": moves}

    def finish(self, report: dict[str, Any], events: list[Envelope]) -> dict[str, Any]:
        bolt = {"moves": self.bolt.report(), "sim_travel_s": self.sim_travel_s}
        return {**decisions_seen(events), "bolt": bolt}

    def close(self) -> None:
        for r in self.runners:
            r.close()


def decisions_seen(events: list[Envelope]) -> dict[str, int]:
    decisions = [e.body for e in events if isinstance(e.body, Decision)]
    return {
        "granted": sum(d.granted for d in decisions),
        "refused": sum(not d.granted for d in decisions),
    }


# -- key-to-feedback under face load (issue 4) ---------------------------------------------
def dev_photo(faces: Path) -> Path:
    """The photo the face load runs on; a clear stop when the shared photos are absent."""
    photos = sorted((faces / "dev").glob("p01/*.jpg"))
    if not photos:
        raise Failed(
            f"bench keypad --load needs the dev photos of ../shared/faces and found none "
            f"in {faces / 'dev'}: stopped (pass --faces DIR)"
        )
    return photos[0]


LOAD_START_S = 60.0  # spawn, import onnxruntime, load the models, one frame: on every core


def face_load(models_dir: str, photo: str, nice: int, running: Any, stop: Any) -> None:
    """One process running the face pipeline on a frame with a face, as fast as it can;
    running is released once its first frame is through (its models loaded)."""
    os.nice(nice)
    from ops.bench_face import frame_640x480
    from services.face.models import build
    from services.face.pipeline import Pipeline

    pipeline = Pipeline(build.ensure(Path(models_dir)), min_face=40)
    frame = frame_640x480(Path(photo))
    pipeline(frame)
    running.release()
    while not stop.is_set():
        pipeline(frame)


@contextmanager
def face_loaded(layout: Layout, photo: Path, nice: int) -> Iterator[None]:
    """A face pipeline on every core at nice, each past its first frame, for the block."""
    ctx = multiprocessing.get_context("spawn")
    running, stop = ctx.Semaphore(0), ctx.Event()
    args = (str(layout.data / "models"), str(photo), nice, running, stop)
    workers = [ctx.Process(target=face_load, args=args) for _ in range(os.cpu_count() or 1)]
    for w in workers:
        w.start()
    try:
        deadline, started = time.monotonic() + LOAD_START_S, 0
        while started < len(workers):  # waited for, not slept on: the block starts under it all
            if running.acquire(timeout=0.5):
                started += 1
                continue
            dead = [w.exitcode for w in workers if w.exitcode is not None]
            if dead or time.monotonic() > deadline:  # a worker that died never releases
                raise Failed(
                    f"a face-load worker exited (codes {dead}) before its first frame"
                    if dead
                    else f"the face load did not start on every core within {LOAD_START_S:.0f} s"
                )
        yield
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()
                w.join()


def key_path(layout: Layout, workers: int = 8) -> OpenLoop:
    """One key a request, open-loop; done when the keypad answers, which it does once it
    has published the key's beep (its Key event) and acted on the key."""
    keys, lock = itertools.cycle(KEYS), threading.Lock()

    def request(bus: Bus) -> Once:
        keypad = bus.client("keypad")

        def once() -> None:
            with lock:
                key = next(keys)
            expect(keypad.request(SimKeys(keys=[key]), timeout=5), "keypad.sim_keys")

        return once

    return OpenLoop("keys", bus_path(layout, request), workers)


def run_load(layout: Layout, count: int, rate: float, nice: int, faces: Path) -> dict[str, Any]:
    photo = dev_photo(faces)  # before anything starts
    report: dict[str, Any] = {
        "cores": os.cpu_count(),
        "nice": nice,
        "rate_per_s": rate,
        "bound_p99_ms": KEY_FEEDBACK_BOUND_MS,
        "load_average": os.getloadavg(),
    }
    with Bus(layout, "bench") as bus:
        set_up_if_initial(bus)
    keys = key_path(layout)
    try:
        keys.run(10, rate)  # warm-up
        report["idle"] = _measured(keys, count, rate)
        for label, level in (("face_load_niced", nice), ("face_load_not_niced", 0)):
            with face_loaded(layout, photo, level):
                report[label] = _measured(keys, count, rate)
    finally:
        keys.close()
    for label in ("idle", "face_load_niced", "face_load_not_niced"):
        report[label]["verdict"] = verdict(report[label], KEY_FEEDBACK_BOUND_MS, "keys")
    return report


def _measured(keys: OpenLoop, count: int, rate: float) -> dict[str, Any]:
    block = keys.run(count, rate)
    return block.summary()
