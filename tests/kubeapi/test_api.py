"""Verb-by-verb behaviour of the emulator through the official Python client (and kubectl where its
messages matter). Each test names the real-server behaviour it pins down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException
from kubernetes.dynamic import DynamicClient

from migrate.sandbox.kubeapi import KubeAPIServer

from .conftest import Kubectl, deployment


def _core(c: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(c)


def _apps(c: kubernetes.client.ApiClient) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(c)


def _status(e: ApiException) -> dict[str, Any]:
    return json.loads(e.body)


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


# ---------------------------------------------------------------- discovery


def test_discovery_lists_kinds_verbs_scopes_and_short_names(server: KubeAPIServer) -> None:
    def get(path: str) -> Any:
        with urllib.request.urlopen(server.url + path) as r:
            return json.load(r)

    assert get("/version")["minor"] == "29"
    assert get("/api")["versions"] == ["v1"]
    groups = {g["name"] for g in get("/apis")["groups"]}
    assert {"apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io", "apiextensions.k8s.io"} <= groups
    apps = {r["name"]: r for r in get("/apis/apps/v1")["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"]
    assert apps["deployments"]["namespaced"] is True
    assert "watch" in apps["deployments"]["verbs"]
    assert apps["deployments/scale"]["kind"] == "Scale" and apps["deployments/scale"]["group"] == "autoscaling"
    core = {r["name"]: r for r in get("/api/v1")["resources"]}
    assert core["namespaces"]["namespaced"] is False
    assert core["services"]["shortNames"] == ["svc"]
    root = get("/openapi/v3")["paths"]
    assert "apis/apps/v1" in root and "api/v1" in root
    doc = get(root["apis/apps/v1"]["serverRelativeURL"])
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]


def test_kubectl_resolves_short_names_and_explains(kubectl: Kubectl) -> None:
    out = kubectl.run("api-resources").stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("deployments "))
    assert line.split()[:4] == ["deployments", "deploy", "apps/v1", "true"]
    explained = kubectl.run("explain", "deployment.spec.replicas").stdout
    assert "replicas" in explained and "integer" in explained


# ---------------------------------------------------------------- metadata, namespaces, errors


def test_server_fills_metadata_and_generate_name(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    core = _core(api_client)
    a = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "cfg-"}, "data": {}})
    b = core.create_namespaced_config_map(namespace, cm("b"))
    assert a.metadata.name.startswith("cfg-") and len(a.metadata.name) == 9
    assert a.metadata.namespace == namespace  # taken from the URL
    assert a.metadata.uid and a.metadata.uid != b.metadata.uid
    assert int(b.metadata.resource_version) > int(a.metadata.resource_version)
    assert a.metadata.creation_timestamp is not None
    assert b.metadata.managed_fields[0].manager and b.metadata.managed_fields[0].operation == "Update"


def test_generation_bumps_on_spec_changes_only(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    apps = _apps(api_client)
    d = apps.create_namespaced_deployment(namespace, deployment("gen"))
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("gen", namespace, {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("gen", namespace, {"spec": {"replicas": 5}})
    assert d.metadata.generation == 2


def test_create_in_missing_namespace_is_404(api_client: kubernetes.client.ApiClient) -> None:
    with pytest.raises(ApiException) as e:
        _core(api_client).create_namespaced_config_map("does-not-exist", cm("x"))
    assert e.value.status == 404
    st = _status(e.value)
    assert st["kind"] == "Status" and st["reason"] == "NotFound"
    assert st["message"] == 'namespaces "does-not-exist" not found'
    assert st["details"] == {"name": "does-not-exist", "kind": "namespaces"}


def test_get_missing_and_duplicate_create(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    apps = _apps(api_client)
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment("nope", namespace)
    assert e.value.status == 404
    assert _status(e.value)["message"] == 'deployments.apps "nope" not found'
    apps.create_namespaced_deployment(namespace, deployment("dup"))
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment(namespace, deployment("dup"))
    assert e.value.status == 409 and _status(e.value)["reason"] == "AlreadyExists"


def test_kubectl_prints_the_familiar_messages(kubectl: Kubectl, namespace: str) -> None:
    p = kubectl.run("get", "deploy", "nope", "-n", namespace, check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    p = kubectl.run("create", "configmap", "c", "-n", "missing-ns", check=False)
    assert p.stderr.strip() == 'error: failed to create configmap: namespaces "missing-ns" not found'


def test_namespace_delete_is_terminating_then_gone_with_contents(
        server: KubeAPIServer, api_client: kubernetes.client.ApiClient) -> None:
    core = _core(api_client)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", cm("inside"))
    _apps(api_client).create_namespaced_deployment("doomed", deployment("inside"))
    ns = core.read_namespace("doomed")
    assert ns.status.phase == "Active"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "doomed"
    core.delete_namespace("doomed")
    ns = core.read_namespace("doomed")
    assert ns.status.phase == "Terminating" and ns.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("doomed", cm("late"))
    assert e.value.status == 403
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            core.read_namespace("doomed")
        except ApiException as gone:
            assert gone.status == 404
            break
        time.sleep(0.05)
    else:
        pytest.fail("namespace was never removed")
    assert server.api.store.count(("", "configmaps"), "doomed") == 0
    assert server.api.store.count(("apps", "deployments"), "doomed") == 0


def test_new_namespace_gets_default_service_account(server: KubeAPIServer,
                                                    api_client: kubernetes.client.ApiClient,
                                                    namespace: str) -> None:
    assert server.wait_idle(5)
    sa = _core(api_client).read_namespaced_service_account("default", namespace)
    assert sa.metadata.name == "default"


# ---------------------------------------------------------------- list, selectors, paging


def test_list_with_label_and_field_selectors(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    core = _core(api_client)
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        core.create_namespaced_config_map(namespace, cm(name, tier=tier, app="shop"))

    def names(**kw: Any) -> list[str]:
        return [i.metadata.name for i in core.list_namespaced_config_map(namespace, **kw).items
                if i.metadata.name != "kube-root-ca.crt"]

    assert names(label_selector="tier=web") == ["a", "b"]
    assert names(label_selector="tier!=web,app=shop") == ["c"]
    assert names(label_selector="tier in (db,cache)") == ["c"]
    assert names(label_selector="tier notin (db),app") == ["a", "b"]
    assert names(label_selector="!tier") == []
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector=f"metadata.namespace={namespace},metadata.name!=a", label_selector="app") == ["b", "c"]
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(namespace, field_selector="spec.foo=1")
    assert e.value.status == 400


def test_list_limit_and_continue(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    core = _core(api_client)
    for i in range(7):
        core.create_namespaced_config_map(namespace, cm(f"page-{i}", paged="yes"))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        resp = core.list_namespaced_config_map(namespace, label_selector="paged=yes", limit=3, _continue=token)
        seen += [i.metadata.name for i in resp.items]
        pages += 1
        token = resp.metadata._continue
        if not token:
            break
        assert resp.metadata.remaining_item_count == 7 - len(seen)
    assert pages == 3 and seen == [f"page-{i}" for i in range(7)]


# ---------------------------------------------------------------- replace, patch, apply


def test_replace_with_stale_resource_version_is_409(api_client: kubernetes.client.ApiClient,
                                                    namespace: str) -> None:
    core = _core(api_client)
    obj = core.create_namespaced_config_map(namespace, cm("rv"))
    obj.data = {"k": "2"}
    fresh = core.replace_namespaced_config_map("rv", namespace, obj)
    assert fresh.data == {"k": "2"}
    obj.data = {"k": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("rv", namespace, obj)
    assert e.value.status == 409
    assert "the object has been modified" in _status(e.value)["message"]


def test_strategic_merge_uses_merge_keys_and_directives(api_client: kubernetes.client.ApiClient,
                                                        namespace: str) -> None:
    apps = _apps(api_client)
    d = deployment("smp")
    d["spec"]["template"]["spec"]["volumes"] = [{"name": "v1", "emptyDir": {}}]
    d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "v1", "mountPath": "/a"}]
    apps.create_namespaced_deployment(namespace, d)
    patch = {"spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "image": "busybox"},
                       {"name": "app", "ports": [{"containerPort": 8080}],
                        "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}],
                        "volumeMounts": [{"mountPath": "/b", "name": "v2"}]}],
        "volumes": [{"name": "v2", "configMap": {"name": "x"}}]}}}}
    out = apps.patch_namespaced_deployment("smp", namespace, patch)
    spec = out.spec.template.spec
    assert [c.name for c in spec.containers] == ["app", "sidecar"]
    app = spec.containers[0]
    assert app.image == "nginx:1.25"  # untouched field survives
    assert sorted(p.container_port for p in app.ports) == [80, 8080]
    assert [e.name for e in app.env] == ["C"]
    assert [m.mount_path for m in app.volume_mounts] == ["/a", "/b"]
    assert [v.name for v in spec.volumes] == ["v1", "v2"]


def test_json_and_merge_patch_errors(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    core = _core(api_client)
    core.create_namespaced_config_map(namespace, cm("jp"))
    out = core.patch_namespaced_config_map("jp", namespace, [{"op": "add", "path": "/data/new", "value": "1"},
                                                             {"op": "remove", "path": "/data/k"}])
    assert out.data == {"new": "1"}
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("jp", namespace, [{"op": "test", "path": "/data/new", "value": "2"}])
    assert e.value.status == 422
    out = core.patch_namespaced_config_map("jp", namespace, {"data": {"new": None, "m": "x"}},
                                           _content_type="application/merge-patch+json")
    assert out.data == {"m": "x"}


def test_server_side_apply_create_update_conflict_and_force(dyn: DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "2"}}
    res.server_side_apply(body=body, namespace=namespace, field_manager="alice")
    res.patch(body={"data": {"a": "changed-by-bob"}}, name="ssa", namespace=namespace,
              content_type="application/merge-patch+json", field_manager="bob")
    with pytest.raises(ApiException) as e:
        res.server_side_apply(body=body, namespace=namespace, field_manager="alice")
    assert e.value.status == 409
    st = _status(e.value)
    assert st["message"] == 'Apply failed with 1 conflict: conflict with "bob" using v1: .data.a'
    assert st["details"]["causes"][0]["field"] == ".data.a"
    # Dropping a field alice applied before removes it; force takes .data.a back.
    out = res.server_side_apply(body={**body, "data": {"a": "1"}}, namespace=namespace, field_manager="alice",
                                force_conflicts=True)
    assert out.data.to_dict() == {"a": "1"}
    managers = {m.manager: m for m in out.metadata.managedFields}
    assert managers["alice"].operation == "Apply"
    assert "bob" not in managers  # bob owned nothing else


def test_apply_requires_field_manager(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    with pytest.raises(ApiException) as e:
        _core(api_client).patch_namespaced_config_map("x", namespace, {"metadata": {"name": "x"}},
                                                      _content_type="application/apply-patch+yaml")
    assert e.value.status == 400


def test_dry_run_persists_nothing(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    core = _core(api_client)
    out = core.create_namespaced_config_map(namespace, cm("dry"), dry_run="All")
    assert out.metadata.name == "dry"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", namespace)
    core.create_namespaced_config_map(namespace, cm("dry"))
    core.patch_namespaced_config_map("dry", namespace, {"data": {"k": "changed"}}, dry_run="All")
    core.delete_namespaced_config_map("dry", namespace, dry_run="All")
    assert core.read_namespaced_config_map("dry", namespace).data == {"k": "v"}


# ---------------------------------------------------------------- delete


def test_finalizers_hold_deletion_until_removed(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    core = _core(api_client)
    core.create_namespaced_config_map(namespace, {**cm("fin"), "metadata": {"name": "fin",
                                                                             "finalizers": ["example.com/x"]}})
    core.delete_namespaced_config_map("fin", namespace)
    held = core.read_namespaced_config_map("fin", namespace)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("fin", namespace, {"metadata": {"finalizers": None}},
                                     _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("fin", namespace)
    assert e.value.status == 404


def test_deletecollection_with_selector(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    core = _core(api_client)
    for name, gone in (("x1", "yes"), ("x2", "yes"), ("keep", "no")):
        core.create_namespaced_config_map(namespace, cm(name, gone=gone))
    core.delete_collection_namespaced_config_map(namespace, label_selector="gone=yes")
    left = [i.metadata.name for i in core.list_namespaced_config_map(namespace, label_selector="gone").items]
    assert left == ["keep"]


def test_owner_deletion_collects_replicasets(server: KubeAPIServer, api_client: kubernetes.client.ApiClient,
                                             namespace: str) -> None:
    apps = _apps(api_client)
    apps.create_namespaced_deployment(namespace, deployment("owner"))
    assert server.wait_idle(5)
    rs = apps.list_namespaced_replica_set(namespace).items
    assert len(rs) == 1 and rs[0].metadata.owner_references[0].name == "owner"
    apps.delete_namespaced_deployment("owner", namespace)
    assert apps.list_namespaced_replica_set(namespace).items == []


# ---------------------------------------------------------------- validation and immutability


def test_schema_violation_is_422_with_causes(dyn: DynamicClient, namespace: str) -> None:
    bad = deployment("bad")
    del bad["spec"]["template"]["spec"]["containers"][0]["name"]
    bad["spec"]["replicas"] = "two"
    # The typed client refuses this locally (pydantic); the dynamic client sends it as is.
    with pytest.raises(ApiException) as e:
        dyn.resources.get(api_version="apps/v1", kind="Deployment").create(body=bad, namespace=namespace)
    assert e.value.status == 422
    st = _status(e.value)
    assert st["reason"] == "Invalid" and st["details"]["kind"] == "Deployment"
    fields = {c["field"] for c in st["details"]["causes"]}
    assert {"spec.replicas", "spec.template.spec.containers[0].name"} <= fields
    assert st["message"].startswith('Deployment.apps "bad" is invalid: ')


def test_invalid_names_and_selector_mismatch(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    with pytest.raises(ApiException) as e:
        _core(api_client).create_namespaced_config_map(namespace, cm("Not_Valid"))
    assert e.value.status == 422
    d = deployment("mismatch")
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as e:
        _apps(api_client).create_namespaced_deployment(namespace, d)
    assert e.value.status == 422 and "selector" in _status(e.value)["message"]


def test_unknown_fields_warn_or_fail_strict(kubectl: Kubectl, namespace: str) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unk"}, "data": {}, "bogus": 1}
    p = kubectl.run("create", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
    assert p.returncode == 1 and 'unknown field "bogus"' in p.stderr
    p = kubectl.run("create", "--validate=warn", "-n", namespace, "-f", "-", input=json.dumps(obj))
    assert 'unknown field "bogus"' in p.stderr
    assert "bogus" not in kubectl.json("get", "cm", "unk", "-n", namespace)


@pytest.mark.parametrize(("kind", "mutate", "field"), [
    ("service", lambda o: o["spec"].update(clusterIP="10.96.99.99"), "spec.clusterIP"),
    ("deployment", lambda o: o["spec"]["selector"]["matchLabels"].update(extra="1") or
     o["spec"]["template"]["metadata"]["labels"].update(extra="1"), "spec.selector"),
    ("job-selector", lambda o: o["spec"]["selector"]["matchLabels"].update(extra="1") or
     o["spec"]["template"]["metadata"]["labels"].update(extra="1"), "spec.selector"),
    ("job-template", lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="busybox:2"),
     "spec.template"),
    ("pvc", lambda o: o["spec"].update(accessModes=["ReadWriteMany"]), "spec"),
])
def test_immutable_fields_are_422(dyn: DynamicClient, namespace: str, kind: str, mutate: Any, field: str) -> None:
    objs = {
        "service": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "imm"},
                    "spec": {"ports": [{"port": 80}]}},
        "deployment": deployment("imm"),
        "job-selector": _job(), "job-template": _job(),
        "pvc": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "imm"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
    }
    body = objs[kind]
    res = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    live = res.create(body=body, namespace=namespace).to_dict()
    mutate(live)
    with pytest.raises(ApiException) as e:
        res.replace(body=live, namespace=namespace)
    assert e.value.status == 422
    assert field in {c["field"] for c in _status(e.value)["details"]["causes"]}
    if kind == "pvc":  # resources stay mutable
        fresh = res.get(name="imm", namespace=namespace).to_dict()
        fresh["spec"]["resources"]["requests"]["storage"] = "2Gi"
        res.replace(body=fresh, namespace=namespace)


def _job() -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "imm"},
            "spec": {"manualSelector": True, "selector": {"matchLabels": {"j": "imm"}},
                     "template": {"metadata": {"labels": {"j": "imm"}},
                                  "spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox:1"}]}}}}


def test_validation_follows_the_emulated_version() -> None:
    # flowcontrol.apiserver.k8s.io/v1 arrived in 1.29: the schema set follows the emulated version.
    from migrate.sandbox.kubeapi.schemas import builtin_schemas
    assert builtin_schemas("1.28").def_name("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema") is None
    assert builtin_schemas("1.29").def_name("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema") is not None


# ---------------------------------------------------------------- subresources


def test_status_and_scale_subresources(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    apps = _apps(api_client)
    apps.create_namespaced_deployment(namespace, deployment("sub", replicas=1))
    # Writing status through the main resource is ignored; through /status it sticks, and spec does not.
    apps.patch_namespaced_deployment("sub", namespace, {"status": {"replicas": 99}})
    assert (apps.read_namespaced_deployment("sub", namespace).status.replicas or 0) != 99
    out = apps.patch_namespaced_deployment_status("sub", namespace, {"status": {"collisionCount": 7},
                                                                      "spec": {"replicas": 42}})
    assert out.status.collision_count == 7 and out.spec.replicas == 1
    scale = apps.read_namespaced_deployment_scale("sub", namespace)
    assert scale.kind == "Scale" and scale.spec.replicas == 1 and scale.status.selector == "app=sub"
    apps.replace_namespaced_deployment_scale("sub", namespace, {"metadata": {"name": "sub"},
                                                                "spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("sub", namespace).spec.replicas == 3


# ---------------------------------------------------------------- watch


def test_watch_from_resource_version_with_timeout(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    core = _core(api_client)
    # The namespace controller adds kube-root-ca.crt a moment after the namespace exists (as on a real
    # cluster): start watching after it, or a loaded machine sees it in the stream.
    deadline = time.monotonic() + 10
    while "kube-root-ca.crt" not in {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}:
        assert time.monotonic() < deadline, "the namespace controller never added kube-root-ca.crt"
        time.sleep(0.05)
    start_rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, cm("w"))
    core.patch_namespaced_config_map("w", namespace, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w", namespace)
    t0 = time.monotonic()
    events = [(e["type"], e["object"].metadata.name) for e in kubernetes.watch.Watch().stream(
        core.list_namespaced_config_map, namespace, resource_version=start_rv, timeout_seconds=1)]
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert 0.9 <= time.monotonic() - t0 < 5  # the stream ended because of timeoutSeconds


def test_watch_label_selector_turns_unmatching_into_deleted(server: KubeAPIServer, namespace: str) -> None:
    from migrate.sandbox.kubeapi.api import Request
    api = server.api
    rt = api.registry.get("", "v1", "configmaps")
    assert rt is not None
    rv = api.store.resource_version
    core_req = Request("watch", rt, namespace, query={"labelSelector": "sel=yes", "resourceVersion": str(rv),
                                                      "timeoutSeconds": "1"})
    api.handle(Request("create", rt, namespace, body=json.dumps(cm("s", sel="yes")).encode()))
    api.handle(Request("patch", rt, namespace, "s", body=b'{"metadata":{"labels":{"sel":"no"}}}',
                       content_type="application/merge-patch+json"))
    events = [e["type"] for e in api.watch(core_req) if e is not None]
    assert events == ["ADDED", "DELETED"]


def test_kubectl_get_watch_streams_chunks(server: KubeAPIServer, kubectl: Kubectl,
                                          api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    assert server.wait_idle(5)  # kube-root-ca.crt exists, so the initial list prints a first line
    proc = kubectl.popen("get", "cm", "-n", namespace, "-w", "--request-timeout=10s", "-o", "name")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "configmap/kube-root-ca.crt"
        _core(api_client).create_namespaced_config_map(namespace, cm("streamed"))
        assert proc.stdout.readline().strip() == "configmap/streamed"  # arrived over the open stream
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- entry points


def test_module_entry_prints_url_and_serves(tmp_path: Any) -> None:
    kc = tmp_path / "kc.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "migrate.sandbox.kubeapi", "--port", "0", "--version", "1.30",
                             "--kubeconfig", str(kc)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/version") as r:
            assert json.load(r)["minor"] == "30"
        assert url in kc.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_token_is_enforced_when_configured(tmp_path: Any) -> None:
    with KubeAPIServer(token="s3cret", controller_delay=0.01) as srv:
        cfg = kubernetes.client.Configuration()
        cfg.host = srv.url
        with pytest.raises(ApiException) as e:
            kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg)).list_namespace()
        assert e.value.status == 401
        kubernetes.config.load_kube_config(str(srv.write_kubeconfig(tmp_path / "kc")), client_configuration=cfg)
        names = [n.metadata.name for n in kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))
                 .list_namespace().items]
        assert "default" in names
        assert (tmp_path / "kc").stat().st_mode & 0o777 == 0o600


def test_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError):
        KubeAPIServer(host="0.0.0.0")
