"""Readiness rules per kind (kubectl rollout status, kstatus, helm), on status objects as a server writes them."""

from __future__ import annotations

from typing import Any

from migrate.kube.ready import FAILED, PENDING, READY, evaluate, needs_wait


def o(api_version: str, kind: str, spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
      generation: int = 1, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "generation": generation, **meta},
            "spec": spec or {}, "status": status or {}}


def cond(t: str, s: str = "True", reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": t, "status": s, "reason": reason, "message": message}


def test_deployment() -> None:
    done = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    assert evaluate(o("apps/v1", "Deployment", {"replicas": 3}, done)).state == READY
    assert evaluate(o("apps/v1", "Deployment", {"replicas": 3}, {**done, "updatedReplicas": 2})).state == PENDING
    old_rs = {**done, "replicas": 4}
    assert "old replicas" in evaluate(o("apps/v1", "Deployment", {"replicas": 3}, old_rs)).reason
    assert evaluate(o("apps/v1", "Deployment", {"replicas": 3}, {**done, "availableReplicas": 1})).state == PENDING
    stale = o("apps/v1", "Deployment", {"replicas": 3}, done, generation=2)
    assert evaluate(stale).state == PENDING and "generation" in evaluate(stale).reason
    failed = {**done, "updatedReplicas": 1, "conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded",
                                                               "timed out")]}
    v = evaluate(o("apps/v1", "Deployment", {"replicas": 3}, failed))
    assert v.state == FAILED and "ProgressDeadlineExceeded" in v.reason
    assert evaluate(o("apps/v1", "Deployment", {"replicas": 3}, {})).state == PENDING


def test_statefulset() -> None:
    ok = {"observedGeneration": 1, "readyReplicas": 2, "currentRevision": "r1", "updateRevision": "r1"}
    assert evaluate(o("apps/v1", "StatefulSet", {"replicas": 2}, ok)).state == READY
    assert evaluate(o("apps/v1", "StatefulSet", {"replicas": 2}, {**ok, "readyReplicas": 1})).state == PENDING
    assert evaluate(o("apps/v1", "StatefulSet", {"replicas": 2}, {**ok, "updateRevision": "r2"})).state == PENDING
    part = {"replicas": 4, "updateStrategy": {"rollingUpdate": {"partition": 2}}}
    st = {**ok, "readyReplicas": 4, "updateRevision": "r2", "updatedReplicas": 2}
    assert evaluate(o("apps/v1", "StatefulSet", part, st)).state == READY
    assert evaluate(o("apps/v1", "StatefulSet", {"replicas": 2}, {})).state == PENDING  # observedGeneration 0


def test_daemonset() -> None:
    ok = {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}
    assert evaluate(o("apps/v1", "DaemonSet", {}, ok)).state == READY
    assert evaluate(o("apps/v1", "DaemonSet", {}, {**ok, "numberAvailable": 2})).state == PENDING


def test_job_pvc_service_crd_pod() -> None:
    assert evaluate(o("batch/v1", "Job", {}, {"conditions": [cond("Complete")]})).state == READY
    assert evaluate(o("batch/v1", "Job", {}, {"conditions": [cond("Failed", reason="BackoffLimitExceeded")]})).state \
        == FAILED
    assert evaluate(o("batch/v1", "Job", {}, {"active": 1})).state == PENDING
    assert evaluate(o("v1", "PersistentVolumeClaim", {}, {"phase": "Bound"})).state == READY
    assert evaluate(o("v1", "PersistentVolumeClaim", {}, {"phase": "Pending"})).state == PENDING
    lb = {"type": "LoadBalancer"}
    assert evaluate(o("v1", "Service", lb, {"loadBalancer": {}})).state == PENDING
    assert evaluate(o("v1", "Service", lb, {"loadBalancer": {"ingress": [{"hostname": "h"}]}})).state == READY
    assert evaluate(o("v1", "Service", {"type": "ClusterIP"})).state == READY
    crd = "apiextensions.k8s.io/v1"
    assert evaluate(o(crd, "CustomResourceDefinition", {}, {"conditions": [cond("Established")]})).state == READY
    assert evaluate(o(crd, "CustomResourceDefinition", {}, {})).state == PENDING
    assert evaluate(o("v1", "Pod", {}, {"phase": "Running", "conditions": [cond("Ready")]})).state == READY


def test_generic_kstatus_rules() -> None:
    assert evaluate(o("example.com/v1", "Widget", {}, {"conditions": [cond("Ready", "False", "Waiting")]})).state \
        == PENDING
    assert evaluate(o("example.com/v1", "Widget", {}, {"conditions": [cond("Ready")]})).state == READY
    assert evaluate(o("example.com/v1", "Widget", {}, {})).state == READY  # no conditions: exists is enough
    assert evaluate(o("example.com/v1", "Widget", {}, {"conditions": [cond("Stalled", message="bad")]})).state \
        == FAILED
    assert evaluate(o("example.com/v1", "Widget", {}, {"conditions": [cond("Reconciling")]})).state == PENDING
    gone = o("v1", "ConfigMap", deletionTimestamp="2024-01-01T00:00:00Z")
    assert evaluate(gone).reason == "Terminating"


def test_needs_wait() -> None:
    assert needs_wait(o("apps/v1", "Deployment"))
    assert needs_wait(o("v1", "Service", {"type": "LoadBalancer"}))
    assert not needs_wait(o("v1", "Service", {"type": "ClusterIP"}))
    assert not needs_wait(o("v1", "ConfigMap"))
    assert needs_wait(o("example.com/v1", "Widget"))
