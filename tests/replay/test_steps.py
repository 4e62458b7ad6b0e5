"""The engine's view: replay-workloads and wait-workloads-ready through the StepKind protocol."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from migrate.errors import StepFailed
from migrate.kube.apply import Result
from migrate.kube.client import KubeClient
from migrate.steps.replay import ReplayWorkloadsStep, WaitWorkloadsReadyStep, kubeconfig_of
from replay.engine import context, merged_kubeconfig, step, write_config
from replay.kit import SAMPLE_TRANSFORMS, Cluster, fixture_docs, sample_workloads

FAST = {"qps": 1000, "concurrency": 8, "ready_timeout": "20s"}


@pytest.fixture
def kubeconfig(old: Cluster, new: Cluster, tmp_path: Path) -> Path:
    return merged_kubeconfig([old.kubeconfig, new.kubeconfig], tmp_path / "both.kubeconfig")


def seed(old: Cluster) -> None:
    old.load(sample_workloads())
    old.load(fixture_docs("ingress-nginx-cloud.yaml"))
    old.settle()


def test_kubeconfig_lookup_missing(tmp_path: Path) -> None:
    ctx = context(write_config(tmp_path, {}), tmp_path / "w", tmp_path / "none")
    ctx.outputs.clear()
    with pytest.raises(StepFailed, match="write-kubeconfig step has not run"):
        kubeconfig_of(ctx)


def test_replay_then_wait_then_rollback_twice(old: Cluster, new: Cluster, kubeconfig: Path, tmp_path: Path) -> None:
    seed(old)
    log: list[str] = []
    ctx = context(write_config(tmp_path, {"transforms": SAMPLE_TRANSFORMS, **FAST}), tmp_path / "work", kubeconfig,
                  log)
    replay_kind, wait_kind = ReplayWorkloadsStep(), WaitWorkloadsReadyStep()
    facts = replay_kind.facts(ctx)
    assert facts["objects"] > 40 and len(facts["old_inventory"]) == 64
    assert replay_kind.is_done(step("replay-workloads"), ctx) is None
    out = replay_kind.apply(step("replay-workloads"), ctx)
    assert out["parity"] is True and out["results"]["failed"] == 0
    assert out["created"] == out["results"]["created"]
    created = Path(out["created_manifest"])
    assert stat.S_IMODE(created.stat().st_mode) == 0o600
    assert len(json.dumps(out)) < 2000  # the journal gets a summary, the file gets the list
    ctx.outputs["06-replay-workloads"] = out

    w = step("wait-workloads-ready", timeout_s=20)
    ready = wait_kind.apply(w, ctx)
    assert ready["ready"] >= 10
    assert wait_kind.is_done(w, ctx) == {"ready": ready["ready"], "waited_s": 0.0}

    again = replay_kind.apply(step("replay-workloads"), ctx)
    assert again["results"]["created"] == 0 and again["results"]["updated"] == 0
    assert again["created"] == out["created"]  # still knows what the first run created

    replay_kind.rollback(step("replay-workloads"), ctx, out)
    assert not new.exists("v1", "Namespace", "shop") or \
        new.get("v1", "Namespace", "shop")["metadata"].get("deletionTimestamp")
    assert not new.exists("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "shop-policy")
    assert new.exists("storage.k8s.io/v1", "StorageClass", "standard")  # was there before: not ours to delete
    replay_kind.rollback(step("replay-workloads"), ctx, out)  # safe twice
    assert any("replay undo" in line for line in log)


def test_replay_step_fails_with_per_object_reasons(old: Cluster, new: Cluster, kubeconfig: Path,
                                                   tmp_path: Path) -> None:
    seed(old)
    bad = [*SAMPLE_TRANSFORMS, {"name": "bad-label", "match": {"kind": "Secret"}, "set_labels": {"x": "-bad-"}}]
    ctx = context(write_config(tmp_path, {"transforms": bad, **FAST}), tmp_path / "work", kubeconfig)
    kind = ReplayWorkloadsStep()
    with pytest.raises(StepFailed) as e:
        kind.apply(step("replay-workloads"), ctx)
    text = str(e.value)
    assert "1 object(s) failed" in text and "Secret shop/web-db" in text and "'bad-label'" in text
    assert "traffic has not been touched" in text
    report = json.loads((tmp_path / "work/replay/report.json").read_text())
    assert report["failures"][0]["object"] == "Secret shop/web-db"
    # Undo still works after a failed replay: the record was written.
    kind.rollback(step("replay-workloads"), ctx, {})
    assert not new.exists("apps/v1", "Deployment", "web", "shop") or \
        new.get("apps/v1", "Deployment", "web", "shop")["metadata"].get("deletionTimestamp")


def test_wait_step_names_what_is_not_ready(old: Cluster, new: Cluster, kubeconfig: Path, tmp_path: Path) -> None:
    seed(old)
    new.server.faults.never_ready("deployments", "shop", "cart")
    new.server.faults.failed_rollout("statefulsets", "data", "db")
    ctx = context(write_config(tmp_path, {"transforms": SAMPLE_TRANSFORMS, **FAST, "ready_timeout": "1s"}),
                  tmp_path / "work", kubeconfig)
    ctx.outputs["06-replay-workloads"] = ReplayWorkloadsStep().apply(step("replay-workloads"), ctx)
    kind = WaitWorkloadsReadyStep()
    w = step("wait-workloads-ready", timeout_s=1)
    assert kind.is_done(w, ctx) is None
    with pytest.raises(StepFailed) as e:
        kind.apply(w, ctx)
    text = str(e.value)
    assert "Deployment.apps shop/cart: not ready after 1s: 0 of 2 updated replicas are available" in text
    assert "StatefulSet.apps data/db" in text
    assert "Deployment.apps shop/web" not in text


def test_rollback_after_kill_before_record(old: Cluster, new: Cluster, kubeconfig: Path, tmp_path: Path) -> None:
    """No created.json (killed before the end): undo recomputes it from the baseline."""
    seed(old)
    ctx = context(write_config(tmp_path, {**FAST}), tmp_path / "work", kubeconfig)
    kind = ReplayWorkloadsStep()
    kind.apply(step("replay-workloads"), ctx)
    (tmp_path / "work/replay/created.json").unlink()
    kind.rollback(step("replay-workloads"), ctx, {})
    with KubeClient.from_kubeconfig(str(kubeconfig), new.name, qps=None) as k:
        left = [o["metadata"]["name"] for o in k.list_pages("/apis/apps/v1/deployments")
                if not o["metadata"].get("deletionTimestamp")]
    assert left == []


def test_rollback_after_a_failed_then_interrupted_attempt(old: Cluster, new: Cluster, kubeconfig: Path,
                                                          tmp_path: Path) -> None:
    """Attempt 1 fails and writes its record; attempt 2 creates more and dies: undo must not trust record 1."""
    seed(old)
    bad = [*SAMPLE_TRANSFORMS, {"name": "bad-label", "match": {"kind": "Secret"}, "set_labels": {"x": "-bad-"}}]
    kind = ReplayWorkloadsStep()
    with pytest.raises(StepFailed):
        kind.apply(step("replay-workloads"), context(write_config(tmp_path, {"transforms": bad, **FAST}),
                                                     tmp_path / "work", kubeconfig))
    assert (tmp_path / "work/replay/created.json").exists()
    old.load([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": "shop"},
               "data": {"k": "v"}}])

    class Killed(Exception):
        pass

    def die_after_late(r: Result) -> None:
        if r.key.name == "late":
            raise Killed

    kind.on_result = die_after_late
    ctx = context(write_config(tmp_path, {"transforms": SAMPLE_TRANSFORMS, **FAST}), tmp_path / "work", kubeconfig)
    with pytest.raises(Killed):
        kind.apply(step("replay-workloads"), ctx)
    assert new.exists("v1", "ConfigMap", "late", "shop")
    kind.rollback(step("replay-workloads"), ctx, {})
    assert not new.exists("v1", "ConfigMap", "late", "shop") or \
        new.get("v1", "ConfigMap", "late", "shop")["metadata"].get("deletionTimestamp")


def test_facts_follow_content_not_status(old: Cluster, new: Cluster, kubeconfig: Path, tmp_path: Path) -> None:
    seed(old)
    ctx = context(write_config(tmp_path, {**FAST}), tmp_path / "work", kubeconfig)
    kind = ReplayWorkloadsStep()
    first = kind.facts(ctx)
    with KubeClient.from_kubeconfig(str(kubeconfig), old.name, qps=None) as k:
        # A controller's status write bumps resourceVersion but is not replayed: same fingerprint.
        k.request("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/status",
                  body={"status": {"observedGeneration": 1, "replicas": 3}},
                  content_type="application/merge-patch+json")
        assert kind.facts(ctx) == first
        k.request("PATCH", "/api/v1/namespaces/shop/configmaps/web-config", body={"data": {"MODE": "debug"}},
                  content_type="application/merge-patch+json")
    assert kind.facts(ctx)["old_inventory"] != first["old_inventory"]
