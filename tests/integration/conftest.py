"""Integration tests on the embedded sandbox: one daemon per module, stopped afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine.kit import project  # noqa: F401  (the CLI project fixture)

from migrate.sandbox import down, ensure_running, env_vars


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("sandbox")
    endpoints = ensure_running(state_dir, timeout=30)
    saved = dict(os.environ)
    os.environ.update(env_vars(endpoints))
    try:
        yield endpoints
    finally:
        os.environ.clear()
        os.environ.update(saved)
        down(Path(state_dir))
