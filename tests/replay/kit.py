"""Helpers for the replay tests: emulator pairs, manifest loading with the official client, sample workloads."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from migrate.sandbox.kubeapi import KubeAPIServer

FIXTURES = Path("/work/shared/fixtures/manifests")
OLD_NAME, NEW_NAME = "prod-blue", "prod-green"
Obj = dict[str, Any]


class Cluster:
    """One emulator plus an independent loader (DynamicClient), so fixtures do not go through the code under test."""

    def __init__(self, name: str, kubeconfig: Path, controller_delay: float = 0.05) -> None:
        self.name = name
        self.server = KubeAPIServer(version="1.29", controller_delay=controller_delay, cluster_name=name).start()
        self.kubeconfig = kubeconfig
        self.server.write_kubeconfig(kubeconfig, context=name)
        cfg = kubernetes.client.Configuration()
        cfg.host = self.server.url
        self.api = kubernetes.client.ApiClient(cfg)
        self.dyn = DynamicClient(self.api, cache_file=str(kubeconfig.parent / f"{name}-discovery.json"))

    def stop(self) -> None:
        self.api.close()
        self.server.stop()

    def resource(self, api_version: str, kind: str) -> Any:
        try:
            return self.dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self.dyn.resources.invalidate_cache()
            return self.dyn.resources.get(api_version=api_version, kind=kind)

    def load(self, docs: Iterable[Obj], default_namespace: str = "default") -> int:
        n = 0
        for d in docs:
            d = copy.deepcopy(d)
            r = self.resource(d["apiVersion"], d["kind"])
            ns = None
            if r.namespaced:
                ns = d["metadata"].setdefault("namespace", default_namespace)
            r.create(body=d, namespace=ns)
            n += 1
            if d["kind"] == "CustomResourceDefinition":
                self.dyn.resources.invalidate_cache()
        return n

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj:
        out: Obj = self.resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        return out

    def exists(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        try:
            self.get(api_version, kind, name, namespace)
            return True
        except kubernetes.client.exceptions.ApiException as e:
            if e.status == 404:
                return False
            raise

    def settle(self, timeout: float = 10.0) -> None:
        time.sleep(0.1)
        self.server.wait_idle(timeout)


def fixture_docs(name: str, namespace: str | None = None) -> list[Obj]:
    docs = [d for d in yaml.safe_load_all((FIXTURES / name).read_text()) if d]
    if namespace:
        for d in docs:
            if d["kind"] == "Namespace":
                continue
            d.setdefault("metadata", {})["namespace"] = namespace
    return docs


def spread(docs: list[Obj], namespaces: list[str]) -> list[Obj]:
    """The same manifests in many namespaces: a large, realistic set (namespaced objects only, plus the namespaces)."""
    out: list[Obj] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces]
    for ns in namespaces:
        for d in docs:
            if d["kind"] in ("Namespace",):
                continue
            c = copy.deepcopy(d)
            c["metadata"]["namespace"] = ns
            out.append(c)
    return out


def _labels(app: str) -> Obj:
    return {"app": app}


def _deploy(name: str, ns: str, image: str, replicas: int = 2, **pod: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns,
                                                                        "labels": _labels(name)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": _labels(name)},
                     "template": {"metadata": {"labels": _labels(name)},
                                  "spec": {"containers": [{"name": name, "image": image,
                                                           "ports": [{"containerPort": 8080}]}], **pod}}}}


def _svc(name: str, ns: str, type_: str = "ClusterIP", headless: bool = False) -> Obj:
    spec: Obj = {"selector": _labels(name), "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                 "type": type_}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name if type_ != "LoadBalancer" else
                                                                f"{name}-lb", "namespace": ns}, "spec": spec}


CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {
                                   "size": {"type": "integer"}, "color": {"type": "string"}}}}}}}]}}

OLD_ROLE = "arn:aws:iam::123456789012:role/blue-shop"
NEW_ROLE = "arn:aws:iam::123456789012:role/green-shop"


def sample_workloads() -> list[Obj]:
    """A realistic small application estate: three namespaces, every kind the replay has rules for."""
    shop, data, ops = "shop", "data", "ops"
    docs: list[Obj] = [
        CRD,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": shop, "labels": {"team": "shop"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": data, "labels": {"team": "data"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ops}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
         "provisioner": "sandbox.migrate.dev/hostpath", "volumeBindingMode": "Immediate"},
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "shop-high"},
         "value": 1000, "globalDefault": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "log-reader"},
         "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "log-reader"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "log-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "log-agent", "namespace": ops}]},
        # shop
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": shop},
         "data": {"CLUSTER": OLD_NAME, "LOG_GROUP": f"/aws/eks/{OLD_NAME}/shop", "MODE": "production"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-db", "namespace": shop}, "type": "Opaque",
         "data": {"password": "c2VjcmV0LXBhc3N3b3Jk"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": "web", "namespace": shop, "annotations": {"eks.amazonaws.com/role-arn": OLD_ROLE}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "web", "namespace": shop},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "web", "namespace": shop},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web"},
         "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": shop}]},
        _deploy("web", shop, "registry.blue.example.com/shop/web:1.4.2", 3, serviceAccountName="web",
                priorityClassName="shop-high"),
        _deploy("cart", shop, "registry.blue.example.com/shop/cart:2.0", 2),
        _svc("web", shop), _svc("web", shop, "LoadBalancer"), _svc("cart", shop),
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": shop},
         "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [{
             "path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web",
                                                                                         "namespace": shop},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                  "minReplicas": 2, "maxReplicas": 10,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": 70}}}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": shop},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": _labels("web")}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web",
                                                                                     "namespace": shop},
         "spec": {"podSelector": {"matchLabels": _labels("web")}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": _labels("cart")}}]}]}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "blue-widget", "namespace": shop},
         "spec": {"size": 3, "color": "blue"}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "red-widget", "namespace": shop},
         "spec": {"size": 1, "color": "red"}},
        # data
        _svc("db", data, headless=True),
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": data},
         "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": _labels("db")},
                  "template": {"metadata": {"labels": _labels("db")}, "spec": {"containers": [
                      {"name": "db", "image": "registry.blue.example.com/data/postgres:16",
                       "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql"}]}]}},
                  "volumeClaimTemplates": [{"metadata": {"name": "pgdata"}, "spec": {
                      "accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                      "resources": {"requests": {"storage": "10Gi"}}}}]}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "backups", "namespace": data},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                  "resources": {"requests": {"storage": "5Gi"}}}},
        # ops
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "log-agent", "namespace": ops}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "log-agent", "namespace": ops},
         "spec": {"selector": {"matchLabels": _labels("log-agent")},
                  "template": {"metadata": {"labels": _labels("log-agent")}, "spec": {
                      "serviceAccountName": "log-agent",
                      "containers": [{"name": "agent", "image": "docker.io/fluent/fluent-bit:3.0",
                                      "args": [f"--cluster={OLD_NAME}", "--output=cloudwatch"]}]}}}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly-report", "namespace": ops},
         "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
             "restartPolicy": "OnFailure",
             "containers": [{"name": "report", "image": "registry.blue.example.com/ops/report:1"}]}}}}}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "db-migrate-v1", "namespace": ops},
         "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
             {"name": "m", "image": "registry.blue.example.com/ops/migrate:1"}]}}}},
        _deploy("hooks", ops, "registry.blue.example.com/ops/hooks:1", 1), _svc("hooks", ops),
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": "shop-policy"},
         "webhooks": [{"name": "validate.shop.example.com", "admissionReviewVersions": ["v1"],
                       "sideEffects": "None", "failurePolicy": "Fail",
                       "clientConfig": {"service": {"namespace": ops, "name": "hooks", "path": "/validate"}},
                       "rules": [{"apiGroups": ["example.com"], "apiVersions": ["v1"],
                                  "operations": ["CREATE", "UPDATE"], "resources": ["widgets"]}]}]},
    ]
    return docs


SAMPLE_TRANSFORMS: list[Obj] = [
    {"name": "registry", "registry": {"from": "registry.blue.example.com", "to": "registry.green.example.com"}},
    {"name": "storage", "storage_class": {"standard": "fast"}},
    {"name": "irsa", "role_arn": {OLD_ROLE: NEW_ROLE}},
    {"name": "cluster", "cluster_name": True},
    {"name": "replicas", "match": {"kind": "Deployment"}, "replicas": "copy-current"},
    {"name": "origin", "match": {"namespace": "shop"}, "set_annotations": {"migrate.dev/origin": OLD_NAME}},
    {"name": "web-patch", "match": {"kind": "Deployment", "namespace": "shop", "name": "web"},
     "json_patch": [{"op": "add", "path": "/spec/template/metadata/annotations",
                     "value": {"migrate.dev/replayed": "true"}}]},
]


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "CustomResourceDefinition", "StorageClass", "PriorityClass"}


def generated_crds(n: int) -> list[Obj]:
    out = []
    for i in range(n):
        kind, plural = f"Gadget{i}", f"gadget{i}s"
        out.append({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": {"name": f"{plural}.ops.example.net"},
                    "spec": {"group": "ops.example.net", "scope": "Namespaced",
                             "names": {"plural": plural, "singular": f"gadget{i}", "kind": kind},
                             "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                           "subresources": {"status": {}},
                                           "schema": {"openAPIV3Schema": {
                                               "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    return out


def large_set(namespaces: int = 10, crds: int = 5) -> list[Obj]:
    """Hundreds of objects from real manifests: the fixtures repeated across namespaces, plus operator-style
    CRDs with custom resources and several admission webhooks. (No operator bundle is available offline.)"""
    names = [f"tenant-{i:02d}" for i in range(namespaces)]
    real = [d for d in fixture_docs("microservices-demo.yaml") + fixture_docs("ingress-nginx-cloud.yaml")
            if d["kind"] not in CLUSTER_SCOPED]
    docs = [*sample_workloads(), *fixture_docs("ingress-nginx-cloud.yaml"), *generated_crds(crds),
            *spread(real, names)]
    for ns in names:
        for i in range(crds):
            docs.append({"apiVersion": "ops.example.net/v1alpha1", "kind": f"Gadget{i}",
                         "metadata": {"name": f"g{i}", "namespace": ns, "labels": {"tenant": ns}},
                         "spec": {"size": i, "nested": {"list": [1, 2, 3], "flag": True}}})
    docs.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                 "metadata": {"name": "gadget-defaults"},
                 "webhooks": [{"name": "default.gadgets.ops.example.net", "admissionReviewVersions": ["v1"],
                               "sideEffects": "None", "failurePolicy": "Ignore",
                               "clientConfig": {"service": {"namespace": "ops", "name": "hooks", "path": "/m"}},
                               "rules": [{"apiGroups": ["ops.example.net"], "apiVersions": ["*"],
                                          "operations": ["CREATE"], "resources": ["*"]}]}]})
    return docs
