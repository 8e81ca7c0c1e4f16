"""`lockmesh bench gateway` on a real mesh, run short (issue 13): the report's shape and
counts, the lock left as the bench found it. No timing is asserted: the figures are the
bench's to give, on a machine shared with other runs."""

from __future__ import annotations

import json

import pytest

from ops.bench_gateway import BENCH_PASSWORD
from tests.appkit import CONFIG, App, app_url
from tests.meshkit import eventually, lean_but, run_cli, running

pytestmark = pytest.mark.slow

COUNT, RATE, MOVES = 40, 50, 12  # 6 unlocks: the fewest a p50 has an interval from
SATURATE_S = 1.0  # each closed-loop saturation (3 s by default): four of them here


def timed(r: dict, count: int) -> None:
    """p50 with its interval, no p99 below 1,000 samples (the bench's method)."""
    assert r["count"] == count and 0 < r["p50_ms"] <= r["max_ms"]
    assert r["p99_ms"] is None and r["p99_ci_ms"] is None
    low, high = r["p50_ci_ms"]
    assert low <= r["p50_ms"] <= high


@pytest.mark.parametrize("bad", ["0", "601", "nan", "soon"])
def test_bench_gateway_refuses_a_saturation_that_is_not_half_a_second_to_ten_minutes(bad):
    refused = run_cli(["bench", "gateway", "--saturate-s", bad])
    assert refused.returncode == 2 and "give seconds from 0.5 to 600" in refused.stderr


def test_issue13_bench_gateway_claims_times_every_path_beside_ping_and_leaves_the_lock_as_found(
    tmp_path,
):
    with running(tmp_path / "data", CONFIG, without=lean_but("gateway")) as lock:
        refused = lock.cli("bench", "gateway", "--clients", "0,10", check=False, timeout=60)
        assert refused.returncode == 2 and "give numbers 1 to 200" in refused.stderr
        out = lock.cli("bench", "gateway", "--count", str(COUNT), "--rate", str(RATE),
                       "--moves", str(MOVES), "--clients", "1,3", "--json",
                       "--saturate-s", str(SATURATE_S), timeout=400)  # fmt: skip
        report = json.loads(out.stdout)
        assert report["owner"] == "claimed" and report["url"] == app_url(lock)
        assert report["saturate_s"] == SATURATE_S

        assert [level["clients"] for level in report["status"]] == [1, 3]
        for level in report["status"]:
            for name in ("status", "ping"):
                r = level[name]
                timed(r, COUNT)
                assert r["from_send"]["p50_ms"] <= r["p50_ms"]  # the wait before the send counts
                assert 0 < r["throughput_per_s"] <= RATE + 1e-6  # done over elapsed, never more
                assert set(r["cpu_ms_per_request"]) == {"gateway", "policy", "bench"}
                saturated = level["saturated"][name]
                assert saturated["done"] > 0 and saturated["seconds"] >= SATURATE_S
            assert level["ratio_p50"]["p50"] == pytest.approx(
                level["status"]["p50_ms"] / level["ping"]["p50_ms"]
            )

        for level in report["unlock"]:
            assert level["moves"] == MOVES  # every one a real movement: half of each
            timed(level["unlock"], MOVES // 2)
            timed(level["lock"], MOVES // 2)
            timed(level["ping"], COUNT)
            assert level["travel"]["count"] == MOVES
            assert level["travel"]["p50_ms"] >= 0.9 * report["sim_travel_s"] * 1000
            assert 0 <= level["answers_after_the_bolt_reached"] <= MOVES
        alone, loaded = report["unlock"]
        assert alone["status_beside"] is None and loaded["status_beside"]["count"] > 0

        page = report["page"]
        timed(page["from_event"], COUNT)
        timed(page["from_send"], COUNT)
        timed(page["send_to_event"], COUNT)
        assert 0 <= page["missed"] <= COUNT
        timed(page["ping"], COUNT // 4)
        memory = report["gateway_memory_kib"]
        assert {"start", "status, 1 clients", "status, 3 clients", "unlock", "page"} == set(memory)
        assert all(0 < m["rss_kib"] <= m["peak_kib"] for m in memory.values())
        check = report["pin_check"]
        assert check["cpu"]["count"] == check["wall"]["count"] == 20
        assert report["targets"]["status"].startswith("not judged")
        assert report["targets"]["page"].startswith("not judged")

        owner = App(app_url(lock))  # the bench's password is the owner's now
        assert owner.login(BENCH_PASSWORD).status == 200

        def at_rest() -> dict:  # the last lock's answer came as the bolt began to move
            home = owner.get("/api/home").body
            return home if home["bolt"] != "moving" else {}

        home = eventually(at_rest)
        assert (home["remote_unlock"], home["bolt"], home["door"]) == (False, "locked", "closed")
