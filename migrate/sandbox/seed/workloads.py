"""Sample workloads of an old ("blue") cluster: what a small product team actually runs.

Written here (not read from shared fixtures) so a fresh clone can seed without anything beside the repo.
Apply order is the list order (namespaces and CRDs first, as `kubectl apply` of a directory would need).
"""

from __future__ import annotations

import base64
from typing import Any

Obj = dict[str, Any]
APP_NAMESPACE = "shop"
INGRESS_NAMESPACE = "ingress-nginx"
INGRESS_SERVICE = "ingress-nginx-controller"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def _meta(name: str, ns: str | None = None, **labels: str) -> Obj:
    m: Obj = {"name": name, "labels": {"app.kubernetes.io/part-of": "shop", **labels} if labels else
              {"app.kubernetes.io/part-of": "shop"}}
    if ns:
        m["namespace"] = ns
    return m


def _container(name: str, image: str, port: int, **extra: Any) -> Obj:
    return {"name": name, "image": image, "ports": [{"containerPort": port, "name": "http"}],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 5}, **extra}


def _deployment(name: str, ns: str, image: str, port: int, replicas: int = 2, sa: str | None = None,
                env: list[Obj] | None = None, labels: dict[str, str] | None = None) -> Obj:
    sel = {"app": name}
    pod: Obj = {"containers": [_container(name, image, port, **({"env": env} if env else {}))]}
    if sa:
        pod["serviceAccountName"] = sa
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, ns, app=name, **(labels or {})),
            "spec": {"replicas": replicas, "selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": {**sel, **(labels or {})}}, "spec": pod}}}


def _service(name: str, ns: str, port: int, target: int, kind: str = "ClusterIP",
             selector: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ns, **(labels or {})),
            "spec": {"type": kind, "selector": selector or {"app": name},
                     "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}]}}


def ingress_controller() -> list[Obj]:
    ns = INGRESS_NAMESPACE
    labels = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
    dep = _deployment(INGRESS_SERVICE, ns, "registry.k8s.io/ingress-nginx/controller:v1.10.1", 80,
                      sa="ingress-nginx", labels=labels)
    svc = _service(INGRESS_SERVICE, ns, 80, 80, "LoadBalancer", {"app": INGRESS_SERVICE, **labels}, labels)
    svc["metadata"]["annotations"] = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"name": ns}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("ingress-nginx", ns)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta("ingress-nginx"),
         "rules": [{"apiGroups": [""], "resources": ["services", "endpoints", "secrets", "configmaps"],
                    "verbs": ["get", "list", "watch"]},
                   {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"],
                    "verbs": ["get", "list", "watch"]},
                   {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta("ingress-nginx"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ingress-nginx"},
         "subjects": [{"kind": "ServiceAccount", "name": "ingress-nginx", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(INGRESS_SERVICE, ns),
         "data": {"use-forwarded-headers": "true", "proxy-body-size": "8m"}},
        dep, svc,
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": _meta("nginx"),
         "spec": {"controller": "k8s.io/ingress-nginx"}},
        _service("ingress-nginx-controller-admission", ns, 443, 8443, selector={"app": INGRESS_SERVICE}),
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": _meta("ingress-nginx-admission"),
         "webhooks": [{"name": "validate.nginx.ingress.kubernetes.io", "admissionReviewVersions": ["v1"],
                       "sideEffects": "None", "failurePolicy": "Fail", "matchPolicy": "Equivalent",
                       "clientConfig": {"service": {"name": "ingress-nginx-controller-admission", "namespace": ns,
                                                    "path": "/networking/v1/ingresses"}},
                       "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                                  "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]}]}]},
    ]


def _crd() -> list[Obj]:
    return [{
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "featureflags.shop.example.com"},
        "spec": {"group": "shop.example.com", "scope": "Namespaced",
                 "names": {"plural": "featureflags", "singular": "featureflag", "kind": "FeatureFlag",
                           "shortNames": ["ff"]},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "required": ["enabled"], "properties": {
                                       "enabled": {"type": "boolean"}, "rollout": {"type": "integer"},
                                       "description": {"type": "string"}}}}}}}]}}]


def shop(env: str, cluster: str) -> list[Obj]:
    ns = APP_NAMESPACE
    host = f"app.{env}.sandbox.internal"
    role_arn = f"arn:aws:iam::123456789012:role/{cluster}-irsa-shop"
    flags = [("new-checkout", True, 25), ("dark-mode", False, 0)]
    secret = {"DATABASE_URL": f"postgres://shop:s3cr3t@db.{env}.sandbox.internal:5432/shop", "API_KEY": "sk-sandbox"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": "shop"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            **_meta("shop-api", ns), "annotations": {"eks.amazonaws.com/role-arn": role_arn}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta("shop-config-reader", ns),
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
                   {"apiGroups": ["shop.example.com"], "resources": ["featureflags"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta("shop-api", ns),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shop-config-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "shop-api", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("shop-config", ns),
         "data": {"LOG_LEVEL": "info", "CURRENCY": "EUR", "FEATURES": "checkout,search"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": _meta("shop-db", ns), "type": "Opaque",
         "data": {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}},
        *_crd(),
        _deployment("frontend", ns, f"{REGISTRY}/shop/frontend:1.8.2", 8080, 3,
                    env=[{"name": "API_URL", "value": "http://api.shop.svc:8080"}]),
        _deployment("api", ns, f"{REGISTRY}/shop/api:2.3.0", 8080, 2, sa="shop-api",
                    env=[{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "shop-db",
                                                                                 "key": "DATABASE_URL"}}},
                         {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "shop-config",
                                                                                 "key": "LOG_LEVEL"}}}]),
        _service("frontend", ns, 80, 8080),
        _service("api", ns, 8080, 8080),
        _service("api-public", ns, 80, 8080, "LoadBalancer", {"app": "api"}),
        _service("redis", ns, 6379, 6379, selector={"app": "redis"}),
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta("redis", ns, app="redis"),
         "spec": {"serviceName": "redis", "replicas": 1, "selector": {"matchLabels": {"app": "redis"}},
                  "template": {"metadata": {"labels": {"app": "redis"}},
                               "spec": {"containers": [{"name": "redis", "image": "redis:7.2-alpine",
                                                        "ports": [{"containerPort": 6379, "name": "redis"}],
                                                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                  "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp2",
                                                     "resources": {"requests": {"storage": "1Gi"}}}}]}},
        *kv_store(ns),
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta("nightly-report", ns),
         "spec": {"schedule": "0 2 * * *", "concurrencyPolicy": "Forbid", "jobTemplate": {"spec": {
             "backoffLimit": 2, "template": {"spec": {"restartPolicy": "OnFailure", "containers": [
                 {"name": "report", "image": f"{REGISTRY}/shop/report:0.4.1", "args": ["--since", "24h"]}]}}}}}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta("frontend", ns),
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "frontend"},
                  "minReplicas": 3, "maxReplicas": 10,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": 70}}}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta("frontend", ns),
         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "frontend"}}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta("redis-from-api", ns),
         "spec": {"podSelector": {"matchLabels": {"app": "redis"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                               "ports": [{"protocol": "TCP", "port": 6379}]}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
            **_meta("shop", ns), "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "30"}},
         "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
             {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend", "port": {"number": 80}}}},
             {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api",
                                                                           "port": {"number": 8080}}}},
             {"path": "/kv", "pathType": "Prefix", "backend": {"service": {"name": "kv",
                                                                          "port": {"number": 80}}}}]}}]}},
        *[{"apiVersion": "shop.example.com/v1", "kind": "FeatureFlag", "metadata": _meta(name, ns),
           "spec": {"enabled": enabled, "rollout": rollout, "description": f"{name} flag"}}
          for name, enabled, rollout in flags],
    ]


def kv_store(ns: str) -> list[Obj]:
    """The stateful demo: a key-value service on a 3-replica StatefulSet, one EBS volume per replica (gp3,
    the EBS CSI driver). Its internal load balancer is how another cluster reaches the writer during a cut."""
    svc = _service("kv", ns, 80, 8080, "LoadBalancer", {"app": "kv"})
    svc["metadata"]["annotations"] = {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
    return [svc, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta("kv", ns, app="kv"),
        "spec": {"serviceName": "kv", "replicas": 3, "selector": {"matchLabels": {"app": "kv"}},
                 "podManagementPolicy": "Parallel",
                 "template": {"metadata": {"labels": {"app": "kv"}},
                              "spec": {"containers": [{"name": "kv", "image": f"{REGISTRY}/shop/kv:1.2.0",
                                                       "ports": [{"containerPort": 8080, "name": "http"}],
                                                       "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                                                    "resources": {"requests": {"storage": "1Gi"}}}}]}}]


def monitoring() -> list[Obj]:
    ns = "monitoring"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("node-exporter", ns)},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta("node-exporter", ns, app="node-exporter"),
         "spec": {"selector": {"matchLabels": {"app": "node-exporter"}},
                  "template": {"metadata": {"labels": {"app": "node-exporter"}}, "spec": {
                      "serviceAccountName": "node-exporter", "hostNetwork": True,
                      "tolerations": [{"operator": "Exists"}],
                      "containers": [{"name": "node-exporter", "image": "quay.io/prometheus/node-exporter:v1.7.0",
                                      "ports": [{"containerPort": 9100, "name": "metrics"}]}]}}}},
        _service("node-exporter", ns, 9100, 9100, selector={"app": "node-exporter"}),
    ]


def storage() -> list[Obj]:
    return [{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "gp2"},
             "provisioner": "kubernetes.io/aws-ebs", "parameters": {"type": "gp2", "fsType": "ext4"},
             "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"},
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "gp3"},
             "provisioner": "ebs.csi.aws.com", "parameters": {"type": "gp3", "csi.storage.k8s.io/fstype": "ext4"},
             "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True}]


def blue_cluster(env: str, cluster: str) -> list[Obj]:
    return [*storage(), *ingress_controller(), *shop(env, cluster), *monitoring()]
