"""What a user's first kubectl session checks on a cluster, through kubectl and the official client: workload
pods and StatefulSet claims, server-side tables, Events, APIServices, access reviews, /openapi/v2 (kubectl's
validation of List files) and a clean `kubectl diff`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import kubernetes
import yaml
from kubeapi.conftest import Kubectl, deployment
from kubernetes.dynamic import DynamicClient

from migrate.sandbox.kubeapi import KubeAPIServer

STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx
  serviceName: nginx
  replicas: 3
  minReadySeconds: 10
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ "ReadWriteOnce" ]
      storageClassName: "standard"
      resources:
        requests:
          storage: 1Gi
"""


def _eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(0.05)


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def _get(server: KubeAPIServer, path: str, accept: str, api_client: kubernetes.client.ApiClient | None = None) -> Any:
    """A GET with a chosen Accept header, through the official client's own connection pool."""
    client = api_client or kubernetes.client.ApiClient(_config(server))
    resp = client.rest_client.pool_manager.request("GET", server.url + path, headers={"Accept": accept})
    assert resp.status == 200, resp.data
    return json.loads(resp.data)


def _config(server: KubeAPIServer) -> kubernetes.client.Configuration:
    cfg = kubernetes.client.Configuration()
    cfg.host = server.url
    return cfg


def test_workload_pods_with_owners_nodes_and_conditions(server: KubeAPIServer, kubectl: Kubectl,
                                                        api_client: kubernetes.client.ApiClient,
                                                        namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    apps = kubernetes.client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=3))
    server.wait_idle()
    rs = apps.list_namespaced_replica_set(namespace).items
    assert len(rs) == 1
    pods = _eventually(lambda: [p for p in core.list_namespaced_pod(namespace, label_selector="app=web").items
                                if p.status.phase == "Running"] if len(core.list_namespaced_pod(
                                    namespace, label_selector="app=web").items) == 3 else None)
    for p in pods:
        ref = p.metadata.owner_references[0]
        assert (ref.kind, ref.name, ref.uid, ref.controller) == ("ReplicaSet", rs[0].metadata.name,
                                                                 rs[0].metadata.uid, True)
        assert p.spec.node_name and p.metadata.name.startswith(f"{rs[0].metadata.name}-")
        assert {c.type: c.status for c in p.status.conditions} == {
            "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
        assert p.metadata.labels["pod-template-hash"] == rs[0].metadata.labels["pod-template-hash"]
    assert apps.read_namespaced_deployment(rs[0].metadata.owner_references[0].name, namespace).status.ready_replicas \
        == 3
    # A deleted pod is replaced by its ReplicaSet; kubectl sees the same pods.
    kubectl.run("delete", "pod", pods[0].metadata.name, "-n", namespace)
    _eventually(lambda: len([p for p in core.list_namespaced_pod(namespace).items
                             if p.metadata.name != pods[0].metadata.name]) == 3)
    listed = kubectl.json("get", "pods", "-n", namespace, "-l", "app=web")
    assert len(listed["items"]) == 3 and all(_ready(p) for p in listed["items"])
    # Scaling down deletes pods; the status follows them.
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})
    _eventually(lambda: len(core.list_namespaced_pod(namespace, label_selector="app=web").items) == 1)


def test_statefulset_pods_by_ordinal_and_their_claims(server: KubeAPIServer, kubectl: Kubectl, dyn: DynamicClient,
                                                      namespace: str) -> None:
    # The StatefulSet of the Kubernetes documentation's "StatefulSet basics" tutorial.
    kubectl.run("apply", "--server-side", "-n", namespace, "-f", "-", input=STATEFULSET)
    server.wait_idle()
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", "app=nginx")["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["web-0", "web-1", "web-2"]
    for p in pods:
        assert p["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
        assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == p["metadata"]["name"]
        assert p["spec"]["hostname"] == p["metadata"]["name"] and p["spec"]["subdomain"] == "nginx"
        claim = next(v for v in p["spec"]["volumes"] if v["name"] == "www")["persistentVolumeClaim"]["claimName"]
        assert claim == f"www-{p['metadata']['name']}"
    pvcs = _eventually(lambda: [c for c in dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim").get(
        namespace=namespace).to_dict()["items"] if c["status"].get("phase") == "Bound"] or None)
    assert sorted(c["metadata"]["name"] for c in pvcs) == ["www-web-0", "www-web-1", "www-web-2"]
    assert all(c["metadata"]["labels"] == {"app": "nginx"} and not c["metadata"].get("ownerReferences")
               for c in pvcs)
    assert all(c["spec"]["volumeName"] and c["status"]["capacity"]["storage"] == "1Gi" for c in pvcs)
    sts = kubectl.json("get", "statefulset", "web", "-n", namespace)
    assert sts["status"]["readyReplicas"] == 3
    # Scaled down, the pods go and the claims stay (the default Retain policy).
    kubectl.run("scale", "statefulset", "web", "-n", namespace, "--replicas=1")
    _eventually(lambda: [p["metadata"]["name"] for p in kubectl.json("get", "pods", "-n", namespace,
                                                                     "-l", "app=nginx")["items"]] == ["web-0"])
    claims = kubectl.json("get", "pvc", "-n", namespace)["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["www-web-0", "www-web-1", "www-web-2"]


def test_daemonset_replicationcontroller_and_job_pods(server: KubeAPIServer, kubectl: Kubectl,
                                                      namespace: str) -> None:
    manifests = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox:1.36}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: nginx}
spec:
  replicas: 3
  selector: {app: nginx-rc}
  template:
    metadata: {name: nginx, labels: {app: nginx-rc}}
    spec: {containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  template:
    spec:
      containers: [{name: pi, image: perl:5.34.0, command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}]
      restartPolicy: Never
  backoffLimit: 4
"""
    kubectl.run("apply", "--server-side", "-n", namespace, "-f", "-", input=manifests)
    server.wait_idle()
    nodes = [n["metadata"]["name"] for n in kubectl.json("get", "nodes")["items"]]
    agents = kubectl.json("get", "pods", "-n", namespace, "-l", "app=agent")["items"]
    assert sorted(p["spec"]["nodeName"] for p in agents) == sorted(nodes)  # one per node
    rc_pods = kubectl.json("get", "pods", "-n", namespace, "-l", "app=nginx-rc")["items"]
    assert len(rc_pods) == 3 and {p["metadata"]["ownerReferences"][0]["kind"] for p in rc_pods} == \
        {"ReplicationController"}
    assert kubectl.json("get", "rc", "nginx", "-n", namespace)["status"]["readyReplicas"] == 3
    job_pods = kubectl.json("get", "pods", "-n", namespace, "-l", "job-name=pi")["items"]
    assert [p["status"]["phase"] for p in job_pods] == ["Succeeded"]
    out = kubectl.run("get", "pods", "-n", namespace, "-l", "job-name=pi").stdout
    assert "Completed" in out


def test_server_side_tables_for_kubectl_get(server: KubeAPIServer, kubectl: Kubectl,
                                            api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    kubernetes.client.AppsV1Api(api_client).create_namespaced_deployment(namespace, deployment("web"))
    kubectl.run("apply", "--server-side", "-n", namespace, "-f", "-", input=STATEFULSET.replace("replicas: 3",
                                                                                                  "replicas: 1"))
    server.wait_idle()
    out = kubectl.run("get", "deploy,sts,pods", "-n", namespace).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["deployment.apps/web", "2/2", "2", "2"]
    assert any(line.split()[:2] == ["statefulset.apps/web", "1/1"] for line in lines)
    pod_header = next(line for line in lines if line.startswith("NAME") and "RESTARTS" in line)
    assert pod_header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert any(line.split()[:4] == ["pod/web-0", "1/1", "Running", "0"] for line in lines)
    wide = kubectl.run("get", "pods", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:8] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED"]
    nodes = kubectl.run("get", "nodes").stdout.splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and " Ready " in nodes[1]
    # The official client asks for the same Table.
    table = _get(server, f"/apis/apps/v1/namespaces/{namespace}/deployments",
                 "application/json;as=Table;v=v1;g=meta.k8s.io, application/json", api_client)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert {c["name"]: c["priority"] for c in table["columnDefinitions"]}["Images"] == 1
    assert table["rows"][0]["cells"][:4] == ["web", "2/2", 2, 2]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_crd_printer_columns(server: KubeAPIServer, kubectl: Kubectl, namespace: str) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "crontabs.stable.example.com"},
           "spec": {"group": "stable.example.com", "scope": "Namespaced",
                    "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                                      "type": "object", "properties": {"cronSpec": {"type": "string"},
                                                                       "image": {"type": "string"},
                                                                       "replicas": {"type": "integer"}}}}}},
                                  "additionalPrinterColumns": [
                                      {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                                      {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                                      {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}}
    kubectl.run("apply", "--server-side", "-f", "-", input=json.dumps(crd))
    kubectl.run("wait", "--for=condition=Established", "crd/crontabs.stable.example.com")
    ct = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "my-new-cron-object"},
          "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "replicas": 3}}
    kubectl.run("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(ct))
    lines = kubectl.run("get", "ct", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert lines[1].split()[:6] == ["my-new-cron-object", "*", "*", "*", "*", "*/5"]
    assert lines[1].split()[6] == "3"


def test_events_from_the_controllers(server: KubeAPIServer, kubectl: Kubectl,
                                     api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    kubernetes.client.AppsV1Api(api_client).create_namespaced_deployment(namespace, deployment("web"))
    server.wait_idle()
    events = kubernetes.client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    reasons = {(e.involved_object.kind, e.reason) for e in events}
    assert {("Deployment", "ScalingReplicaSet"), ("ReplicaSet", "SuccessfulCreate"), ("Pod", "Scheduled")} <= reasons
    scaled = next(e for e in events if e.reason == "ScalingReplicaSet")
    assert scaled.message.startswith("Scaled up replica set web-") and scaled.message.endswith(" to 2")
    assert scaled.source.component == "deployment-controller" and scaled.type == "Normal"
    out = kubectl.run("get", "events", "-n", namespace).stdout.splitlines()
    assert out[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("ScalingReplicaSet" in line and "deployment/web" in line for line in out)
    described = kubectl.run("describe", "deployment", "web", "-n", namespace).stdout
    assert "Events:" in described and "ScalingReplicaSet" in described and "deployment-controller" in described


def test_apiservice_available_follows_its_service(server: KubeAPIServer, kubectl: Kubectl, namespace: str) -> None:
    # kube-prometheus' metrics APIService, backed by prometheus-adapter.
    apiservice = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                  "metadata": {"name": "v1beta1.metrics.k8s.io",
                               "labels": {"app.kubernetes.io/name": "prometheus-adapter"}},
                  "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                           "versionPriority": 100, "insecureSkipTLSVerify": True,
                           "service": {"name": "prometheus-adapter", "namespace": namespace}}}
    kubectl.run("apply", "--server-side", "-f", "-", input=json.dumps(apiservice))

    def available() -> dict[str, Any]:
        server.wait_idle()
        status = kubectl.json("get", "apiservice", "v1beta1.metrics.k8s.io")["status"]
        return next(c for c in status["conditions"] if c["type"] == "Available")

    assert (available()["status"], available()["reason"]) == ("False", "ServiceNotFound")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "prometheus-adapter"},
           "spec": {"selector": {"app.kubernetes.io/name": "prometheus-adapter"},
                    "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}}
    kubectl.run("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(svc))
    assert (available()["status"], available()["reason"]) == ("False", "MissingEndpoints")
    dep = deployment("prometheus-adapter")
    dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "prometheus-adapter"
    kubectl.run("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(dep))
    assert available()["status"] == "True"
    # The official client reads the same condition.
    got = DynamicClient(kubernetes.client.ApiClient(_config(server))).resources.get(
        api_version="apiregistration.k8s.io/v1", kind="APIService").get(name="v1beta1.metrics.k8s.io").to_dict()
    assert {c["type"]: c["status"] for c in got["status"]["conditions"]}["Available"] == "True"
    line = kubectl.run("get", "apiservice", "v1beta1.metrics.k8s.io").stdout.splitlines()[1].split()
    assert line[:3] == ["v1beta1.metrics.k8s.io", f"{namespace}/prometheus-adapter", "True"]
    local = kubectl.json("get", "apiservice", "v1.apps")
    assert local["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"] == "onstart"
    kubectl.run("delete", "apiservice", "v1beta1.metrics.k8s.io")


def test_access_reviews_allow_the_sandbox_admin(kubectl: Kubectl, api_client: kubernetes.client.ApiClient) -> None:
    assert kubectl.run("auth", "can-i", "delete", "pods", "--all-namespaces").stdout.strip() == "yes"
    assert kubectl.run("auth", "can-i", "create", "clusterrolebindings").stdout.strip() == "yes"
    assert "*.*" in kubectl.run("auth", "can-i", "--list").stdout
    assert "kubernetes-admin" in kubectl.run("auth", "whoami").stdout
    review = kubernetes.client.AuthorizationV1Api(api_client).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": "kube-system"}}})
    assert review.status.allowed is True
    assert review.spec.resource_attributes.resource == "secrets"  # the request comes back with its answer
    # Reviews are answers, not objects: nothing is stored, and they cannot be listed.
    assert "selfsubjectaccessreviews" not in kubectl.run("api-resources", "--verbs=list", "-o", "name").stdout


def test_kubectl_validates_list_files_through_openapi_v2(server: KubeAPIServer, kubectl: Kubectl,
                                                         namespace: str) -> None:
    lists = [
        {"apiVersion": "v1", "kind": "ConfigMapList", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": namespace},
             "data": {"k": str(i)}} for i in range(2)]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleList", "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "reader", "namespace": namespace},
             "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBindingList", "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "reader", "namespace": namespace},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
             "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}]}]},
        {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "in-a-list", "namespace": namespace}}]},
    ]
    for doc in lists:
        kubectl.run("apply", "--server-side", "-f", "-", input=yaml.safe_dump(doc))  # validation on (the default)
    assert len(kubectl.json("get", "configmaps", "-n", namespace, "-l", "!x")["items"]) >= 3
    # The validation is real: an unknown field inside a List's item is refused, naming it.
    bad = yaml.safe_dump({**lists[0], "items": [{**lists[0]["items"][0], "bogus": 1}]})
    r = kubectl.run("apply", "--server-side", "-f", "-", input=bad, check=False)
    assert r.returncode != 0 and 'unknown field "bogus"' in r.stderr
    # The same document as JSON, for clients that do not ask for protobuf.
    doc = _get(server, "/openapi/v2", "application/json")
    assert doc["swagger"] == "2.0"
    gvk = doc["definitions"]["io.k8s.api.core.v1.ConfigMapList"]["x-kubernetes-group-version-kind"]
    assert gvk == [{"group": "", "kind": "ConfigMapList", "version": "v1"}]


def test_kubectl_diff_is_clean_on_an_unchanged_cronjob(kubectl: Kubectl, api_client: kubernetes.client.ApiClient,
                                                        namespace: str) -> None:
    cronjob = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
"""
    kubectl.run("apply", "--server-side", "-n", namespace, "-f", "-", input=cronjob)
    r = kubectl.run("diff", "-n", namespace, "-f", "-", input=cronjob, check=False)
    assert r.returncode == 0, r.stdout  # 1 would mean a difference, such as a spurious `annotations: {}`
    obj = kubectl.json("get", "cronjob", "hello", "-n", namespace)
    assert "annotations" not in obj["metadata"]
    # The official client's merge patch that empties the annotations leaves none, as on a real server.
    batch = kubernetes.client.BatchV1Api(api_client)
    batch.patch_namespaced_cron_job("hello", namespace, {"metadata": {"annotations": {"a": "1"}}})
    batch.patch_namespaced_cron_job("hello", namespace, {"metadata": {"annotations": {"a": None}}})
    assert batch.read_namespaced_cron_job("hello", namespace).metadata.annotations is None
