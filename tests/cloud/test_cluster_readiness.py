"""clusters.api_missing against the sandbox's Kubernetes API emulator: what keeps a new cluster from being usable."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import pytest

from migrate.cloud.clusters import EKS_ADDON_WORKLOADS, GKE_CORE_WORKLOADS, api_missing, kube_client
from migrate.cloud.kubeconfig import ClusterAccess
from migrate.sandbox.kubeapi import KubeAPIServer

EKS_CORE = [(a, *EKS_ADDON_WORKLOADS[a]) for a in ("coredns", "kube-proxy")]


@pytest.fixture
def server() -> Iterator[KubeAPIServer]:
    srv = KubeAPIServer(version="1.31", controller_delay=0.05, cluster_name="green").start()
    try:
        yield srv
    finally:
        srv.stop()


def client_for(url: str) -> Any:
    return kube_client(ClusterAccess(context="green", server=url, ca_data=None, token_args=[], token_env={}), "t0k")


def set_ready(core: kubernetes.client.CoreV1Api, name: str, ready: bool) -> None:
    try:
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    except kubernetes.client.ApiException as e:
        assert e.status == 409
    core.patch_node_status(name, {"status": {"conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady" if ready else
         "KubeletNotReady", "message": "kubelet is posting ready status" if ready else "PLEG is not healthy"}]}})


def labels(name: str) -> dict[str, str]:
    return {"k8s-app": name}


def deployment(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels(name)},
                     "template": {"metadata": {"labels": labels(name)},
                                  "spec": {"containers": [{"name": name, "image": f"registry.k8s.io/{name}:1"}]}}}}


def daemonset(name: str) -> dict[str, Any]:
    d = deployment(name)
    del d["spec"]["replicas"]
    return {**d, "kind": "DaemonSet"}


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_api_that_does_not_answer_is_named() -> None:
    missing = api_missing(client_for(f"http://127.0.0.1:{free_port()}"), 1, EKS_CORE)
    assert len(missing) == 1 and missing[0].startswith("the Kubernetes API does not answer")


def test_unready_nodes_and_missing_core_addons_are_named_until_they_come(server: KubeAPIServer) -> None:
    api = client_for(server.url)
    core = kubernetes.client.CoreV1Api(api)
    for n in core.list_node().items:  # the emulator's own node: not Ready, like a kubelet that never joined
        set_ready(core, n.metadata.name, False)
    assert api_missing(api, 2, EKS_CORE) == [
        "0 of 2 nodes are Ready",
        "core add-on coredns is missing (Deployment kube-system/coredns not found)",
        "core add-on kube-proxy is missing (DaemonSet kube-system/kube-proxy not found)",
    ]
    set_ready(core, "green-ng-1", True)
    set_ready(core, "green-ng-2", True)
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment("kube-system", deployment("coredns"))
    kube_proxy = "core add-on kube-proxy is missing (DaemonSet kube-system/kube-proxy not found)"
    wait_until(lambda: api_missing(api, 2, EKS_CORE) == [kube_proxy])  # coredns rolled out by the controllers
    # Raw: the client's models reject the answer, a DaemonSet whose status is still empty.
    apps.create_namespaced_daemon_set("kube-system", daemonset("kube-proxy"), _preload_content=False)
    wait_until(lambda: api_missing(api, 2, EKS_CORE) == [])
    assert api_missing(api, 3, GKE_CORE_WORKLOADS) == [
        "2 of 3 nodes are Ready", "core add-on kube-dns is missing (Deployment kube-system/kube-dns not found)"]


def test_a_core_addon_that_exists_but_is_not_ready_is_named() -> None:
    srv = KubeAPIServer(version="1.31", controller_delay=30.0, cluster_name="slow").start()
    try:
        api = client_for(srv.url)
        kubernetes.client.AppsV1Api(api).create_namespaced_deployment("kube-system", deployment("coredns"))
        assert api_missing(api, 1, EKS_CORE[:1]) == [
            "core add-on coredns is not ready (Deployment kube-system/coredns)"]
    finally:
        srv.stop()
