"""Apply order: CRDs first, namespaces, ..., custom resources, admission webhooks last."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from migrate.kube.objects import key_of
from migrate.kube.order import PHASE_NAMES, ordered, phase_of, phases


def obj(api_version: str, kind: str, name: str = "x", namespace: str | None = "app") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


MIXED = [
    obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", namespace=None),
    obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", namespace=None),
    obj("example.com/v1", "Widget"),
    obj("autoscaling/v2", "HorizontalPodAutoscaler"),
    obj("networking.k8s.io/v1", "Ingress"),
    obj("apps/v1", "Deployment"),
    obj("apps/v1", "StatefulSet"),
    obj("batch/v1", "CronJob"),
    obj("v1", "Service"),
    obj("v1", "PersistentVolumeClaim"),
    obj("v1", "Secret"),
    obj("v1", "ConfigMap"),
    obj("v1", "ServiceAccount"),
    obj("rbac.authorization.k8s.io/v1", "RoleBinding"),
    obj("rbac.authorization.k8s.io/v1", "ClusterRole", namespace=None),
    obj("storage.k8s.io/v1", "StorageClass", namespace=None),
    obj("v1", "Namespace", namespace=None),
    obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com", None),
    obj("apiregistration.k8s.io/v1", "APIService", "v1beta1.metrics.k8s.io", None),
]


def test_reference_order() -> None:
    names = [PHASE_NAMES[phase_of(key_of(o))] for o in ordered(MIXED)]
    assert names == sorted(names, key=PHASE_NAMES.index)
    kinds = [o["kind"] for o in ordered(MIXED)]
    assert kinds[0] == "CustomResourceDefinition"
    assert kinds[1] == "Namespace"
    assert set(kinds[-3:]) == {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService"}
    assert kinds.index("Widget") > kinds.index("HorizontalPodAutoscaler")  # custom resources after built-ins
    assert kinds.index("Service") < kinds.index("Deployment") < kinds.index("Ingress")  # velero #5068
    assert kinds.index("PersistentVolumeClaim") < kinds.index("StatefulSet")
    assert kinds.index("Secret") < kinds.index("Deployment")


def test_unknown_builtins() -> None:
    assert PHASE_NAMES[phase_of(key_of(obj("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", namespace=None)))] \
        == "cluster"
    assert PHASE_NAMES[phase_of(key_of(obj("coordination.k8s.io/v1", "Lease")))] == "networking"


def test_phases_group_and_skip_empty() -> None:
    p = phases([obj("v1", "Service", "b"), obj("v1", "Service", "a"), obj("v1", "ConfigMap")])
    assert [PHASE_NAMES[n] for n, _ in p] == ["config", "services"]
    assert [o["metadata"]["name"] for o in p[1][1]] == ["a", "b"]


@given(st.permutations(MIXED))
def test_order_does_not_depend_on_input_order(perm: list[dict[str, Any]]) -> None:
    assert ordered(perm) == ordered(MIXED)
