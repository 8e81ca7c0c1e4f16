"""`lockmesh bench fleet` run short (issue 17): its own broker, a few doors simulated at
the MQTT level, every push answered and timed from its due time, the broker's CPU read.
No timing is asserted: the figures are the bench's to give, on a shared machine. The
whole locks' part of the bench is what tests/test_fleet_mesh.py does with one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.brokerkit import Broker

ROOT = Path(__file__).resolve().parents[1]


def test_issue17_bench_fleet_pushes_to_simulated_doors_and_times_every_ack():
    out = subprocess.run(
        [sys.executable, "-m", "ops.cli", "bench", "fleet", "--full", "0", "--sims", "4",
         "--count", "40", "--rate", "40", "--json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    sims = report["streams"]["sim"]
    assert (sims["pushed"], sims["count"], sims["unanswered"], sims["refused"]) == (40, 40, 0, {})
    assert 0 < sims["p50_ms"] <= sims["max_ms"] and sims["p99_ms"] is None  # p99 from 1,000
    assert report["sim_counts"]["taken"] == 40 + 8  # and the warm-up's
    assert report["sim_counts"]["duplicates"] == sims["resent"]
    assert 0 <= report["broker_cpu_pct"] and report["broker_rss_mb"] > 0
    assert len(report["load_before"]) == 3


def test_issue17_bench_fleet_runs_against_a_broker_it_is_given(tmp_path):
    broker = Broker(tmp_path / "broker")  # as a building's own broker would be
    broker.start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "ops.cli", "bench", "fleet", "--full", "0", "--sims", "3",
             "--count", "12", "--rate", "40", "--broker", broker.url, "--json"],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
    finally:
        broker.kill(signal.SIGTERM)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["broker"] == broker.url and report["broker_cpu_pct"] is None
    assert (report["streams"]["sim"]["count"], report["streams"]["sim"]["unanswered"]) == (12, 0)
    assert "Received PUBLISH" in broker.log()  # the pushes went through that broker
