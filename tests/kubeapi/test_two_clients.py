"""Two clients, one scenario: the official Python client (typed APIs + DynamicClient) and kubectl run the
same steps against the emulator and must observe the same objects."""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any, Protocol

import kubernetes
import pytest
from kubernetes.dynamic import DynamicClient

from .conftest import Kubectl, deployment

_KIND = {"deployments": ("apps/v1", "Deployment"), "configmaps": ("v1", "ConfigMap"), "services": ("v1", "Service")}


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def service(name: str, ports: list[int]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": f"p{p}", "port": p, "targetPort": p} for p in ports]}}


class Driver(Protocol):
    def create(self, ns: str, obj: dict[str, Any]) -> None: ...
    def apply(self, ns: str, obj: dict[str, Any]) -> None: ...
    def apply_server_side(self, ns: str, obj: dict[str, Any]) -> None: ...
    def get(self, ns: str, resource: str, name: str) -> dict[str, Any] | None: ...
    def patch(self, ns: str, resource: str, name: str, kind: str, body: Any) -> None: ...
    def label(self, ns: str, resource: str, name: str, key: str, value: str) -> None: ...
    def scale(self, ns: str, resource: str, name: str, replicas: int) -> None: ...
    def wait_condition(self, ns: str, resource: str, name: str, condition: str) -> None: ...
    def rollout_status(self, ns: str, resource: str, name: str) -> str: ...
    def watch(self, ns: str, resource: str, name: str, stimulus: Any) -> list[tuple[str, str]]: ...
    def delete(self, ns: str, resource: str, name: str) -> None: ...


# ---------------------------------------------------------------- the Python client


class PythonDriver:
    def __init__(self, client: kubernetes.client.ApiClient, dyn: DynamicClient) -> None:
        self.apps = kubernetes.client.AppsV1Api(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.dyn = dyn
        self.client = client

    def _res(self, resource: str) -> Any:
        api_version, kind = _KIND[resource]
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def create(self, ns: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment":
            self.apps.create_namespaced_deployment(ns, obj)  # typed API
        else:
            self._res(obj["kind"].lower() + "s").create(body=obj, namespace=ns)

    def apply(self, ns: str, obj: dict[str, Any]) -> None:
        # What client-side apply boils down to: create, or a strategic merge patch of the new config.
        res = self._res(obj["kind"].lower() + "s")
        try:
            res.get(name=obj["metadata"]["name"], namespace=ns)
        except kubernetes.client.ApiException as e:
            assert e.status == 404
            res.create(body=obj, namespace=ns)
            return
        res.patch(body=obj, name=obj["metadata"]["name"], namespace=ns,
                  content_type="application/strategic-merge-patch+json")

    def apply_server_side(self, ns: str, obj: dict[str, Any]) -> None:
        self._res(obj["kind"].lower() + "s").server_side_apply(body=obj, namespace=ns, field_manager="scenario")

    def get(self, ns: str, resource: str, name: str) -> dict[str, Any] | None:
        try:
            if resource == "deployments":
                return self.client.sanitize_for_serialization(self.apps.read_namespaced_deployment(name, ns))
            return self._res(resource).get(name=name, namespace=ns).to_dict()
        except kubernetes.client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def patch(self, ns: str, resource: str, name: str, kind: str, body: Any) -> None:
        ctype = {"strategic": "application/strategic-merge-patch+json",
                 "merge": "application/merge-patch+json", "json": "application/json-patch+json"}[kind]
        if resource == "deployments":
            self.apps.patch_namespaced_deployment(name, ns, body, _content_type=ctype)
        else:
            self._res(resource).patch(body=body, name=name, namespace=ns, content_type=ctype)

    def label(self, ns: str, resource: str, name: str, key: str, value: str) -> None:
        self.patch(ns, resource, name, "merge", {"metadata": {"labels": {key: value}}})

    def scale(self, ns: str, resource: str, name: str, replicas: int) -> None:
        assert resource == "deployments"
        self.apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": replicas}})

    def wait_condition(self, ns: str, resource: str, name: str, condition: str) -> None:
        w = kubernetes.watch.Watch()
        for ev in w.stream(self.apps.list_namespaced_deployment, ns, field_selector=f"metadata.name={name}",
                           timeout_seconds=10):
            conds = ev["object"].status.conditions or []
            if any(c.type == condition and c.status == "True" for c in conds):
                w.stop()
                return
        raise AssertionError(f"timed out waiting for {condition}")

    def rollout_status(self, ns: str, resource: str, name: str) -> str:
        # kubectl's rollout_status.go logic for Deployments, driven by a watch.
        w = kubernetes.watch.Watch()
        for ev in w.stream(self.apps.list_namespaced_deployment, ns, field_selector=f"metadata.name={name}",
                           timeout_seconds=10):
            d = ev["object"]
            st = d.status
            if d.metadata.generation > (st.observed_generation or 0):
                continue
            want = d.spec.replicas
            if (st.updated_replicas or 0) >= want and (st.replicas or 0) <= (st.updated_replicas or 0) \
                    and (st.available_replicas or 0) >= (st.updated_replicas or 0):
                w.stop()
                return f'deployment "{name}" successfully rolled out'
        raise AssertionError("rollout did not finish")

    def watch(self, ns: str, resource: str, name: str, stimulus: Any) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        w = kubernetes.watch.Watch()
        started = False
        for ev in w.stream(self.core.list_namespaced_config_map, ns, field_selector=f"metadata.name={name}",
                           timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            if not started:
                started = True
                threading.Thread(target=stimulus, daemon=True).start()
            if ev["type"] == "DELETED":
                w.stop()
        return seen

    def delete(self, ns: str, resource: str, name: str) -> None:
        if resource == "deployments":
            self.apps.delete_namespaced_deployment(name, ns)
        else:
            self._res(resource).delete(name=name, namespace=ns)


# ---------------------------------------------------------------- kubectl


class KubectlDriver:
    def __init__(self, kubectl: Kubectl) -> None:
        self.k = kubectl

    def create(self, ns: str, obj: dict[str, Any]) -> None:
        out = self.k.run("create", "-n", ns, "-f", "-", input=json.dumps(obj)).stdout
        assert "created" in out

    def apply(self, ns: str, obj: dict[str, Any]) -> None:
        out = self.k.run("apply", "-n", ns, "-f", "-", input=json.dumps(obj)).stdout
        assert "created" in out or "configured" in out or "unchanged" in out

    def apply_server_side(self, ns: str, obj: dict[str, Any]) -> None:
        out = self.k.run("apply", "--server-side", "--field-manager=scenario", "-n", ns, "-f", "-",
                         input=json.dumps(obj)).stdout
        assert "serverside-applied" in out

    def get(self, ns: str, resource: str, name: str) -> dict[str, Any] | None:
        proc = self.k.run("get", "-n", ns, resource, name, "-o", "json", "--show-managed-fields", check=False)
        if proc.returncode != 0:
            assert "NotFound" in proc.stderr, proc.stderr
            return None
        return json.loads(proc.stdout)

    def patch(self, ns: str, resource: str, name: str, kind: str, body: Any) -> None:
        self.k.run("patch", "-n", ns, resource, name, "--type", kind, "-p", json.dumps(body))

    def label(self, ns: str, resource: str, name: str, key: str, value: str) -> None:
        self.k.run("label", "-n", ns, resource, name, f"{key}={value}")

    def scale(self, ns: str, resource: str, name: str, replicas: int) -> None:
        self.k.run("scale", "-n", ns, f"{resource}/{name}", f"--replicas={replicas}")

    def wait_condition(self, ns: str, resource: str, name: str, condition: str) -> None:
        out = self.k.run("wait", "-n", ns, f"--for=condition={condition}", f"{resource}/{name}",
                         "--timeout=10s").stdout
        assert "condition met" in out

    def rollout_status(self, ns: str, resource: str, name: str) -> str:
        return self.k.run("rollout", "status", "-n", ns, f"{resource}/{name}", "--timeout=10s").stdout.strip()

    def watch(self, ns: str, resource: str, name: str, stimulus: Any) -> list[tuple[str, str]]:
        proc = self.k.popen("get", "-n", ns, resource, name, "-w", "-o", "json", "--output-watch-events")
        seen: list[tuple[str, str]] = []
        dec = json.JSONDecoder()
        buf = ""
        deadline = time.monotonic() + 15
        assert proc.stdout is not None
        try:
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                buf += line
                try:
                    ev, _ = dec.raw_decode(buf.strip())
                except ValueError:
                    continue
                buf = ""
                seen.append((ev["type"], ev["object"]["metadata"]["name"]))
                if len(seen) == 1:
                    threading.Thread(target=stimulus, daemon=True).start()
                if ev["type"] == "DELETED":
                    break
        finally:
            proc.kill()
            proc.wait()
        return seen

    def delete(self, ns: str, resource: str, name: str) -> None:
        out = self.k.run("delete", "-n", ns, resource, name, "--timeout=10s").stdout
        assert "deleted" in out


# ---------------------------------------------------------------- the scenario

_VOLATILE_META = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "namespace", "selfLink")


def normalize(obj: dict[str, Any] | None, status: bool = True) -> Any:
    """What must be equal between two runs in two namespaces: drop ids, times, allocations."""
    if obj is None:
        return None
    o = copy.deepcopy(obj)
    if not status:
        o.pop("status", None)
    meta = o.get("metadata") or {}
    for k in _VOLATILE_META:
        meta.pop(k, None)
    ann = meta.get("annotations") or {}
    ann.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    ann.pop("deployment.kubernetes.io/revision", None)  # the controller's, written whenever it gets to it
    if not ann:
        meta.pop("annotations", None)
    spec = o.get("spec") or {}
    for k in ("clusterIP", "clusterIPs"):
        spec.pop(k, None)
    for c in (o.get("status") or {}).get("conditions") or []:
        for k in ("lastTransitionTime", "lastUpdateTime", "lastProbeTime"):
            c.pop(k, None)
    return _drop_nulls(o)


def _drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v


def run_scenario(d: Driver, ns: str, core: kubernetes.client.CoreV1Api) -> dict[str, Any]:
    obs: dict[str, Any] = {}
    d.create(ns, deployment("web"))
    # Status is left out here: how soon the controller has run depends on the client's speed.
    obs["created"] = normalize(d.get(ns, "deployments", "web"), status=False)

    d.apply(ns, configmap("cfg", {"a": "1"}))
    d.apply(ns, configmap("cfg", {"a": "2", "b": "3"}))
    obs["applied"] = normalize(d.get(ns, "configmaps", "cfg"))

    d.apply_server_side(ns, service("web", [80]))
    d.apply_server_side(ns, service("web", [80, 443]))
    svc = d.get(ns, "services", "web")
    assert svc is not None
    obs["server_side_applied"] = normalize(svc)
    managers = {(m["manager"], m["operation"]) for m in svc["metadata"]["managedFields"]}
    obs["ssa_managers"] = sorted(managers)

    d.patch(ns, "deployments", "web", "strategic", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.26", "env": [{"name": "B", "value": "2"}]}]}}}})
    d.patch(ns, "deployments", "web", "merge", {"metadata": {"annotations": {"note": "merged"}}})
    d.patch(ns, "deployments", "web", "json", [{"op": "replace", "path": "/spec/replicas", "value": 3}])
    obs["patched"] = normalize(d.get(ns, "deployments", "web"), status=False)

    d.label(ns, "deployments", "web", "tier", "frontend")
    d.scale(ns, "deployments", "web", 4)
    d.wait_condition(ns, "deployments", "web", "Available")
    obs["rollout"] = d.rollout_status(ns, "deployments", "web")
    obs["ready"] = normalize(d.get(ns, "deployments", "web"))

    def stimulus() -> None:
        time.sleep(0.2)
        core.patch_namespaced_config_map("cfg", ns, {"data": {"c": "4"}})
        core.delete_namespaced_config_map("cfg", ns)

    obs["watch"] = d.watch(ns, "configmaps", "cfg", stimulus)

    d.delete(ns, "deployments", "web")
    obs["gone"] = d.get(ns, "deployments", "web")
    return obs


@pytest.fixture
def second_namespace(api_client: kubernetes.client.ApiClient, namespace: str) -> str:
    name = namespace[:40] + "-kubectl"
    kubernetes.client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


def test_python_client_and_kubectl_see_the_same_results(
        api_client: kubernetes.client.ApiClient, dyn: DynamicClient, kubectl: Kubectl, namespace: str,
        second_namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    py = run_scenario(PythonDriver(api_client, dyn), namespace, core)
    kc = run_scenario(KubectlDriver(kubectl), second_namespace, core)

    # The scenario did what it says, as seen by the Python client...
    patched = py["patched"]
    container = patched["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.26"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert patched["metadata"]["annotations"] == {"note": "merged"}
    assert patched["spec"]["replicas"] == 3
    assert patched["metadata"]["generation"] == 3  # template and replicas changed; the annotation did not
    assert py["applied"]["data"] == {"a": "2", "b": "3"}
    assert [p["port"] for p in py["server_side_applied"]["spec"]["ports"]] == [80, 443]
    assert ("scenario", "Apply") in [tuple(m) for m in py["ssa_managers"]]
    ready = py["ready"]
    assert ready["metadata"]["labels"]["tier"] == "frontend"
    assert ready["spec"]["replicas"] == 4
    assert ready["status"]["readyReplicas"] == 4
    assert ready["status"]["observedGeneration"] == ready["metadata"]["generation"]
    assert py["rollout"] == 'deployment "web" successfully rolled out'
    assert py["watch"] == [("ADDED", "cfg"), ("MODIFIED", "cfg"), ("DELETED", "cfg")]
    assert py["gone"] is None

    # ...and kubectl saw exactly the same.
    for key in py:
        assert kc[key] == py[key], f"step {key!r} differs between the Python client and kubectl"
