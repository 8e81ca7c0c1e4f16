"""Fixtures: each mesh in its own data directory, stopped when the test ends; and
Hypothesis' settings, chosen by where the suite runs."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tests.brokerkit import Broker
from tests.meshkit import Lock, running

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXAMPLES = Path(__file__).resolve().parent / ".hypothesis-examples"

# Timing is not what the properties are about, and the machine is shared: a slow example
# must not fail a run (deadline) or stop it (the too_slow health check).
_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
# CI draws the same examples on every run (derandomize), so a run cannot turn red by
# chance; a regression is pinned there with @example in the test itself. Hypothesis
# refuses a database together with derandomize, so CI reads none.
settings.register_profile("ci", derandomize=True, print_blob=True, **_UNTIMED)
# On a developer's machine every run draws new examples; one that fails is saved in the
# repository's example database and replayed first by every later run, on every clone
# once committed, until it passes.
settings.register_profile("dev", database=DirectoryBasedExampleDatabase(str(EXAMPLES)), **_UNTIMED)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session", autouse=True)
def face_models_once(tmp_path_factory: pytest.TempPathFactory):
    """Every test mesh builds its face models from one converted copy, not from scratch:
    one for the whole run, which xdist's workers share (build.ensure locks it)."""
    from services.face.models.build import CACHE_ENV

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's
    os.environ[CACHE_ENV] = str(shared / "face-models")


@pytest.fixture(scope="session", autouse=True)
def owner_state_apart(tmp_path_factory: pytest.TempPathFactory):
    """The owner's witnesses of the log's head (ops/audit.py) stay out of the real home."""
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("owner-state"))


@pytest.fixture
def lock(tmp_path: Path, request: pytest.FixtureRequest):
    """A running lock on the simulated board, fresh (initial state); made without the
    parts the test module names in WITHOUT (tests.meshkit.LEAN: none of the optional),
    but whole for a test marked whole_lock (one about every service)."""
    whole = request.node.get_closest_marker("whole_lock") is not None
    without = () if whole else getattr(request.module, "WITHOUT", ())
    with running(tmp_path / "data", set_up=False, without=without) as lock:
        yield lock


@pytest.fixture
def ready_lock(lock: Lock):
    """A running lock with its direction set and a first administrator (ADMIN_CODE)."""
    lock.set_up()
    return lock


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto of the module's own on a free localhost port (tests/brokerkit.py)."""
    broker = Broker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.kill(signal.SIGTERM)
