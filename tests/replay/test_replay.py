"""End to end on two emulators: sample workloads + the public fixtures, replayed with transforms."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import yaml

from migrate.config import Replay
from migrate.kube.client import KubeClient
from migrate.kube.export import export
from migrate.kube.objects import key_of
from migrate.kube.ready import needs_wait, wait_ready
from migrate.kube.replay import build_plan, created_entries, live_uids, replay, undo, write_review
from replay.kit import NEW_NAME, NEW_ROLE, OLD_NAME, SAMPLE_TRANSFORMS, Cluster, fixture_docs, sample_workloads

NAMES = {"old": OLD_NAME, "new": NEW_NAME}


def seed(old: Cluster) -> None:
    old.load(sample_workloads())
    old.load([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "boutique"}}])
    old.load(fixture_docs("microservices-demo.yaml", "boutique"))
    old.load(fixture_docs("ingress-nginx-cloud.yaml"))
    old.settle()


def cfg(**kw: Any) -> Replay:
    return Replay.model_validate({"transforms": SAMPLE_TRANSFORMS, "concurrency": 8, **kw})


def targets(report: Any) -> list[tuple[str, str, str, str]]:
    return [(it.obj["apiVersion"], it.key.kind, it.key.namespace, it.key.name)
            for it in report.plan.items if needs_wait(it.obj)]


def test_replay_reaches_parity_and_ready_and_rerun_changes_nothing(old: Cluster, new: Cluster, kold: KubeClient,
                                                                    knew: KubeClient) -> None:
    seed(old)
    seen: list[str] = []
    report = replay(kold, knew, cfg(), NAMES, on_result=lambda r: seen.append(r.action), webhook_timeout=20)
    assert report.failures == [], [r.to_dict() for r in report.failures]
    assert report.parity is not None and report.parity.parity, report.parity.to_dict()
    assert report.parity.missing == [] and report.parity.drifted == []
    counts = report.by_action()
    assert counts["created"] >= 80 and counts["failed"] == 0
    assert len(seen) == len(report.results)  # the progress callback saw every object
    ready = wait_ready(knew, targets(report), timeout=20, poll=0.2)
    assert ready.ok, ready.to_dict()
    assert len(ready.ready) >= 25

    # Transforms landed where they should.
    web = new.get("apps/v1", "Deployment", "web", "shop")
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.green.example.com/shop/web:1.4.2"
    assert web["metadata"]["annotations"]["migrate.dev/origin"] == OLD_NAME
    assert web["spec"]["template"]["metadata"]["annotations"] == {"migrate.dev/replayed": "true"}
    sa = new.get("v1", "ServiceAccount", "web", "shop")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == NEW_ROLE
    cm = new.get("v1", "ConfigMap", "web-config", "shop")
    assert cm["data"]["CLUSTER"] == NEW_NAME and cm["data"]["LOG_GROUP"] == f"/aws/eks/{NEW_NAME}/shop"
    sts = new.get("apps/v1", "StatefulSet", "db", "data")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    ds = new.get("apps/v1", "DaemonSet", "log-agent", "ops")
    assert ds["spec"]["template"]["spec"]["containers"][0]["args"][0] == f"--cluster={NEW_NAME}"
    # Server-assigned fields came from the new cluster, not the old one.
    old_lb = old.get("v1", "Service", "web-lb", "shop")
    new_lb = new.get("v1", "Service", "web-lb", "shop")
    assert new_lb["status"]["loadBalancer"]["ingress"][0]["hostname"] != \
        old_lb["status"]["loadBalancer"]["ingress"][0]["hostname"]
    assert NEW_NAME in new_lb["status"]["loadBalancer"]["ingress"][0]["hostname"]
    # Completed Jobs and owned objects were left behind, each with a reason.
    reasons = {str(s.key): s.reason for s in report.plan.skipped}
    assert "not idempotent" in reasons["Job.batch ops/db-migrate-v1"]
    assert any(k.startswith("ReplicaSet.apps shop/web-") and "owned by Deployment/web" in v
               for k, v in reasons.items())
    assert not new.exists("batch/v1", "Job", "db-migrate-v1", "ops")
    # Webhooks went last, after their backends were ready.
    order = [r.key.kind for r in report.results]
    assert order[-1] == "ValidatingWebhookConfiguration"

    again = replay(kold, knew, cfg(), NAMES, webhook_timeout=20)
    assert again.by_action() == {"created": 0, "updated": 0, "unchanged": len(report.results), "failed": 0}
    assert again.ok


def test_dry_run_review_writes_exact_manifests_with_secrets_redacted(old: Cluster, new: Cluster, kold: KubeClient,
                                                                      knew: KubeClient, tmp_path: Path) -> None:
    seed(old)
    out = tmp_path / "plans" / "dev-20240101T000000"
    summary = write_review(old.kubeconfig, OLD_NAME, cfg(), NAMES, out)
    assert summary["counts"]["planned"] >= 80
    assert summary["per_kind"]["Deployment.apps"] == 16
    assert summary["transforms"]["registry"] >= 5
    assert summary["transformed_objects"]["ServiceAccount shop/web"] == ["irsa", "origin"]
    assert any("not idempotent" in s["reason"] for s in summary["skipped"])
    files = sorted((out / "manifests").rglob("*.yaml"))
    docs = {f: list(yaml.safe_load_all(f.read_text())) for f in files}
    assert sum(len(d) for d in docs.values()) == summary["counts"]["planned"]
    assert files[0].parent.parent.name == "00-crds"
    assert files[-1].parent.parent.name == "09-webhooks"
    for f, in_file in docs.items():  # one file per phase, namespace and kind
        assert {d["kind"] for d in in_file} == {f.stem.split(".")[0]}, f
        assert {d["metadata"].get("namespace", "_cluster") for d in in_file} == {f.parent.name}, f
    secret = next(d for d in docs[out / "manifests/03-config/shop/Secret.yaml"] if d["metadata"]["name"] == "web-db")
    assert secret["data"] == {"password": "<redacted>"}
    assert "c2VjcmV0" not in "".join(f.read_text() for f in files)
    md = (out / "summary.md").read_text()
    assert "| Deployment.apps | 16 |" in md and "Skipped" in md
    # Whole kinds left unread are in the review too, each with its reason.
    assert summary["skipped_kinds"]["Node"] == "nodes belong to the old cluster"
    assert summary["skipped_kinds"]["Event"] == "events are history, not configuration"
    assert "| Node | nodes belong to the old cluster |" in md
    assert json.loads((out / "summary.json").read_text())["counts"] == summary["counts"]
    assert stat.S_IMODE((out / "summary.json").stat().st_mode) == 0o600
    # The review is exactly what is applied: the same plan applied gives these objects.
    plan = build_plan(export(kold, cfg()), cfg(), NAMES)
    deployments = docs[out / "manifests/06-workloads/shop/Deployment.apps.yaml"]
    assert deployments == [it.obj for it in plan.items if it.key.kind == "Deployment" and it.key.namespace == "shop"]
    assert not new.exists("v1", "Namespace", "shop")  # a dry run changes nothing


def test_undo_deletes_only_what_the_replay_created(old: Cluster, new: Cluster, kold: KubeClient,
                                                   knew: KubeClient) -> None:
    seed(old)
    # The new cluster already has one of the objects (someone created it by hand): the replay adopts it.
    new.load([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": "shop"},
               "data": {"CLUSTER": NEW_NAME}},
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated", "namespace": "default"}}])
    plan = build_plan(export(kold, cfg()), cfg(), NAMES)
    baseline = live_uids(knew, plan.items)
    report = replay(plan, knew, cfg(), NAMES, webhook_timeout=20)
    assert report.ok
    entries = created_entries(plan.items, baseline, live_uids(knew, plan.items))
    keys = {(e["kind"], e["namespace"], e["name"]) for e in entries}
    assert ("ConfigMap", "shop", "web-config") not in keys and ("Namespace", "", "shop") not in keys
    assert ("Deployment", "shop", "web") in keys
    # A created object replaced by someone else since (new uid) is not ours any more.
    knew.request("DELETE", "/api/v1/namespaces/data/services/db")
    new.load([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "data"},
               "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}}])
    logged: list[str] = []
    stats = undo(knew, entries, log=logged.append)
    # Kept: the replaced Service, and the namespace `data` the replay created, because deleting it would
    # take that Service along.
    assert stats["kept"] == 2 and stats["deleted"] + stats["terminating"] == len(entries) - 2
    assert logged == ["replay undo: namespace data kept: it holds Service/db, which the replay did not create"]
    assert new.exists("v1", "ConfigMap", "web-config", "shop")
    assert new.exists("v1", "ConfigMap", "unrelated", "default")
    assert new.exists("v1", "Namespace", "shop")
    assert not new.exists("apps/v1", "Deployment", "web", "shop") or \
        new.get("apps/v1", "Deployment", "web", "shop")["metadata"].get("deletionTimestamp")
    assert not new.exists("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    assert not new.exists("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "shop-policy")
    assert not new.exists("apps/v1", "StatefulSet", "db", "data") or \
        new.get("apps/v1", "StatefulSet", "db", "data")["metadata"].get("deletionTimestamp")
    # Twice is harmless, and the other owner's Service outlives any namespace deletion.
    time.sleep(1.5)
    again = undo(knew, entries)
    assert again["deleted"] == 0 and again["kept"] == 2
    assert new.exists("v1", "Service", "db", "data") and new.exists("v1", "Namespace", "data")


def test_review_and_apply_agree_on_keys(old: Cluster, kold: KubeClient) -> None:
    seed(old)
    exported = export(kold, cfg())
    plan = build_plan(exported, cfg(), NAMES)
    keys = [str(it.key) for it in plan.items]
    assert len(keys) == len(set(keys))
    assert {key_of(o) for o in exported.objects} == {it.key for it in plan.items}
