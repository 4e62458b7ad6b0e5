"""What is never copied (with its reason), and the configuration's include/exclude lists."""

from __future__ import annotations

from typing import Any

import pytest

from migrate.config import Replay
from migrate.kube.export import classify, label_matches, select_reason, skip_reason


def o(api_version: str, kind: str, name: str = "x", namespace: str | None = "app", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **extra.pop("meta", {})}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **extra}


@pytest.mark.parametrize(("obj", "why"), [
    (o("v1", "Pod", meta={"ownerReferences": [{"kind": "ReplicaSet", "name": "web-1"}]}), "owned by ReplicaSet/web-1"),
    (o("v1", "Node", "n1", None), "nodes"),
    (o("v1", "Event"), "events"),
    (o("events.k8s.io/v1", "Event"), "events"),
    (o("v1", "Secret", "sa-token-x", type="kubernetes.io/service-account-token"), "token"),
    (o("v1", "ConfigMap", "kube-root-ca.crt"), "every namespace"),
    (o("v1", "ServiceAccount", "default"), "every namespace"),
    (o("v1", "ConfigMap", "coredns", "kube-system"), "control plane or provider creates"),
    (o("v1", "ConfigMap", "aws-auth", "kube-system"), "control plane or provider creates"),
    (o("v1", "ConfigMap", "cluster-info", "kube-public"), "system namespace"),
    (o("coordination.k8s.io/v1", "Lease", "n1", "kube-node-lease"), "leases"),
    (o("v1", "Namespace", "kube-system", None), "exists on every cluster"),
    (o("apps/v1", "DaemonSet", "aws-node", "kube-system", meta={"labels": {"eks.amazonaws.com/component": "x"}}),
     "EKS component"),
    (o("apps/v1", "Deployment", "metrics-server", "kube-system",
       meta={"labels": {"addonmanager.kubernetes.io/mode": "Reconcile"}}), "addon manager"),
    (o("v1", "ServiceAccount", "replicaset-controller", "kube-system"), "control plane or provider creates"),
    (o("v1", "Secret", "bootstrap-token-abcdef", "kube-system", type="bootstrap.kubernetes.io/token"),
     "bootstrap token"),
    (o("v1", "Endpoints", "kube-scheduler", "kube-system",
       meta={"annotations": {"control-plane.alpha.kubernetes.io/leader": "{}"}}), "leader-election"),
    (o("rbac.authorization.k8s.io/v1", "ClusterRole", "eks:node-manager", None), "built-in RBAC"),
    (o("rbac.authorization.k8s.io/v1", "ClusterRole", "system:coredns", None), "built-in RBAC"),
    (o("v1", "Pod", status={"phase": "Succeeded"}), "completed pod"),
    (o("v1", "Pod", meta={"annotations": {"kubernetes.io/config.mirror": "x"}}), "mirror pod"),
    (o("batch/v1", "Job", status={"conditions": [{"type": "Complete", "status": "True"}]}), "not idempotent"),
    (o("batch/v1", "Job", status={"conditions": [{"type": "Failed", "status": "True"}]}), "Job already ran"),
    (o("rbac.authorization.k8s.io/v1", "ClusterRole", "system:node", None,
       meta={"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}), "built-in RBAC"),
    (o("v1", "PersistentVolume", "pvc-1", None, meta={"annotations": {"pv.kubernetes.io/provisioned-by": "ebs"}},
       spec={"claimRef": {"name": "c"}}), "dynamically provisioned"),
    (o("apiregistration.k8s.io/v1", "APIService", "v1.apps", None,
       meta={"labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}}), "automatically"),
])
def test_skip_reasons(obj: dict[str, Any], why: str) -> None:
    reason = skip_reason(obj)
    assert reason is not None and why in reason


@pytest.mark.parametrize("obj", [
    o("v1", "ConfigMap"), o("apps/v1", "Deployment"), o("v1", "Secret", type="Opaque"),
    o("batch/v1", "Job", status={"active": 1}), o("v1", "Pod", status={"phase": "Running"}),
    o("v1", "PersistentVolume", "nfs", None, spec={"nfs": {}}),
    # User objects with control-plane-looking names or places (metrics-server, kube-prometheus, add-ons).
    o("rbac.authorization.k8s.io/v1", "ClusterRole", "system:aggregated-metrics-reader", None),
    o("rbac.authorization.k8s.io/v1", "ClusterRole", "system:metrics-server", None),
    o("rbac.authorization.k8s.io/v1", "Role", "prometheus-k8s", "kube-system"),
    o("rbac.authorization.k8s.io/v1", "RoleBinding", "resource-metrics-auth-reader", "kube-system"),
    o("apps/v1", "Deployment", "metrics-server", "kube-system"),
    o("apps/v1", "Deployment", "cluster-autoscaler", "kube-system"),
    o("v1", "ServiceAccount", "aws-load-balancer-controller", "kube-system"),
    o("v1", "Secret", "sh.helm.release.v1.external-dns.v1", "kube-system", type="helm.sh/release.v1"),
])
def test_kept(obj: dict[str, Any]) -> None:
    assert skip_reason(obj) is None


def test_system_namespaces_when_asked() -> None:
    obj = o("v1", "ConfigMap", "coredns", "kube-system")
    assert skip_reason(obj, include_system_namespaces=True) is None
    assert classify(obj, Replay(include_system_namespaces=True)) is None


def test_namespace_include_exclude() -> None:
    cfg = Replay.model_validate({"namespaces": {"include": ["shop*", "data"], "exclude": ["shop-tmp"]}})
    assert select_reason(o("v1", "ConfigMap", namespace="shop"), cfg) is None
    assert "not in the include list" in str(select_reason(o("v1", "ConfigMap", namespace="ops"), cfg))
    assert "shop-tmp" in str(select_reason(o("v1", "ConfigMap", namespace="shop-tmp"), cfg))
    assert select_reason(o("v1", "Namespace", "data", None), cfg) is None
    assert select_reason(o("v1", "Namespace", "ops", None), cfg) is not None
    # Cluster-scoped objects are not in a namespace: namespace lists do not drop CRDs or ClusterRoles.
    assert select_reason(o("rbac.authorization.k8s.io/v1", "ClusterRole", "r", None), cfg) is None


def test_kind_include_exclude() -> None:
    cfg = Replay.model_validate({"kinds": {"exclude": ["secrets", "Widget.example.com"]}})
    assert select_reason(o("v1", "Secret"), cfg, "secrets") is not None
    assert select_reason(o("example.com/v1", "Widget"), cfg, "widgets") is not None
    assert select_reason(o("v1", "ConfigMap"), cfg, "configmaps") is None
    only = Replay.model_validate({"kinds": {"include": ["deployments.apps", "Service"]}})
    assert select_reason(o("apps/v1", "Deployment"), only, "deployments") is None
    assert select_reason(o("v1", "Service"), only, "services") is None
    assert select_reason(o("v1", "ConfigMap"), only, "configmaps") is not None


def test_labels_include_exclude() -> None:
    cfg = Replay.model_validate({"labels": {"include": ["team=shop", "tier"], "exclude": ["migrate=skip"]}})
    shop = o("v1", "ConfigMap", meta={"labels": {"team": "shop"}})
    skip = o("v1", "ConfigMap", meta={"labels": {"team": "shop", "migrate": "skip"}})
    none = o("v1", "ConfigMap")
    assert select_reason(shop, cfg) is None
    assert "excluded by 'migrate=skip'" in str(select_reason(skip, cfg))
    assert select_reason(none, cfg) is not None


def test_label_selector_terms() -> None:
    lbls = {"app": "web", "tier": "front"}
    assert label_matches("app=web", lbls) and label_matches("app==web,tier", lbls)
    assert label_matches("app!=db", lbls) and label_matches("!canary", lbls)
    assert not label_matches("!tier", lbls) and not label_matches("app=db", lbls)
    with pytest.raises(ValueError):
        label_matches("app in (a,b)", lbls)
