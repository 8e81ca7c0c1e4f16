"""`lockmesh bench keypad --load`: key-to-feedback while face recognition saturates the CPU.

A key pressed on the simulated keypad is timed from the moment the request leaves to
the keypad's Key event (the beep), stamped when the keypad published it. First on an
idle machine, then with one face-pipeline process per core running flat out, niced as
the face service runs itself (face.nice), and once more not niced, for comparison.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ops.benchkit import Failed, expect, set_up_if_initial, summary
from proto.bus import Bus
from proto.keypad import Key, SimKeys
from proto.layout import Layout

KEYS = ["touch", *"1234567890", "back"]  # wake, type, clear: the panel never asks policy


def face_load(models_dir: str, nice: int, stop: Any) -> None:
    """One process running the face pipeline on a frame with a face, as fast as it can."""
    os.nice(nice)
    from ops.bench_face import SHARED_FACES, frame_640x480
    from services.face.models import build
    from services.face.pipeline import Pipeline

    pipeline = Pipeline(build.ensure(Path(models_dir)), min_face=40)
    photos = sorted((SHARED_FACES / "dev").glob("p01/*.jpg"))
    frame = (
        frame_640x480(photos[0])
        if photos
        else np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    )
    while not stop.is_set():
        pipeline(frame)


def presses(bus: Bus, count: int, rate: float) -> list[float]:
    keypad, events = bus.client("keypad"), bus.subscribe("keypad")
    time.sleep(0.3)
    latencies = []
    for i in range(count):
        key = KEYS[i % len(KEYS)]
        sent = time.time()
        expect(keypad.request(SimKeys(keys=[key]), timeout=5), "keypad.sim_keys")
        deadline = time.monotonic() + 5
        while True:
            if not events.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                raise Failed("no Key event from the keypad")
            env = bus.receive_event(events, "keypad")
            if env is not None and isinstance(env.body, Key):
                latencies.append(env.wall - sent)
                break
        time.sleep(max(0.0, 1 / rate - (time.time() - sent)))
    events.close(linger=0)
    return latencies


def run(layout: Layout, count: int, rate: float, nice: int) -> dict[str, Any]:
    report: dict[str, Any] = {"cores": os.cpu_count(), "nice": nice}
    with Bus(layout, "bench") as bus:
        set_up_if_initial(bus)
        report["idle"] = summary(presses(bus, count, rate), 1.0)
        for label, level in (("face_load_niced", nice), ("face_load_not_niced", 0)):
            ctx = multiprocessing.get_context("spawn")
            stop = ctx.Event()
            workers = [
                ctx.Process(target=face_load, args=(str(layout.data / "models"), level, stop))
                for _ in range(os.cpu_count() or 1)
            ]
            for w in workers:
                w.start()
            time.sleep(8)  # models loaded, the cores busy
            try:
                report[label] = summary(presses(bus, count, rate), 1.0)
            finally:
                stop.set()
                for w in workers:
                    w.join(timeout=10)
    return report


def show(report: dict[str, Any]) -> None:
    print(f"bench keypad: key pressed to the keypad's Key event, {report['cores']} cores")
    for label in ("idle", "face_load_niced", "face_load_not_niced"):
        r = report[label]
        print(
            f"  {label:<20} p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
            f"max {r['max_ms']:6.2f} ms  ({r['count']} keys)"
        )
