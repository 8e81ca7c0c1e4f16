"""A part the lock is made without (mesh.without) keeps its key in the key folder, so the
lock can be fitted with it later; but while it is left out, no process may act as it: its
requests are refused at the connection and no service listens to what it publishes."""

from __future__ import annotations

import pytest
import zmq

from proto.biometric import Match
from proto.bus import Bus
from proto.policy import Decision
from tests.meshkit import LEAN, Lock, eventually, is_type, running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lock(tmp_path_factory):
    with running(tmp_path_factory.mktemp("left-out") / "data", without=LEAN) as lock:
        yield lock


def drops(lock: Lock, service: str) -> dict[str, int]:
    return lock.status()["services"][service]["drops"]


def test_a_process_with_a_left_out_parts_key_is_refused_at_the_connection(lock) -> None:
    """The fingerprint module's match, the most harmful request biometric may send, from a
    process holding biometric's real key on a lock made without it."""
    before = drops(lock, "policy").get("unknown-key", 0)
    watch = lock.watcher()
    with Bus(lock.layout, "biometric") as bus:
        forged = Match(method="fingerprint", person="001", score=99.0, live=True)
        assert bus.client("policy").request(forged, timeout=2.0) is None
    eventually(lambda: drops(lock, "policy").get("unknown-key", 0) > before)
    lock.press("touch", *"000000", "ok")  # the first decision is this: the match made none
    assert not watch.wait_for(is_type(Decision)).body.granted


def test_no_service_listens_to_a_left_out_part(lock) -> None:
    """A process binding the radio's publisher with its real key hears no subscription,
    so nothing it publishes as the radio reaches policy or the watchdog."""
    with Bus(lock.layout, "ble") as bus:
        xpub = bus._server(zmq.XPUB, lock.layout.pub("ble"))
        # subscribers retry a missing publisher every 100 ms: they would be here by now
        assert not xpub.poll(1500), f"a service subscribed to ble: {xpub.recv()!r}"
