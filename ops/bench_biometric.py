"""`lockmesh bench biometric`: a finger (then a palm) shown to the simulated modules, to
policy's decision; plus the simulated matchers' false-accept and false-reject rates.

The bench sets itself up as the owner would: an administrator (on a lock in initial
state), then a bench finger and palm enrolled for them with the owner's identity. Only
enrolled fingers and palms are shown through the mesh: strangers would lock it out.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import zmq

from hw.sim_fingerprint import Features, FingerprintSimulator, merge, quantise, z_score
from hw.sim_palm import PalmSimulator
from ops.benchkit import Failed, closed_loop, set_up_if_initial
from proto.biometric import EnrolDone, EnrolOpen, EnrolStep, SimPresent, Unreadable
from proto.bus import Bus
from proto.control import Done
from proto.layout import Layout
from proto.policy import Decision

FINGER, PALM = "bench-finger", "bench-palm"
METHOD = {"finger": "fingerprint", "palm": "palm-vein"}
MAX_RATE = 2.0  # a person cannot present a finger faster, and the sensor is polled at 10 Hz


class Both:
    """Events from several publishers, as one stream."""

    def __init__(self, bus: Bus, peers: tuple[str, ...]) -> None:
        self.bus, self.poller, self.peers = bus, zmq.Poller(), {}
        for peer in peers:
            sock = bus.subscribe(peer)
            self.peers[sock] = peer
            self.poller.register(sock, zmq.POLLIN)

    def poll(self, ms: int) -> list[tuple[zmq.Socket, str]]:
        return [(sock, self.peers[sock]) for sock, _ in self.poller.poll(ms)]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every publisher was heard (a heartbeat will do): subscribed. A fixed
        pause was not enough on a loaded machine, and the first step went unheard."""
        deadline, unheard = time.monotonic() + timeout, set(self.peers.values())
        while unheard and (left := deadline - time.monotonic()) > 0:
            for sock, peer in self.poll(max(1, int(left * 1000))):
                sock.recv_multipart()  # before anything was asked: nothing to keep
                unheard.discard(peer)
        if unheard:
            raise Failed(f"heard nothing from {sorted(unheard)} within {timeout}s")


def _events_until(
    bus: Bus, source: Both, what: str, done: Callable[[Any], bool], timeout: float = 20
) -> Any:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        for sock, peer in source.poll(max(1, int(left * 1000))):
            env = bus.receive_event(sock, peer)
            if env is not None and done(env):
                return env
    raise Failed(f"nothing from {what} within {timeout}s")


def enrol(layout: Layout, bench: Bus, modality: str, who: str) -> str:
    """Enrol who for 001 as the owner; 'already-added' from an earlier run is fine."""
    events = Both(bench, ("biometric",))
    events.settle()
    with Bus(layout, "cli") as owner:
        answer = owner.client("policy").request(
            EnrolOpen(person="001", modality=modality), timeout=5
        )
    if answer is None or not isinstance(answer.body, Done) or not answer.body.ok:
        raise Failed(f"enrolment refused: {answer.body if answer else 'no answer'}")
    sim = bench.client("biometric")
    for _ in range(2 if modality == "finger" else 1):
        _events_until(bench, events, "biometric", lambda e: _step_to_show(e.body))
        sim.request(SimPresent(modality=modality, who=who), timeout=5)
    end = _events_until(bench, events, "biometric", lambda e: isinstance(e.body, EnrolDone))
    if not end.body.ok and end.body.reason != "already-added":
        raise Failed(f"enrolment failed: {end.body.reason} {end.body.detail}")
    return "enrolled" if end.body.ok else "already enrolled"


def _step_to_show(body: Any) -> bool:
    return isinstance(body, EnrolStep) and body.step in ("place-finger", "palm-ready")


def presentation_path(
    layout: Layout, bus: Bus, modality: str
) -> tuple[Callable[[], float], Callable[[], dict]]:
    """Shown, to policy's decision (its wall stamp minus the moment the sim request left)."""
    setup = enrol(layout, bus, modality, FINGER if modality == "finger" else PALM)
    events, sim = Both(bus, ("policy", "biometric")), bus.client("biometric")
    events.settle()
    who = FINGER if modality == "finger" else PALM
    outcomes = {"granted": 0, "refused": 0, "unreadable": 0}

    def once() -> float:
        for _ in range(3):  # an unreadable capture is shown again, as the panel asks
            sim.request(SimPresent(modality=modality, who=""), timeout=5)
            time.sleep(0.25)  # lifted long enough for the idle sensor to see it go
            sent = time.time()
            sim.request(SimPresent(modality=modality, who=who), timeout=5)
            seen = _events_until(bus, events, "biometric|policy", outcome, timeout=10)
            if isinstance(seen.body, Decision):
                outcomes["granted" if seen.body.granted else "refused"] += 1
                return seen.wall - sent
            outcomes["unreadable"] += 1
        raise Failed(f"three unreadable {modality} captures in a row")

    def outcome(env: Any) -> bool:
        body = env.body
        return (isinstance(body, Decision) and body.method == METHOD[modality]) or (
            isinstance(body, Unreadable) and body.modality == modality
        )

    def extra() -> dict:
        return {"path": f"sim {modality} -> biometric -> policy decision", "setup": setup,
                **outcomes}  # fmt: skip

    return once, extra


def matcher_rates(people: int = 100, strangers: int = 200) -> dict[str, Any]:
    """The simulated matchers alone, in this process, as the modules use them: a finger
    template merges two captures and a probe is one capture; a palm template merges
    three frames and a probe passes when either of two frames matches. Strangers are
    compared with every template (false accepts per comparison)."""
    report: dict[str, Any] = {}
    with FingerprintSimulator(seed=7) as fsim:
        threshold = fsim.match_z * 20

        def finger(key: str) -> Features:
            while (f := fsim.sample(key)) is None:  # an unusable capture is asked again
                pass
            return f

        templates = [merge(finger(f"p{i}"), finger(f"p{i}")) for i in range(people)] * 2
        report["fingerprint"] = _rates(  # each template twice: two probes a person
            templates, lambda i: [finger(f"p{i % people}")], lambda j: finger(f"s{j}"),
            lambda a, b: fsim.score(a, b) >= threshold, strangers,
        )  # fmt: skip
    with PalmSimulator(seed=7) as psim:

        def palm_template(key: str) -> Features:
            frames = [psim.sample(key) for _ in range(psim.enroll_frames)]
            mean = tuple(sum(v) / len(frames) for v in zip(*(f.values for f in frames)))
            return quantise(Features(mean, (1,) * len(mean)))

        templates = [palm_template(f"p{i}") for i in range(people)] * 2
        report["palm"] = _rates(
            templates,
            lambda i: [psim.sample(f"p{i % people}") for _ in range(psim.verify_frames)],
            lambda j: psim.sample(f"s{j}"), lambda a, b: z_score(a, b) >= psim.match_z,
            strangers,
        )  # fmt: skip
    return report


def _rates(templates, genuine, stranger, matches, strangers: int) -> dict[str, Any]:
    rejected = sum(not any(matches(p, t) for p in genuine(i)) for i, t in enumerate(templates))
    distinct = templates[: len(templates) // 2]
    probes = [stranger(j) for j in range(strangers)]
    accepted = sum(matches(p, t) for p in probes for t in distinct)
    comparisons = len(probes) * len(distinct)
    return {
        "frr": rejected / len(templates),
        "genuine_attempts": len(templates),
        "far_per_comparison": accepted / comparisons,
        "comparisons": comparisons,
    }


def run(layout: Layout, count: int, rate: float) -> dict[str, Any]:
    """Both modules through the mesh, then the matchers alone."""
    rate = min(rate, MAX_RATE)
    report: dict[str, Any] = {"rate_per_s": rate}
    with Bus(layout, "bench") as bus:
        set_up_if_initial(bus)
        for modality in ("finger", "palm"):
            once, extra = presentation_path(layout, bus, modality)
            report[modality] = {**closed_loop(count, rate, once), **extra()}
    report["matchers"] = matcher_rates()
    return report
