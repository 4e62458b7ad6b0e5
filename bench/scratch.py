"""A scratch copy of the shipped configuration for benchmarks that run the CLI on a sandbox of their own."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def scratch_config(prefix: str) -> tuple[Path, dict[str, Any]]:
    """A temporary folder holding migrate.yaml with its own sandbox state dir and absolute Terraform roots."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    cfg = yaml.safe_load((ROOT / "migrate.yaml").read_text())
    cfg["sandbox"]["state_dir"] = str(work / "sandbox")
    for env in cfg["environments"].values():
        env["terraform"]["root"] = str(ROOT / env["terraform"]["root"])
    (work / "migrate.yaml").write_text(yaml.safe_dump(cfg))
    return work, cfg
