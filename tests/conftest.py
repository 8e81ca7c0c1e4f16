"""Fixtures: each mesh in its own data directory, stopped when the test ends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.meshkit import Lock, running

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session", autouse=True)
def face_models_once(tmp_path_factory: pytest.TempPathFactory):
    """Every test mesh builds its face models from one converted copy, not from scratch."""
    from services.face.models.build import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("face-models"))


@pytest.fixture
def lock(tmp_path: Path):
    """A running lock on the simulated board, fresh (initial state)."""
    with running(tmp_path / "data", set_up=False) as lock:
        yield lock


@pytest.fixture
def ready_lock(lock: Lock):
    """A running lock with its direction set and a first administrator (ADMIN_CODE)."""
    lock.set_up()
    return lock
