"""The shipped migrate.yaml in a temporary directory, on a sandbox of its own, with the SDKs pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from engine.kit import Project

from migrate.sandbox import down, ensure_running, env_vars

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def sandboxed_project(root: Path, envs: list[str] | None = None) -> Iterator[tuple[Project, dict[str, Any]]]:
    """Yield (project, sandbox endpoints); ``envs`` keeps only those environments."""
    cfg = yaml.safe_load((ROOT / "migrate.yaml").read_text())
    cfg["sandbox"]["state_dir"] = str(root / "sandbox")
    if envs is not None:
        cfg["environments"] = {k: v for k, v in cfg["environments"].items() if k in envs}
    for env in cfg["environments"].values():
        env["terraform"]["root"] = str(ROOT / env["terraform"]["root"])
    (root / "migrate.yaml").write_text(yaml.safe_dump(cfg))
    endpoints = ensure_running(root / "sandbox", timeout=30)
    saved = dict(os.environ)
    os.environ.update(env_vars(endpoints))
    try:
        yield Project(root), endpoints
    finally:
        os.environ.clear()
        os.environ.update(saved)
        down(root / "sandbox")
