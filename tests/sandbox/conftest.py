"""One sandbox daemon for the module-spanning tests, started from nothing in a temporary state dir."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.sandbox import lifecycle


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox") / "state"


@pytest.fixture(scope="session")
def sandbox(sandbox_dir: Path) -> Iterator[dict[str, Any]]:
    t0 = time.monotonic()
    endpoints = lifecycle.up(sandbox_dir, timeout=30)
    endpoints["_up_seconds"] = time.monotonic() - t0
    try:
        yield endpoints
    finally:
        lifecycle.down(sandbox_dir)
        assert not lifecycle.pid_alive(endpoints["pid"]), "the sandbox daemon outlived `down`"


@pytest.fixture
def clean_faults(sandbox: dict[str, Any]) -> Iterator[None]:
    yield
    lifecycle.control(sandbox, "DELETE", "/faults")
