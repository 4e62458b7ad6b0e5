"""One sandbox daemon for the traffic tests, in a temporary state dir; the AWS and proxy variables it needs are
set for the session and restored after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.sandbox import lifecycle


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("traffic-sandbox") / "state"
    endpoints = lifecycle.ensure_running(state, timeout=30)
    saved = dict(os.environ)
    os.environ.update(lifecycle.env_vars(endpoints))
    try:
        yield endpoints
    finally:
        os.environ.clear()
        os.environ.update(saved)
        lifecycle.down(state)


@pytest.fixture
def clean_faults(sandbox: dict[str, Any]) -> Iterator[None]:
    yield
    lifecycle.control(sandbox, "DELETE", "/faults")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path
