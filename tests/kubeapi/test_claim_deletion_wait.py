"""The volume cut's undo waits for a deleted claim to be gone: on a real cluster a claim in use keeps the
`kubernetes.io/pvc-protection` finalizer until its pods are gone. Checked on the emulator, which keeps a
deleted object with finalizers until they are removed, and with kubectl."""

from __future__ import annotations

import subprocess
import threading
import time

import kubernetes
import pytest
from kubeapi.conftest import find_kubectl

from migrate.errors import StepFailed
from migrate.kube.client import KubeClient, object_path
from migrate.sandbox.kubeapi import KubeAPIServer
from migrate.steps.volumes import wait_gone


def test_undo_waits_for_a_protected_claim_to_be_gone(server: KubeAPIServer, api_client: kubernetes.client.ApiClient,
                                                     namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "data-kv-0", "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    kube = KubeClient(api_client, qps=None)
    path = object_path("v1", "persistentvolumeclaims", namespace, "data-kv-0")
    kube.call("DELETE", path)
    with pytest.raises(StepFailed, match="still there"):
        wait_gone(kube, path, 0.5)  # held by the finalizer: a pod still uses it

    def release() -> None:
        time.sleep(0.5)
        core.patch_namespaced_persistent_volume_claim("data-kv-0", namespace, {"metadata": {"finalizers": None}})

    t = threading.Thread(target=release)
    t.start()
    started = time.monotonic()
    wait_gone(kube, path, 10)
    t.join()
    assert time.monotonic() - started >= 0.4  # it really waited for the finalizer
    kubectl = find_kubectl()
    out = subprocess.run([kubectl, "--server", server.url, "get", "pvc", "-n", namespace, "-o", "name"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "data-kv-0" not in out.stdout
