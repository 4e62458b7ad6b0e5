"""An operator bundle, installed as users install one, replayed with parity object by object.

The bundle is written here in the shape of kube-prometheus (v0.11): `setup/` holds the namespace and the CRDs,
the main directory the custom resources, an APIService for metrics.k8s.io backed by prometheus-adapter,
`system:`-named user RBAC, user RBAC in kube-system, `RoleList`/`RoleBindingList` files for the namespaces
Prometheus watches, a `ConfigMapList`, and an Alertmanager-style StatefulSet with volumeClaimTemplates.
It is applied with `kubectl apply --server-side`, validation on (no `--validate=false`). The old cluster also
holds what EKS puts there itself (its add-ons, the aws-auth ConfigMap, bootstrap RBAC), which must stay behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.kube.objects import key_of
from migrate.kube.sanitize import sanitize
from migrate.plan.builder import build_plan
from migrate.plan.render import render_markdown
from migrate.sandbox.aws import eks_core_addons
from migrate.steps.replay import ReplayWorkloadsStep
from replay.engine import context, merged_kubeconfig, step, write_config
from replay.kit import Cluster

Obj = dict[str, Any]
NS = "monitoring"


def _crd(kind: str, plural: str, printer: list[Obj] | None = None) -> Obj:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.monitoring.coreos.com",
                         "annotations": {"controller-gen.kubebuilder.io/version": "v0.8.0"}},
            "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                     "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                               "singular": kind.lower(), "categories": ["prometheus-operator"]},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "additionalPrinterColumns": printer or [],
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object",
                                       "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                      "metadata": {"type": "object"},
                                                      "spec": {"type": "object",
                                                               "x-kubernetes-preserve-unknown-fields": True}},
                                       "required": ["spec"]}}}]}}


def _labels(name: str) -> Obj:
    return {"app.kubernetes.io/component": name, "app.kubernetes.io/name": name, "app.kubernetes.io/part-of":
            "kube-prometheus", "app.kubernetes.io/version": "0.11.0"}


def setup_docs() -> list[Obj]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            _crd("ServiceMonitor", "servicemonitors"),
            _crd("PrometheusRule", "prometheusrules"),
            _crd("Alertmanager", "alertmanagers", [
                {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}])]


def manifest_docs() -> list[Obj]:
    adapter = _labels("prometheus-adapter")
    selector = {"app.kubernetes.io/component": "metrics-adapter", "app.kubernetes.io/name": "prometheus-adapter"}
    am_labels = {"app.kubernetes.io/name": "alertmanager", "alertmanager": "main"}
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "Alertmanager",
         "metadata": {"name": "main", "namespace": NS, "labels": _labels("alertmanager")},
         "spec": {"image": "quay.io/prometheus/alertmanager:v0.24.0", "replicas": 3, "version": "0.24.0"}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
         "metadata": {"name": "prometheus-adapter", "namespace": NS, "labels": adapter},
         "spec": {"endpoints": [{"port": "https", "scheme": "https", "interval": "30s"}],
                  "selector": {"matchLabels": selector}}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
         "metadata": {"name": "kube-prometheus-rules", "namespace": NS, "labels": _labels("prometheus")},
         "spec": {"groups": [{"name": "general.rules", "rules": [
             {"alert": "TargetDown", "expr": "100 * (count(up == 0) BY (job) / count(up) BY (job)) > 10",
              "for": "10m", "labels": {"severity": "warning"}}]}]}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": adapter},
         "spec": {"group": "metrics.k8s.io", "groupPriorityMinimum": 100, "insecureSkipTLSVerify": True,
                  "service": {"name": "prometheus-adapter", "namespace": NS}, "version": "v1beta1",
                  "versionPriority": 100}},
        {"apiVersion": rbac, "kind": "ClusterRole",
         "metadata": {"name": "system:aggregated-metrics-reader", "labels": {
             **adapter, "rbac.authorization.k8s.io/aggregate-to-admin": "true",
             "rbac.authorization.k8s.io/aggregate-to-edit": "true",
             "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
         "rules": [{"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": rbac, "kind": "RoleBinding",
         "metadata": {"name": "resource-metrics-auth-reader", "namespace": "kube-system", "labels": adapter},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "extension-apiserver-authentication-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "prometheus-adapter", "namespace": NS}]},
        {"apiVersion": rbac, "kind": "RoleList", "items": [
            {"apiVersion": rbac, "kind": "Role",
             "metadata": {"name": "prometheus-k8s", "namespace": ns, "labels": _labels("prometheus")},
             "rules": [{"apiGroups": [""], "resources": ["services", "endpoints", "pods"],
                        "verbs": ["get", "list", "watch"]}]} for ns in ("default", "kube-system", NS)]},
        {"apiVersion": rbac, "kind": "RoleBindingList", "items": [
            {"apiVersion": rbac, "kind": "RoleBinding",
             "metadata": {"name": "prometheus-k8s", "namespace": ns, "labels": _labels("prometheus")},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "prometheus-k8s"},
             "subjects": [{"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": NS}]}
            for ns in ("default", "kube-system", NS)]},
        {"apiVersion": "v1", "kind": "ConfigMapList", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"grafana-dashboard-{d}", "namespace": NS,
                                                                   "labels": _labels("grafana")},
             "data": {f"{d}.json": json.dumps({"title": d, "panels": []})}} for d in ("nodes", "pods")]},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "prometheus-adapter", "namespace": NS, "labels": adapter}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "prometheus-k8s", "namespace": NS, "labels": _labels("prometheus")}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "prometheus-adapter", "namespace": NS, "labels": adapter},
         "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}], "selector": selector}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "prometheus-adapter", "namespace": NS, "labels": adapter},
         "spec": {"replicas": 2, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": {**adapter, **selector}},
                               "spec": {"serviceAccountName": "prometheus-adapter", "containers": [{
                                   "name": "prometheus-adapter",
                                   "image": "k8s.gcr.io/prometheus-adapter/prometheus-adapter:v0.9.1",
                                   "ports": [{"containerPort": 6443}]}]}}}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "alertmanager-main", "namespace": NS, "labels": _labels("alertmanager")},
         "spec": {"serviceName": "alertmanager-operated", "replicas": 3, "selector": {"matchLabels": am_labels},
                  "template": {"metadata": {"labels": am_labels}, "spec": {"containers": [{
                      "name": "alertmanager", "image": "quay.io/prometheus/alertmanager:v0.24.0",
                      "volumeMounts": [{"name": "alertmanager-main-db", "mountPath": "/alertmanager"}]}]}},
                  "volumeClaimTemplates": [{"metadata": {"name": "alertmanager-main-db"},
                                            "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": "1Gi"}}}}]}},
    ]


def eks_own_objects() -> list[Obj]:
    """What EKS itself puts in a new cluster: its add-ons, the aws-auth map, bootstrap RBAC."""
    return [*eks_core_addons(),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aws-auth", "namespace": "kube-system"},
             "data": {"mapRoles": "- rolearn: arn:aws:iam::123456789012:role/nodes\n"
                                  "  username: system:node:{{EC2PrivateDNSName}}\n"
                                  "  groups: [system:bootstrappers, system:nodes]\n"}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "system:node", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
             "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "eks:node-manager"},
             "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}]


def _items(docs: list[Obj]) -> list[Obj]:
    return [i for d in docs for i in (d["items"] if d["kind"].endswith("List") else [d])]


def _kubectl(cluster: Cluster, home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is required (CI installs one)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    r = subprocess.run([binary, "--kubeconfig", str(cluster.kubeconfig), "--context", cluster.name,
                        "--cache-dir", str(home / "cache"), *args], input=input, capture_output=True, text=True,
                       env=env, timeout=120, check=False)
    assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
    return r


def _write(directory: Path, docs: list[Obj]) -> Path:
    directory.mkdir(parents=True)
    for i, d in enumerate(docs):
        (directory / f"{i:02d}-{d['kind'].lower()}.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    return directory


def _comparable(obj: Obj) -> Obj:
    clean, _ = sanitize(obj)
    body = {k: v for k, v in clean.items() if k not in ("metadata", "status")}
    meta = clean.get("metadata") or {}
    return {**body, "labels": meta.get("labels") or {}}


def test_operator_bundle_replays_with_parity(old: Cluster, new: Cluster, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    old.load(eks_own_objects())
    setup, manifests = _write(tmp_path / "bundle" / "setup", setup_docs()), \
        _write(tmp_path / "bundle" / "manifests", manifest_docs())
    # As the kube-prometheus README says: setup first, wait for the CRDs, then the rest. Validation stays on.
    _kubectl(old, home, "apply", "--server-side", "-f", str(setup))
    _kubectl(old, home, "wait", "--for", "condition=Established", "--all", "CustomResourceDefinition")
    _kubectl(old, home, "apply", "--server-side", "-f", str(manifests))
    old.settle()
    bundle = _items(manifest_docs()) + _items(setup_docs())

    kubeconfig = merged_kubeconfig([old.kubeconfig, new.kubeconfig], tmp_path / "both.kubeconfig")
    config = write_config(tmp_path, {"qps": 1000, "concurrency": 8, "ready_timeout": "20s"})
    ctx = context(config, tmp_path / "work", kubeconfig)
    kind = ReplayWorkloadsStep()

    # The plan's review: kube-system user RBAC is planned and listed; what stays behind is counted by reason.
    facts = kind.facts(ctx)
    assert {"RoleBinding.rbac.authorization.k8s.io kube-system/resource-metrics-auth-reader",
            "Role.rbac.authorization.k8s.io kube-system/prometheus-k8s",
            "RoleBinding.rbac.authorization.k8s.io kube-system/prometheus-k8s"} <= set(facts["kube_system"]), \
        facts["kube_system"]
    reasons = facts["skipped_by_reason"]
    assert reasons.get("an EKS component; the new cluster runs its own") == 3  # coredns, kube-proxy, aws-node
    assert reasons.get("kube-system ConfigMap the new cluster's control plane or provider creates") == 1  # aws-auth
    assert reasons.get("built-in RBAC of the control plane") == 2
    assert reasons.get("registered automatically by the API server", 0) >= 10  # the Local APIServices
    plan = build_plan("dev", ctx.env, config_digest="x", facts={"replay-workloads": facts},
                      available={"replay-workloads"}, now="2026-12-02T00:00:00.000000Z", who="test")
    md = render_markdown(plan)
    assert "## Replay review" in md and "`Role.rbac.authorization.k8s.io kube-system/prometheus-k8s`" in md
    assert "| an EKS component; the new cluster runs its own | 3 |" in md

    out = kind.apply(step("replay-workloads"), ctx)
    assert out["results"]["failed"] == 0 and out["parity"] is True, out
    new.settle()

    # Parity, object by object: every object of the bundle is on the new cluster as it is on the old one.
    for obj in bundle:
        key = key_of(obj)
        ns = obj["metadata"].get("namespace")
        was = old.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], ns)
        now = new.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], ns)
        assert _comparable(now) == _comparable(was), key
    # The StatefulSet's claims exist on both sides, made by each cluster's controller, and bound.
    for c in (old, new):
        claims = c.resource("v1", "PersistentVolumeClaim").get(namespace=NS).to_dict()["items"]
        assert sorted(x["metadata"]["name"] for x in claims if x["metadata"]["name"].startswith("alertmanager")) == [
            f"alertmanager-main-db-alertmanager-main-{i}" for i in range(3)]
        assert all(x["status"]["phase"] == "Bound" for x in claims)
    # The APIService is there, and available once prometheus-adapter's pods are.
    apiservice = new.get("apiregistration.k8s.io/v1", "APIService", "v1beta1.metrics.k8s.io")
    assert {c["type"]: c["status"] for c in apiservice["status"]["conditions"]}["Available"] == "True"
    # What EKS made on the old cluster did not travel: the new cluster's control plane owns its own.
    assert not new.exists("v1", "ConfigMap", "aws-auth", "kube-system")
    assert not new.exists("apps/v1", "Deployment", "coredns", "kube-system")
    assert not new.exists("rbac.authorization.k8s.io/v1", "ClusterRole", "eks:node-manager")
    # kubectl on the new cluster lists the same custom resources, with their printer columns.
    line = _kubectl(new, home, "get", "alertmanagers", "-n", NS).stdout.splitlines()
    assert line[0].split() == ["NAME", "VERSION", "REPLICAS", "AGE"] and line[1].split()[:3] == ["main", "0.24.0", "3"]
