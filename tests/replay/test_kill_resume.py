"""SIGKILL the replay half-way, resume it, and get exactly what an uninterrupted replay gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.config import Replay
from migrate.kube.client import KubeClient
from migrate.kube.export import export
from migrate.kube.objects import key_of
from migrate.kube.sanitize import sanitize
from migrate.steps.replay import ReplayWorkloadsStep
from replay.engine import context, merged_kubeconfig, step, write_config
from replay.kit import NEW_NAME, SAMPLE_TRANSFORMS, Cluster, fixture_docs, sample_workloads

HERE = Path(__file__).parent
# The default rate limit (50 qps) keeps the child slow enough to be killed mid-way, as in real life.
REPLAY: dict[str, Any] = {"transforms": SAMPLE_TRANSFORMS, "concurrency": 4, "qps": 50}


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(NEW_NAME, tmp_path / "twin.kubeconfig")
    try:
        yield c
    finally:
        c.stop()


def state(kubeconfig: Path, ctx_name: str) -> dict[str, Any]:
    """The new cluster's replayable content, without what each server assigns (uids, IPs, status)."""
    with KubeClient.from_kubeconfig(str(kubeconfig), ctx_name, qps=None) as k:
        exported = export(k, Replay.model_validate(REPLAY))
    return {str(key_of(o)): sanitize(o)[0] for o in exported.objects}


def seed(old: Cluster) -> None:
    old.load(sample_workloads())
    old.load([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "boutique"}}])
    old.load(fixture_docs("microservices-demo.yaml", "boutique"))
    old.load(fixture_docs("ingress-nginx-cloud.yaml"))
    old.settle()


def test_kill_halfway_and_resume_gives_an_identical_result(old: Cluster, new: Cluster, twin: Cluster,
                                                           tmp_path: Path) -> None:
    seed(old)
    config = write_config(tmp_path, REPLAY)
    both = merged_kubeconfig([old.kubeconfig, new.kubeconfig], tmp_path / "both.kubeconfig")
    progress = tmp_path / "progress.txt"
    progress.touch()
    env = {**os.environ, "PYTHONPATH": f"{HERE.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, str(HERE / "run_step.py"), str(config), str(tmp_path / "work"),
                              str(both), str(progress)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(progress.read_text().splitlines()) < 40:
            assert child.poll() is None, f"the replay ended before it could be killed: {child.stderr.read()}"
            assert time.monotonic() < deadline, "the replay made no progress"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    done_before_kill = progress.read_text().splitlines()
    assert "DONE" not in done_before_kill
    assert not (tmp_path / "work/replay/created.json").exists()  # killed before the end
    half = state(both, NEW_NAME)
    assert len(half) > 0

    # Resume: the same step, same workdir; a higher rate limit only to keep the test short.
    (tmp_path / "fast").mkdir()
    config = write_config(tmp_path / "fast", {**REPLAY, "qps": 2000})
    ctx = context(config, tmp_path / "work", both)
    out = ReplayWorkloadsStep().apply(step("replay-workloads"), ctx)
    assert out["parity"] is True and out["results"]["failed"] == 0
    assert out["results"]["unchanged"] >= 30  # what the killed run did is not done again

    # Reference: one uninterrupted replay into a twin cluster.
    twin_cfg = merged_kubeconfig([old.kubeconfig, twin.kubeconfig], tmp_path / "twin-both.kubeconfig")
    twin_ctx = context(config, tmp_path / "twin-work", twin_cfg)
    ref = ReplayWorkloadsStep().apply(step("replay-workloads"), twin_ctx)

    resumed, reference = state(both, NEW_NAME), state(twin_cfg, NEW_NAME)
    assert sorted(resumed) == sorted(reference)
    diffs = [k for k in reference if resumed[k] != reference[k]]
    assert diffs == [], {k: (resumed[k], reference[k]) for k in diffs[:3]}
    # The resumed run knows it created everything the killed run created.
    created = json.loads(Path(out["created_manifest"]).read_text())["entries"]
    ref_created = json.loads(Path(ref["created_manifest"]).read_text())["entries"]
    assert sorted((e["kind"], e["namespace"], e["name"]) for e in created) == \
        sorted((e["kind"], e["namespace"], e["name"]) for e in ref_created)
    assert out["created"] == ref["created"] > 80
