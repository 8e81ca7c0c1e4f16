"""`lockmesh bench policy`: where a passcode decision's time goes (issue 12, item 6).

A decision is timed on the running mesh, from the keypad's CodeEntered event (stamped as
the keypad sends the code to policy) to the motor's Bolt event for the Actuate it caused
(the bolt may move from then on), in three legs between wall-clock stamps taken by three
processes of one machine:

  to_write  code sent -> policy stamps the decision's row in the event log: the hop to
            policy, decoding and validation, the rules, the reads they need
  write     row stamped (as its transaction began) -> decision published: the row and
            the lockout's state committed by a synchronous write, which must land before
            the bolt moves
  to_motor  decision published -> the motor has the Actuate: publishing, the hop to the
            motor, its decoding and validation, its handler (the motor's drive journal,
            a second synchronous write, only for a drive that moves the bolt: these
            decisions mostly find it unlocked already)

Our code's parts outside the write are timed in this process, on the same functions:
encoding, decoding and validating both requests (what that adds to msgpack, which the
transport baseline does too), the rules (L-19's anti-peeping match and the verdict), and
the store's reads a decision makes (the administrators' count, the person's validity, two
settings; kept in memory since issue 12, services/policy/readcache.py). The two hops
together are one round trip of the transport baseline (CURVE + msgpack between two
processes). What is left of to_write + to_motor is "rest": the loops waking and reading
their sockets, the clock, stamping, publishing, and whatever else the machine runs
meanwhile (on two cores, the other services hearing the
keypad's and policy's events). The target: everything but the write within two
transport round trips.
"""

from __future__ import annotations

import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import msgpack

from ops.bench_keypad import decision_path, decisions_seen
from ops.benchkit import WARMUP, Block, Failed, OpenLoop, Runner, expect, percentiles
from proto import trust
from proto.board import Actuate, Bolt
from proto.bus import Bus
from proto.config import DEFAULTS
from proto.freshness import Freshness
from proto.keypad import CodeEntered
from proto.layout import Layout
from proto.owner import EventsRequest, Listing
from proto.policy import Decision, LockInfo, LockInfoRequest, VerifyPasscode
from proto.schema import Message
from proto.wire import Envelope, Stamper, decode, encode, fields
from services.policy import passcodes, rules
from services.policy.people import People
from services.policy.store import Store

LEGS = ("to_write", "write", "to_motor")
DECISION_ROWS = ("granted", "unlock", "refused")  # a grant is logged `granted` since issue 11
SAMPLES = 100  # in-process timings of each part (paced: 12 parts take 100 x 12 gaps)


class DecisionsWithRows:
    """The decisions' runner, which after each block fetches the rows it wrote (as the
    owner: the event log is theirs), for the stamp between the rules and the write."""

    def __init__(self, decisions: OpenLoop, layout: Layout) -> None:
        self.name, self.decisions = decisions.name, decisions
        self.owner = Bus(layout, "cli")
        self.rows: dict[str, float] = {}  # a row's cause (the CodeEntered id) -> its wall

    def run(self, count: int, rate: float) -> Block:
        since = time.time()
        block = self.decisions.run(count, rate)
        ask = EventsRequest(since=since, limit=min(1000, 3 * count + 20))
        answer = self.owner.client("policy").request(ask, timeout=5)
        if answer is None or not isinstance(answer.body, Listing):
            raise Failed("policy did not list the decisions' events")
        for row in answer.body.items:  # a decision's row is the first of its cause
            if row["kind"] in DECISION_ROWS and row["cause"]:
                self.rows[row["cause"]] = min(row["wall"], self.rows.get(row["cause"], 1e300))
        return block

    def warm_up(self, rate: float) -> None:
        self.run(WARMUP, rate)

    def close(self) -> None:
        self.decisions.close()
        self.owner.close()


class PolicyBench:
    """`bench policy`: the decisions, open-loop, and where their time went."""

    peers = ("keypad", "policy", "motor")
    hears = (CodeEntered, Decision, Bolt)

    def __init__(self, layout: Layout, bus: Bus, code: str, service: str) -> None:
        self.layout, self.code = layout, code
        info = expect(bus.client("policy").request(LockInfoRequest(), timeout=2), "policy.info")
        self.people = info.people if isinstance(info, LockInfo) else 1
        self.path = "SimKeys touch + code + ok -> keypad -> policy -> motor"
        self.decisions = DecisionsWithRows(decision_path(layout, code), layout)
        self.runners: list[Runner] = [self.decisions]

    def counts(self, count: int, moves: int) -> dict[str, int]:
        return {"decisions": count}

    def finish(self, report: dict[str, Any], events: list[Envelope]) -> dict[str, Any]:
        # from each send: the legs are stamped inside the services, without the bench's
        # own hand-over to a worker that the figures from the schedule include
        transport = report["baselines"]["transport"]["from_send"]["p50_ms"]
        measured = legs(events, self.decisions.rows)
        ours = in_process(self.layout, self.code, self.people,
                          gap=min(1 / report["rate_per_s"], 0.02),
                          count=min(report["count"], SAMPLES))  # fmt: skip
        return {**decisions_seen(events), "split": split(measured, ours, transport)}

    def close(self) -> None:
        self.decisions.close()


def legs(events: list[Envelope], rows: dict[str, float]) -> dict[str, list[float]]:
    """Each decision's legs in seconds, for those whose four stamps were all seen."""
    codes = {e.id: e.wall for e in events if isinstance(e.body, CodeEntered)}
    decisions = {e.cause: e for e in events if isinstance(e.body, Decision) and e.body.granted}
    bolts = {e.cause: e.wall for e in events if isinstance(e.body, Bolt)}
    out: dict[str, list[float]] = {leg: [] for leg in (*LEGS, "total", "not_write")}
    for code_id, sent in codes.items():
        decision = decisions.get(code_id)
        row = rows.get(code_id)
        if decision is None or row is None or decision.id not in bolts:
            continue
        to_write, write = row - sent, decision.wall - row
        to_motor = bolts[decision.id] - decision.wall
        for leg, value in zip(out, (to_write, write, to_motor, to_write + write + to_motor)):
            out[leg].append(value)
        out["not_write"].append(to_write + to_motor)
    return out


# -- our code's parts, in this process ------------------------------------------------------
def paced(parts: dict[str, Callable[[], Any]], count: int, gap: float) -> dict[str, list[float]]:
    """Each part timed count times, one call every gap seconds, parts taking turns: as
    cold as a decision finds them in a service that waited for it (a part called in a
    tight loop runs several times faster than that)."""
    samples: dict[str, list[float]] = {name: [] for name in parts}
    for i in range(count + WARMUP):
        for name, fn in parts.items():
            time.sleep(gap)
            t0 = time.perf_counter()
            fn()
            if i >= WARMUP:
                samples[name].append(time.perf_counter() - t0)
    return samples


def codec_parts() -> dict[str, Callable[[], Any]]:
    """Both requests of a decision (the code to policy, the Actuate to the motor): stamped
    and encoded by the sender; decoded and checked (trust table, freshness) by the
    receiver, as the bus does; and msgpack alone packing and unpacking the same maps."""
    return {
        **hop_parts("code", "keypad", VerifyPasscode(entry="246813")),
        **hop_parts("actuate", "policy", Actuate(action="unlock", direction="right")),
    }


def hop_parts(hop: str, sender: str, body: Message) -> dict[str, Callable[[], Any]]:
    stamper, fresh = Stamper(sender, channel="c"), Freshness()
    sent = iter([encode(stamper.stamp(body, "x", timeout=60)) for _ in range(SAMPLES + WARMUP)])
    packed = fields(stamper.stamp(body, "x", timeout=60), body.to_body())
    wire = msgpack.packb(packed)

    def receive() -> None:
        env = decode(next(sent))
        if trust.refusal(env.type, "request", sender) is not None:
            raise Failed(f"the trust table refuses {env.type} from {sender}")
        fresh.admit_request(env)

    return {
        f"{hop}_encode": lambda: encode(stamper.stamp(body, "x", timeout=2)),
        f"{hop}_decode": receive,
        f"{hop}_msgpack_pack": lambda: msgpack.packb(packed),
        f"{hop}_msgpack_unpack": lambda: msgpack.unpackb(wire, raw=False),
    }


def stored_codes(count: int, rng: random.Random) -> tuple[dict[bytes, str], passcodes.Hasher]:
    hasher = passcodes.Hasher(rng.randbytes(32))
    stored: dict[bytes, str] = {}
    while len(stored) < count:
        code = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 10)))
        if passcodes.rule_broken(code, min_digits=6, max_digits=10) is None:
            stored[hasher.digest(code)] = f"{len(stored) + 1:03d}"
    return stored, hasher


def rules_part(code: str, people: int) -> Callable[[], Any]:
    """L-19's match of the bench's entry against as many codes as the lock has, then the
    verdict, as policy runs them."""
    stored, hasher = stored_codes(max(0, people - 1), random.Random(19))
    stored[hasher.digest(code)] = "001"
    lengths = {len(code), *range(6, 11)} if people > 1 else {len(code)}
    lockout = rules.Lockout(limit=5, window_s=300, duration_s=180)
    utc = ZoneInfo("UTC")

    def decide() -> None:
        person = passcodes.find(code, stored, lengths, hasher)
        rules.decide(
            rules.Attempt("pin", person=person), lockout, wall=time.time(),
            mono=time.monotonic(), tz=utc, remote_enabled=False,
        )  # fmt: skip

    return decide


def anti_peeping_part(codes: int = 50, entry_digits: int = 20) -> Callable[[], Any]:
    """L-19's worst case: a 20-digit entry that matches none of 50 codes of every length."""
    rng = random.Random(19)
    stored, hasher = stored_codes(codes, rng)
    lengths = set(range(6, 11))
    entries: list[str] = []
    while len(entries) < 50:  # entries that match nothing: every run of them is hashed
        entry = "".join(rng.choice("0123456789") for _ in range(entry_digits))
        if passcodes.find(entry, stored, lengths, hasher) is None:
            entries.append(entry)
    it = itertools.cycle(entries)
    return lambda: passcodes.find(next(it), stored, lengths, hasher)


def reads_part(store: Store, code: str) -> Callable[[], Any]:
    """The store's reads of a passcode decision, as policy makes them: whether the lock is
    in its initial state (panel.py), the person's validity (decider.py), remote unlock
    (the rules) and the opening direction (the Actuate), on a store of our own."""
    people = People(store, DEFAULTS["capacity"], time.time)
    person = people.add("admin", "", passcodes.Hasher(b"bench" * 8).digest(code), len(code),
                        source="bench", cause="bench")  # fmt: skip
    store.set_setting("direction", "right", source="bench", cause="bench")

    def read() -> None:
        people.count("admin")
        people.validity(person)
        store.setting("remote_unlock")
        store.setting("direction")

    return read


def write_part(store: Store) -> Callable[[], Any]:
    """The decision's transaction (its row, the lockout's state), on a store of our own."""

    def write() -> None:
        with store.transaction():
            store.append("granted", person="001", method="pin", source="keypad", reason="",
                         cause="bench")  # fmt: skip
            store.put_setting("lockout_state", '{"active": false, "failures": 0}')

    return write


def in_process(layout: Layout, code: str, people: int, *, gap: float, count: int) -> dict[str, Any]:
    """Our parts, paced as the decisions were; the write on a store in the lock's data
    folder (the same disk), as a check on the mesh's write leg."""
    with tempfile.TemporaryDirectory(dir=layout.data, prefix="bench-") as d:
        store = Store(Path(d) / "lock.db", chain_key=b"bench" * 8)
        try:
            parts = {
                **codec_parts(),
                "rules": rules_part(code, people),
                "anti_peeping_worst": anti_peeping_part(),
                "reads": reads_part(store, code),
                "write": write_part(store),
            }
            samples = paced(parts, count, gap)
        finally:
            store.close()
    medians = {name: statistics.median(s) * 1000 for name, s in samples.items()}
    ours = sum(
        medians[f"{hop}_{side}"] for hop in ("code", "actuate") for side in ("encode", "decode")
    )
    plain = sum(medians[f"{hop}_msgpack_{side}"] for hop in ("code", "actuate")
                for side in ("pack", "unpack"))  # fmt: skip
    return {
        "paced_every_s": gap,
        "samples": count,
        "parts": {name: percentiles(s) for name, s in samples.items()},
        "codec_p50_ms": ours,
        "msgpack_p50_ms": plain,
        "codec_beyond_msgpack_ms": ours - plain,
    }


def split(
    leg_samples: dict[str, list[float]], ours: dict[str, Any], transport_p50_ms: float
) -> dict[str, Any]:
    """The legs as measured, our parts as timed in process, and what is left."""
    if not leg_samples["total"]:
        raise Failed("no decision was seen whole (code, row, decision, bolt)")
    measured = {leg: percentiles(samples) for leg, samples in leg_samples.items()}
    not_write = measured["not_write"]["p50_ms"]
    parts = {
        "transport": transport_p50_ms,
        "codec_beyond_msgpack": ours["codec_beyond_msgpack_ms"],
        "rules": ours["parts"]["rules"]["p50_ms"],
        "reads": ours["parts"]["reads"]["p50_ms"],
        "write": measured["write"]["p50_ms"],
    }
    parts["rest"] = not_write - sum(v for k, v in parts.items() if k != "write")
    return {
        "decisions": measured["total"]["count"],
        "legs": measured,
        "parts_p50_ms": parts,
        "in_process": ours,
        "budget_ms": 2 * transport_p50_ms,
        "not_write_p50_ms": not_write,
        "within_budget": not_write <= 2 * transport_p50_ms,
    }
