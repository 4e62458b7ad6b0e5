"""Simulated controllers, CRDs and fault injection."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException
from kubernetes.dynamic import DynamicClient

from migrate.sandbox.kubeapi import FAULT_ANNOTATION, KubeAPIServer

from .conftest import Kubectl, deployment

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size",
                                                                    "statusReplicasPath": ".status.size"}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "required": ["size"], "properties": {
                                   "size": {"type": "integer", "minimum": 1},
                                   "color": {"type": "string", "enum": ["red", "blue"]}}},
                               "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}


def _wait(pred: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_workloads_become_ready(server: KubeAPIServer, dyn: DynamicClient, namespace: str) -> None:
    tmpl = deployment("w")["spec"]["template"]
    sel = {"matchLabels": {"app": "w"}}
    objs = [
        ("apps/v1", "StatefulSet", {"replicas": 2, "serviceName": "w", "selector": sel, "template": tmpl}),
        ("apps/v1", "DaemonSet", {"selector": sel, "template": tmpl}),
        ("batch/v1", "Job", {"template": {"spec": {"restartPolicy": "Never",
                                                   "containers": [{"name": "c", "image": "busybox:1"}]}}}),
        ("v1", "Service", {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "w"}}),
        ("v1", "PersistentVolumeClaim", {"accessModes": ["ReadWriteOnce"],
                                         "resources": {"requests": {"storage": "1Gi"}}}),
    ]
    for api_version, kind, spec in objs:
        dyn.resources.get(api_version=api_version, kind=kind).create(
            body={"apiVersion": api_version, "kind": kind, "metadata": {"name": "w"}, "spec": spec},
            namespace=namespace)
    assert server.wait_idle(5)

    def get(api_version: str, kind: str) -> dict[str, Any]:
        return dict(dyn.resources.get(api_version=api_version, kind=kind).get(name="w", namespace=namespace)
                    .to_dict())

    sts = get("apps/v1", "StatefulSet")["status"]
    assert sts["readyReplicas"] == 2 and sts["observedGeneration"] == 1
    assert sts["currentRevision"] == sts["updateRevision"]
    ds = get("apps/v1", "DaemonSet")["status"]
    assert ds["numberAvailable"] == ds["desiredNumberScheduled"] == ds["updatedNumberScheduled"] >= 1
    job = get("batch/v1", "Job")
    assert [c["type"] for c in job["status"]["conditions"]] == ["Complete"]
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "w"  # the Job controller's labels
    svc = get("v1", "Service")
    assert svc["status"]["loadBalancer"]["ingress"][0]["hostname"].endswith(".elb.sandbox.local")
    assert svc["spec"]["ports"][0]["nodePort"] >= 30000
    pvc = get("v1", "PersistentVolumeClaim")
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"].startswith("pvc-")


def test_controller_delay_is_honoured(dyn: DynamicClient) -> None:
    with KubeAPIServer(controller_delay=0.6) as srv:
        cfg = kubernetes.client.Configuration()
        cfg.host = srv.url
        apps = kubernetes.client.AppsV1Api(kubernetes.client.ApiClient(cfg))
        apps.create_namespaced_deployment("default", deployment("slow"))
        time.sleep(0.2)
        assert not apps.read_namespaced_deployment("slow", "default").status.ready_replicas
        assert srv.wait_idle(5)
        assert apps.read_namespaced_deployment("slow", "default").status.ready_replicas == 2


def test_crd_established_discoverable_and_validated(server: KubeAPIServer, dyn: DynamicClient,
                                                    kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("apply", "-f", "-", input=json.dumps(WIDGET_CRD))
    kubectl.run("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s")
    with urllib.request.urlopen(server.url + "/apis/example.com/v1") as r:
        res = json.load(r)["resources"]
    assert res[0]["name"] == "widgets" and res[0]["shortNames"] == ["wd"]
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
              "spec": {"size": 2, "color": "red"}}
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(widget))
    got = kubectl.json("get", "wd", "w1", "-n", namespace)
    assert got["spec"] == {"size": 2, "color": "red"}
    kubectl.run("scale", "-n", namespace, "widget/w1", "--replicas=5")
    assert kubectl.json("get", "widget", "w1", "-n", namespace)["spec"]["size"] == 5
    bad = {**widget, "metadata": {"name": "w2"}, "spec": {"size": 0, "color": "green"}}
    p = kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert p.returncode == 1
    assert 'The Widget "w2" is invalid' in p.stderr and "spec.size" in p.stderr and "spec.color" in p.stderr
    # Strategic merge patch is refused for custom resources, as on a real server.
    with pytest.raises(ApiException) as e:
        dyn.resources.get(api_version="example.com/v1", kind="Widget").patch(
            name="w1", namespace=namespace, body={"spec": {"size": 3}},
            content_type="application/strategic-merge-patch+json")
    assert e.value.status == 415
    kubectl.run("delete", "crd", "widgets.example.com")
    assert server.api.registry.get("example.com", "v1", "widgets") is None


def test_never_ready_and_failed_rollout(server: KubeAPIServer, api_client: kubernetes.client.ApiClient,
                                        kubectl: Kubectl, namespace: str) -> None:
    apps = kubernetes.client.AppsV1Api(api_client)
    server.faults.never_ready("deployments", namespace, "stuck")
    apps.create_namespaced_deployment(namespace, deployment("stuck"))
    failing = deployment("broken")
    failing["metadata"]["annotations"] = {FAULT_ANNOTATION: "failed-rollout"}
    apps.create_namespaced_deployment(namespace, failing)
    assert server.wait_idle(5)
    st = apps.read_namespaced_deployment("stuck", namespace).status
    assert not st.ready_replicas and st.unavailable_replicas == 2
    p = kubectl.run("rollout", "status", "-n", namespace, "deploy/stuck", "--timeout=1s", check=False)
    assert p.returncode == 1 and "timed out waiting" in p.stderr
    p = kubectl.run("rollout", "status", "-n", namespace, "deploy/broken", "--timeout=5s", check=False)
    assert p.returncode == 1 and 'deployment "broken" exceeded its progress deadline' in p.stderr
    # Clearing the fault lets the controllers finish the rollout without anyone touching the object.
    server.faults.clear()
    assert server.wait_idle(5)
    assert apps.read_namespaced_deployment("stuck", namespace).status.ready_replicas == 2
    kubectl.run("rollout", "status", "-n", namespace, "deploy/stuck", "--timeout=5s")


def test_api_errors_for_n_requests(server: KubeAPIServer, api_client: kubernetes.client.ApiClient,
                                   namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    server.faults.api_errors(503, count=2, resource="configmaps", namespace=namespace)
    for _ in range(2):
        with pytest.raises(ApiException) as e:
            core.list_namespaced_config_map(namespace)
        assert e.value.status == 503
        assert json.loads(e.value.body)["reason"] == "ServiceUnavailable"
    core.list_namespaced_config_map(namespace)  # the third answers normally
    server.faults.api_errors(429, count=1, verbs=["create"])
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    assert e.value.status == 429 and e.value.headers["Retry-After"] == "1"


def test_faults_over_http_control_endpoint(server: KubeAPIServer, api_client: kubernetes.client.ApiClient,
                                           namespace: str) -> None:
    spec = {"api": [{"code": 500, "count": 1, "resource": "secrets"}]}
    req = urllib.request.Request(server.url + "/_sandbox/faults", data=json.dumps(spec).encode(), method="POST")
    with urllib.request.urlopen(req) as r:
        assert json.load(r)["api"][0]["code"] == 500
    with pytest.raises(ApiException) as e:
        kubernetes.client.CoreV1Api(api_client).list_namespaced_secret(namespace)
    assert e.value.status == 500
    with urllib.request.urlopen(urllib.request.Request(server.url + "/_sandbox/faults", method="DELETE")) as r:
        assert json.load(r)["api"] == []


def test_kubectl_retries_through_a_429(server: KubeAPIServer, kubectl: Kubectl, namespace: str) -> None:
    # client-go honours Retry-After on 429, as against a real server: one throttled answer is invisible.
    server.faults.api_errors(429, count=1, resource="configmaps", verbs=["list"])
    kubectl.run("get", "cm", "-n", namespace)
    assert server.faults.snapshot()["api"] == []


def test_deployment_revisions_for_rollout_history_and_undo(server: KubeAPIServer,
                                                          api_client: kubernetes.client.ApiClient,
                                                          kubectl: Kubectl, namespace: str) -> None:
    apps = kubernetes.client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("rev", image="nginx:1.25"))
    assert server.wait_idle(5)
    kubectl.run("set", "image", "-n", namespace, "deploy/rev", "app=nginx:1.26")
    assert server.wait_idle(5)
    dep = apps.read_namespaced_deployment("rev", namespace)
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    history = kubectl.run("rollout", "history", "-n", namespace, "deploy/rev").stdout
    assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["1", "2"]
    kubectl.run("rollout", "undo", "-n", namespace, "deploy/rev")
    assert server.wait_idle(5)
    dep = apps.read_namespaced_deployment("rev", namespace)
    assert dep.spec.template.spec.containers[0].image == "nginx:1.25"
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    kubectl.run("rollout", "status", "-n", namespace, "deploy/rev", "--timeout=5s")
