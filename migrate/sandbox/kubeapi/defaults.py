"""The defaulting a real API server applies on write, for the fields clients and the toolkit read back."""

from __future__ import annotations

import threading
from typing import Any

_POD_TEMPLATE_OWNERS = {("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"),
                        ("apps", "DaemonSet"), ("batch", "Job"), ("", "ReplicationController")}


def _container(c: dict[str, Any]) -> None:
    image = str(c.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    if "imagePullPolicy" not in c:
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def pod_spec(spec: dict[str, Any], restart_default: str | None = "Always") -> None:
    if restart_default:
        spec.setdefault("restartPolicy", restart_default)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _container(c)


class IPAllocator:
    """Cluster IPs from 10.96.0.0/12 and node ports from 30000-32767, never reused within a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_ip = 10
        self._next_port = 30000

    def cluster_ip(self) -> str:
        with self._lock:
            n = self._next_ip
            self._next_ip += 1
        # 10.96.0.0/12 holds 2^20 addresses; the offset is spread over the last three octets.
        return f"10.{96 + (n >> 16)}.{(n >> 8) & 0xFF}.{n & 0xFF}"

    def node_port(self) -> int:
        with self._lock:
            p = self._next_port
            self._next_port = 30000 + (self._next_port - 30000 + 1) % 2768
        return p


def apply_defaults(group: str, kind: str, obj: dict[str, Any], ips: IPAllocator) -> None:
    spec = obj.get("spec")
    meta = obj.setdefault("metadata", {})
    if (group, kind) in _POD_TEMPLATE_OWNERS and isinstance(spec, dict):
        tmpl_spec = (spec.get("template") or {}).get("spec")
        if isinstance(tmpl_spec, dict):
            pod_spec(tmpl_spec, None if kind == "Job" else "Always")
    if group == "apps" and isinstance(spec, dict):
        if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            spec.setdefault("replicas", 1)
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
        elif kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        elif kind == "DaemonSet":
            spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                               "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    elif group == "batch" and kind == "Job" and isinstance(spec, dict):
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        if not spec.get("manualSelector") and meta.get("uid"):
            # The Job controller's labels; replaying them unchanged is a known pitfall (velero #6711).
            uid, name = meta["uid"], meta.get("name", "")
            labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                      "controller-uid": uid, "job-name": name}
            spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
            tmeta = spec.setdefault("template", {}).setdefault("metadata", {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
    elif group == "batch" and kind == "CronJob" and isinstance(spec, dict):
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
    elif group == "" and kind == "Pod" and isinstance(spec, dict):
        pod_spec(spec)
    elif group == "" and kind == "Service":
        _service(obj, ips)
    elif group == "" and kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif group == "" and kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif group == "" and kind == "PersistentVolumeClaim" and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")


def _service(obj: dict[str, Any], ips: IPAllocator) -> None:
    spec = obj.setdefault("spec", {})
    stype = spec.setdefault("type", "ClusterIP")
    if stype != "ExternalName":
        spec.setdefault("sessionAffinity", "None")
        if not spec.get("clusterIP"):
            spec["clusterIP"] = ips.cluster_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec["clusterIP"] != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            continue
        p.setdefault("protocol", "TCP")
        if "port" in p:
            p.setdefault("targetPort", p["port"])
        if stype in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
            p["nodePort"] = ips.node_port()
    if stype in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    obj.setdefault("status", {}).setdefault("loadBalancer", {})
