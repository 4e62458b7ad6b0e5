"""Build an engine Context for the replay steps, as the executor would: a config file, a workdir, and the
outputs of an earlier write-kubeconfig step (one kubeconfig holding both clusters' contexts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migrate.config import load_config
from migrate.plan.model import Step
from migrate.steps.base import Context
from replay.kit import NEW_NAME, OLD_NAME

KUBECONFIG_STEP = "05-write-kubeconfig"


def merged_kubeconfig(parts: list[Path], out: Path) -> Path:
    docs = [yaml.safe_load(p.read_text()) for p in parts]
    merged = {"apiVersion": "v1", "kind": "Config", "preferences": {},
              "clusters": [c for d in docs for c in d["clusters"]], "users": [u for d in docs for u in d["users"]],
              "contexts": [c for d in docs for c in d["contexts"]], "current-context": docs[0]["current-context"]}
    out.write_text(yaml.safe_dump(merged))
    out.chmod(0o600)
    return out


def write_config(root: Path, replay: dict[str, Any]) -> Path:
    # The fixtures' claims are on emulator hostPath volumes holding no data: `fresh` is their only strategy.
    replay = {"volumes": {"rules": [{"strategy": "fresh"}]}, **replay}
    env = {"cloud": "aws", "aws": {"region": "us-east-1"}, "skip": ["shift-traffic"],
           "clusters": {"old": {"name": OLD_NAME}, "new": {"name": NEW_NAME}}, "replay": replay}
    path = root / "migrate.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "environments": {"dev": env}}))
    return path


def context(config: Path, workdir: Path, kubeconfig: Path, log: list[str] | None = None) -> Context:
    loaded = load_config(config)
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    sink = log if log is not None else []
    return Context(loaded=loaded, env_name="dev", env=loaded.env("dev"), workdir=workdir, run_id="test",
                   outputs={KUBECONFIG_STEP: {"kubeconfig": str(kubeconfig),
                                              "contexts": {"old": OLD_NAME, "new": NEW_NAME}}},
                   log=sink.append)


def step(kind: str, **params: Any) -> Step:
    n = {"replay-workloads": "06", "wait-workloads-ready": "07"}[kind]
    return Step(id=f"{n}-{kind}", kind=kind, title=kind, params=params, effect="", undo="")
