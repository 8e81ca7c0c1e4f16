"""`lockmesh bench ble` (issue 16): a phone key's challenge to the bolt moving, over the
simulated air (the ble service's in-process radio, reached by `ble.sim`), beside the raw
and transport round trips in the same run; and signature checks per second on one core.

Each sample is one whole operation of the owner's phone: HELLO, policy's challenge back,
the signed answer, policy's verdict, the motor's Actuate, timed from the HELLO's send to
the motor's first `moving` (its own wall stamp, this machine's clock), unlock and lock in
turn so that every operation moves the bolt. The motor takes one drive at a time, so this
path is closed-loop by nature: the next begins when the bolt has arrived.

The bench's phone key becomes the owner's: on a lock not claimed yet it claims it in
pairing mode (SET held on the simulated board) with the bench's password and PIN, else it
opens pairing and registers its key with the app PIN (LOCKMESH_APP_PIN). That voids the
grants and offline codes of the owner's phone: bench a lock of its own.
"""

from __future__ import annotations

import os
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ops import bench_gateway
from ops.benchkit import Block, Failed, Runner, expect, percentiles, watch_bolt
from ops.phone import SimCentral, operate
from proto import offline_codes, phonekey
from proto.ble import PhoneKey, PhoneKeySet
from proto.bus import Bus
from proto.control import Done, StatusReply, StatusRequest
from proto.layout import Layout
from proto.owner import HomeRequest, PairClaim
from proto.wire import Envelope
from services.policy.secrets import identity, read_device_secret

BOLT_TIMEOUT_S = 5.0
TARGET = {"unlock": "unlocked", "lock": "locked"}
VERIFY_S = 1.0  # each signature count runs this long


def owner_key(layout: Layout, bus: Bus) -> Ed25519PrivateKey:
    """A key of the bench's, registered as the owner's phone (see the module's note)."""
    key = Ed25519PrivateKey.generate()
    password, pin = bench_gateway.credentials()
    bench_gateway.open_pairing(layout, bus)
    with Bus(layout, "cli") as owner:  # the owner's identity: the bench runs as the owner
        policy = owner.client("policy")
        home = expect(policy.request(HomeRequest(), timeout=5), "owner.home")
        if not home.claimed:
            who = identity(read_device_secret(layout.data / "device.secret"))
            claim = PairClaim(serial=who.serial, code=who.verification_code,
                              password=password, pin=pin)  # fmt: skip
            _ok(expect(policy.request(claim, timeout=10), "the claim"), "the claim")
        asked = PhoneKeySet(public_key=phonekey.public_bytes(key).hex(), pin=pin)
        given = expect(policy.request(asked, timeout=10), "owner.phone_key_set")
    if not isinstance(given, PhoneKey):
        _ok(given, "registering the bench's phone key (LOCKMESH_APP_PIN?)")
    return key


def _ok(body: Any, what: str) -> None:
    if isinstance(body, Done) and not body.ok:
        raise Failed(f"{what} refused: {body.reason}: {body.detail}")


class ChallengeToMoving:
    """The measured path: whole phone operations, each moving the bolt."""

    name = "ble"

    def __init__(self, bus: Bus, key: Ed25519PrivateKey) -> None:
        self.bus, self.key = bus, key
        self.central = SimCentral(bus, "bench")
        self.motor = bus.client("motor")
        self.events = bus.subscribe("motor")
        self.reached: list[float] = []
        self.operation: list[float] = []  # HELLO to the lock's answer (the phone's wait)
        time.sleep(0.2)  # the subscription's handshake, before the first movement

    def run(self, count: int, rate: float) -> Block:
        """count operations; rate does not apply: one bolt movement at a time."""
        start, block = time.perf_counter(), Block()
        action: phonekey.Action = "lock" if self._bolt() == "unlocked" else "unlock"
        for _ in range(count):
            block.latencies.append(self._move(action))
            action = "lock" if action == "unlock" else "unlock"
        block.from_send = list(block.latencies)  # closed loop: sent when due
        block.elapsed = time.perf_counter() - start
        return block

    def warm_up(self, rate: float) -> None:
        self.run(2, rate)
        self.reached.clear()
        self.operation.clear()

    def _bolt(self) -> str:
        deadline = time.monotonic() + BOLT_TIMEOUT_S
        while time.monotonic() < deadline:
            body = expect(self.motor.request(StatusRequest(), timeout=5), "motor status")
            state = body.detail.get("bolt") if isinstance(body, StatusReply) else None
            if state in TARGET.values():
                return str(state)
            time.sleep(0.02)
        raise Failed(f"the bolt did not come to rest within {BOLT_TIMEOUT_S:.0f}s")

    def _move(self, action: phonekey.Action) -> float:
        while self.events.poll(0):  # what came before this movement
            self.events.recv_multipart()
        sent, started = time.time(), time.perf_counter()
        ok, reason = operate(self.central, self.key, action)
        self.operation.append(time.perf_counter() - started)
        if not ok:
            raise Failed(f"the lock refused the bench's phone: {reason}")
        moving, reached = watch_bolt(self.bus, self.events, TARGET[action])
        self.reached.append(reached - sent)
        return moving - sent

    def close(self) -> None:
        self.central.close()


class BleBench:
    peers = ("policy",)

    def __init__(self, layout: Layout, bus: Bus, code: str, service: str) -> None:
        self.path = (
            "phone HELLO -> ble -> policy challenge -> signed answer -> policy -> motor moving"
        )
        self.moves = ChallengeToMoving(bus, owner_key(layout, bus))
        self.runners: list[Runner] = [self.moves]

    def counts(self, count: int, moves: int) -> dict[str, int]:
        return {"ble": count}

    def finish(self, report: dict[str, Any], events: list[Envelope]) -> dict[str, Any]:
        return {
            "ble": {
                "to_reached": percentiles(self.moves.reached),
                "operation": percentiles(self.moves.operation),
            },
            "signatures": signature_rates(),
            "offline_codes": offline_table_ms(),
        }

    def close(self) -> None:
        self.moves.close()


def signature_rates(seconds: float = VERIFY_S) -> dict[str, float]:
    """Checks a second on one core (this thread): an owner's answer is one Ed25519
    verification, a visitor's two (the owner's over the grant, the visitor's over the
    answer); each as policy does it, from the bytes."""
    owner, visitor = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    lock_id, nonce = os.urandom(8), os.urandom(16)
    visitor_key = phonekey.public_bytes(visitor)
    unsigned = phonekey.Grant(lock_id, os.urandom(8), visitor_key, 0, 2**32 - 1, 0, 1, "bench")
    grant = phonekey.sign_grant(owner, unsigned)
    owner_bytes = phonekey.public_bytes(owner)
    answers = {
        "owner": phonekey.sign_answer(
            owner, lock_id, phonekey.Answer("unlock", "owner", nonce, owner_bytes)
        ).encode(),  # fmt: skip
        "visitor": phonekey.sign_answer(
            visitor, lock_id, phonekey.Answer("unlock", "visitor", nonce, grant.encode())
        ).encode(),  # fmt: skip
    }

    def check(data: bytes) -> bool:
        a = phonekey.decode_answer(data)
        if a.kind == "owner":
            return phonekey.verifies(owner_bytes, a.signature, a.signed_part(lock_id))
        g = a.grant()
        return g.signed_by(owner_bytes) and phonekey.verifies(
            g.visitor_key, a.signature, a.signed_part(lock_id))  # fmt: skip

    rates = {}
    for kind, data in answers.items():
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            assert check(data)
            done += 1
        rates[f"{kind}_answers_per_s"] = done / (time.perf_counter() - start)
    rates["verifications_per_s"] = rates["owner_answers_per_s"]
    return rates


def offline_table_ms() -> dict[str, Any]:
    """The offline codes valid in an hour, computed once an hour by policy."""
    start = time.perf_counter()
    table = offline_codes.table(os.urandom(32), offline_codes.hour_of(time.time()))
    return {"candidates": offline_codes.CANDIDATES, "distinct": len(table),
            "table_ms": (time.perf_counter() - start) * 1000}  # fmt: skip


def show(report: dict[str, Any]) -> None:
    from ops.benchkit import show_line

    ble = report["ble"]
    print(show_line("to reached", ble["to_reached"], width=12))
    print(show_line("operation", ble["operation"], width=12) + "  (HELLO to the lock's answer)")
    s = report["signatures"]
    print(
        f"  signature checks on one core: {s['owner_answers_per_s']:.0f} owner answers/s "
        f"(one Ed25519 verification each), {s['visitor_answers_per_s']:.0f} visitor answers/s "
        f"(two each)"
    )
    o = report["offline_codes"]
    print(f"  offline codes: the {o['candidates']} valid in an hour made in {o['table_ms']:.1f} ms")
