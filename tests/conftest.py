"""Fixtures: each mesh in its own data directory, stopped when the test ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import mesh
from tests.meshkit import Lock

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def lock(tmp_path: Path):
    """A running lock on the simulated board, fresh (initial state)."""
    lock = Lock(tmp_path / "data")
    lock.up()
    try:
        yield lock
    finally:
        mesh.down(lock.layout)
        mesh.clean_run_dir(lock.layout)


@pytest.fixture
def ready_lock(lock: Lock):
    """A running lock with its direction set and a first administrator (ADMIN_CODE)."""
    lock.set_up()
    return lock
