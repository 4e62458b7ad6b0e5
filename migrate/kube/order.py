"""The order objects are applied in (reference/replay.md, "Suggested order"), as numbered phases.

Objects inside one phase do not depend on each other and are applied concurrently; phases run one after
another. CRDs come first (and are waited for); admission webhooks and APIServices come last, because a
webhook whose service is not ready yet blocks every write it intercepts (velero #4524).
"""

from __future__ import annotations

from collections.abc import Iterable

from migrate.kube.objects import Key, Obj, key_of

CRDS, NAMESPACES, CLUSTER, CONFIG, CLAIMS, SERVICES, WORKLOADS, NETWORKING, CUSTOM, WEBHOOKS = range(10)
PHASE_NAMES = ("crds", "namespaces", "cluster", "config", "claims", "services", "workloads", "networking",
               "custom", "webhooks")

_BY_KIND: dict[tuple[str, str], int] = {
    ("apiextensions.k8s.io", "CustomResourceDefinition"): CRDS,
    ("", "Namespace"): NAMESPACES,
    ("rbac.authorization.k8s.io", "Role"): CONFIG,
    ("rbac.authorization.k8s.io", "RoleBinding"): CONFIG,
    ("", "ServiceAccount"): CONFIG,
    ("", "ConfigMap"): CONFIG,
    ("", "Secret"): CONFIG,
    ("", "ResourceQuota"): CONFIG,
    ("", "LimitRange"): CONFIG,
    ("", "PersistentVolumeClaim"): CLAIMS,
    ("", "Service"): SERVICES,
    ("", "Endpoints"): SERVICES,
    ("discovery.k8s.io", "EndpointSlice"): SERVICES,
    ("", "Pod"): WORKLOADS,
    ("", "ReplicationController"): WORKLOADS,
    ("apps", "ReplicaSet"): WORKLOADS,
    ("apps", "Deployment"): WORKLOADS,
    ("apps", "StatefulSet"): WORKLOADS,
    ("apps", "DaemonSet"): WORKLOADS,
    ("batch", "Job"): WORKLOADS,
    ("batch", "CronJob"): WORKLOADS,
    ("networking.k8s.io", "Ingress"): NETWORKING,
    ("networking.k8s.io", "NetworkPolicy"): NETWORKING,
    ("policy", "PodDisruptionBudget"): NETWORKING,
    ("autoscaling", "HorizontalPodAutoscaler"): NETWORKING,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): WEBHOOKS,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): WEBHOOKS,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): WEBHOOKS,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): WEBHOOKS,
    ("apiregistration.k8s.io", "APIService"): WEBHOOKS,
}


def is_builtin_group(group: str) -> bool:
    """Groups served by Kubernetes itself; everything else is a custom resource (CRD or aggregated API)."""
    return group == "" or group.endswith(".k8s.io") or "." not in group


def phase_of(key: Key) -> int:
    hit = _BY_KIND.get((key.group, key.kind))
    if hit is not None:
        return hit
    if not is_builtin_group(key.group):
        return CUSTOM
    # Other built-ins: cluster-scoped ones are platform settings, namespaced ones go with the workloads' extras.
    return CLUSTER if not key.namespace else NETWORKING


def sort_key(key: Key) -> tuple[int, str, str, str, str]:
    return (phase_of(key), key.kind, key.group, key.namespace, key.name)


def ordered(objs: Iterable[Obj]) -> list[Obj]:
    """Objects in apply order; deterministic inside a phase, so two runs write the same review."""
    return sorted(objs, key=lambda o: sort_key(key_of(o)))


def phases(objs: Iterable[Obj]) -> list[tuple[int, list[Obj]]]:
    """[(phase, objects)] in apply order, empty phases left out."""
    out: dict[int, list[Obj]] = {}
    for o in ordered(objs):
        out.setdefault(phase_of(key_of(o)), []).append(o)
    return sorted(out.items())
