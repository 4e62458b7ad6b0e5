"""Fixtures for the Kubernetes API emulator tests: one emulator per module, kubectl in a sealed HOME."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.dynamic import DynamicClient

from migrate.sandbox.kubeapi import KubeAPIServer

CONTROLLER_DELAY = 0.05  # small, so readiness waits stay fast, but not zero: clients must really wait
_ns_counter = itertools.count(1)


@pytest.fixture(scope="module")
def server() -> Iterator[KubeAPIServer]:
    srv = KubeAPIServer(version="1.29", controller_delay=CONTROLLER_DELAY).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def api_client(server: KubeAPIServer) -> Iterator[kubernetes.client.ApiClient]:
    cfg = kubernetes.client.Configuration()
    cfg.host = server.url
    client = kubernetes.client.ApiClient(cfg)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def dyn(api_client: kubernetes.client.ApiClient, tmp_path: Path) -> DynamicClient:
    # A private discovery cache: the default lives in /tmp keyed by host and could be stale.
    return DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))


@pytest.fixture
def namespace(api_client: kubernetes.client.ApiClient, request: pytest.FixtureRequest) -> str:
    name = f"t{next(_ns_counter)}-{request.node.name.lower().replace('_', '-')}"[:50].rstrip("-[")
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")
    kubernetes.client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


def find_kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not on PATH, and CI=true: the kubectl half of the suite must run in CI")
        pytest.skip("kubectl is not on PATH")
    return path


@dataclass
class Kubectl:
    binary: str
    kubeconfig: Path
    home: Path

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
               "KUBECONFIG": str(self.kubeconfig)}
        cmd = [self.binary, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.home / "cache"), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home)}
        cmd = [self.binary, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.home / "cache"), *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture
def kubectl(server: KubeAPIServer, tmp_path: Path) -> Kubectl:
    binary = find_kubectl()
    home = tmp_path / "home"
    home.mkdir()
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    return Kubectl(binary, kubeconfig, home)


def deployment(name: str, image: str = "nginx:1.25", replicas: int = 2, **labels: str) -> dict[str, Any]:
    labels = {"app": name, **labels}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image,
                                                       "ports": [{"containerPort": 80}],
                                                       "env": [{"name": "A", "value": "1"}]}]}}},
    }
