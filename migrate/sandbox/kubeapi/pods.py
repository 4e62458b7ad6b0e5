"""Workload pods and StatefulSet claims, as the ReplicaSet, StatefulSet, DaemonSet, ReplicationController and
Job controllers and the scheduler make them, with the Events they record.

Pods carry the controller's ownerReference, a node (round robin over the cluster's nodes; one per node for a
DaemonSet), a phase and conditions. A workload's status is then counted from its pods. A StatefulSet's pods
are named by ordinal and get one claim per volumeClaimTemplate, ``<template>-<sts>-<ordinal>``, which the
PVC controller binds; claims outlive their pods (the default Retain policy), as on a real cluster.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Callable

from .api import KubeAPI, now_iso
from .resources import ResourceType
from .store import Obj, clone

# The letters Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_OWNER_KINDS = {"ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
                "ReplicationController": "v1", "Job": "batch/v1", "Deployment": "apps/v1"}
# The event source of each owner's controller, as kube-controller-manager names them.
_CONTROLLER = {"ReplicaSet": "replicaset-controller", "StatefulSet": "statefulset-controller",
               "DaemonSet": "daemonset-controller", "ReplicationController": "replication-controller",
               "Job": "job-controller"}


def _suffix(n: int = 5) -> str:
    # Random, as the API server's generateName: a replacement pod never reuses the name of the one it replaces.
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def owner_ref(kind: str, obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {"apiVersion": _OWNER_KINDS[kind], "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controlled_by(obj: Obj, uid: str) -> bool:
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences") or [])


class Pods:
    def __init__(self, api: KubeAPI, rt_of: Callable[[tuple[str, str]], ResourceType], cluster_name: str) -> None:
        self.api = api
        self._rt = rt_of
        self.cluster_name = cluster_name
        self._seq = itertools.count()

    # ------------------------------------------------------------------ events

    def event(self, involved: Obj, reason: str, message: str, component: str, kind_: str = "Normal") -> None:
        """A core/v1 Event about ``involved``, as a controller's event recorder writes it."""
        meta = involved["metadata"]
        now = now_iso()
        ns = meta.get("namespace") or "default"
        seed = f"{meta.get('uid')}{reason}{message}{next(self._seq)}"
        name = f"{meta['name']}.{hashlib.sha256(seed.encode()).hexdigest()[:16]}"
        self.api.create_internal(self._rt(("", "events")), {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                               "namespace": meta.get("namespace"), "name": meta["name"], "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": kind_, "count": 1,
            "source": {"component": component}, "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": component, "reportingInstance": ""}, component)

    # ------------------------------------------------------------------ pods

    def nodes(self) -> list[str]:
        names = sorted(n["metadata"]["name"] for n in self.api.store.objects(("", "nodes")))
        return names or [f"{self.cluster_name}-node-1"]

    def owned(self, ns: str, uid: str) -> list[Obj]:
        return [p for p in self.api.store.objects(("", "pods"), ns) if controlled_by(p, uid)]

    def _status(self, pod: Obj, ready: bool, phase: str | None = None) -> Obj:
        old = pod.get("status") or {}
        start = old.get("startTime") or now_iso()
        phase = phase or ("Running" if ready else "Pending")
        flag = "True" if ready else "False"
        containers = (pod.get("spec") or {}).get("containers") or []
        conds = {"PodScheduled": "True", "Initialized": "True", "ContainersReady": flag, "Ready": flag}
        if phase == "Succeeded":
            conds.update(ContainersReady="False", Ready="False")
        old_conds = {c.get("type"): c for c in old.get("conditions") or []}
        conditions = []
        for ctype, status in conds.items():
            prev = old_conds.get(ctype)
            conditions.append(prev if prev and prev.get("status") == status else
                              {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": start})

        def state(c: Obj) -> Obj:
            if phase == "Succeeded":
                return {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": start, "finishedAt": start}}
            return {"running": {"startedAt": start}} if ready else {"waiting": {"reason": "ContainerCreating"}}

        return {"phase": phase, "conditions": conditions, "hostIP": "10.0.0.10", "podIP": old.get("podIP") or
                f"10.244.{next(self._seq) % 250}.{next(self._seq) % 250 + 2}", "startTime": start,
                "qosClass": "BestEffort",
                "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "imageID": "",
                                       "ready": ready and phase == "Running", "restartCount": 0,
                                       "started": ready and phase == "Running", "state": state(c)}
                                      for c in containers]}

    def set_status(self, pod: Obj, ready: bool, phase: str | None = None) -> Obj:
        """Write the pod's status as its kubelet would; returns the pod as stored now."""
        meta = pod["metadata"]
        want = self._status(pod, ready, phase)
        old = pod.get("status") or {}

        def shape(st: Obj) -> tuple[object, ...]:
            return (st.get("phase"), tuple((c.get("type"), c.get("status")) for c in st.get("conditions") or []))

        if shape(old) != shape(want):  # unchanged: a reconcile stays a no-op
            self.api.update_internal(self._rt(("", "pods")), meta["namespace"], meta["name"],
                                     lambda o: o.update(status=self._status(o, ready, phase)), "kubelet")
        return self.api.store.get(("", "pods"), meta["namespace"], meta["name"]) or pod

    def create(self, owner_kind: str, owner: Obj, template: Obj, name: str, node: str, *,
               extra_labels: dict[str, str] | None = None, extra_spec: Obj | None = None) -> Obj | None:
        meta = owner["metadata"]
        ns = meta["namespace"]
        tmeta = template.get("metadata") or {}
        spec = clone(template.get("spec") or {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec["nodeName"] = node
        spec.update(extra_spec or {})
        pod: Obj = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns,
                            "labels": {**(tmeta.get("labels") or {}), **(extra_labels or {})},
                            **({"annotations": dict(tmeta["annotations"])} if tmeta.get("annotations") else {}),
                            "ownerReferences": [owner_ref(owner_kind, owner)]},
               "spec": spec}
        if owner_kind != "StatefulSet":
            pod["metadata"]["generateName"] = name[: name.rfind("-") + 1]
        created = self.api.create_internal(self._rt(("", "pods")), pod)
        if created is None:
            return None
        self.event(owner, "SuccessfulCreate", f"Created pod: {name}", _CONTROLLER[owner_kind])
        self.event(created, "Scheduled", f"Successfully assigned {ns}/{name} to {node}", "default-scheduler")
        # The callers set the status (the kubelet's part) right after, for new and existing pods alike.
        return self.api.store.get(("", "pods"), ns, name)

    def delete(self, owner_kind: str, owner: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        self.api.delete_internal(self._rt(("", "pods")), meta["namespace"], meta["name"])
        self.event(owner, "SuccessfulDelete", f"Deleted pod: {meta['name']}", _CONTROLLER[owner_kind])

    def scale(self, owner_kind: str, owner: Obj, replicas: int, ready: bool, *, phase: str | None = None) -> list[Obj]:
        """ReplicaSet, ReplicationController and Job: ``replicas`` pods with generated names."""
        meta = owner["metadata"]
        template = (owner.get("spec") or {}).get("template") or {}
        pods = sorted(self.owned(meta["namespace"], meta["uid"]), key=lambda p: p["metadata"]["name"])
        for extra in pods[replicas:]:
            self.delete(owner_kind, owner, extra)
        pods = pods[:replicas]
        nodes = self.nodes()
        labels = {"controller-uid": meta["uid"], "job-name": meta["name"],
                  "batch.kubernetes.io/controller-uid": meta["uid"], "batch.kubernetes.io/job-name": meta["name"]} \
            if owner_kind == "Job" else None
        while len(pods) < replicas:
            name = f"{meta['name']}-{_suffix()}"[:253]
            if self.api.store.get(("", "pods"), meta["namespace"], name) is not None:
                continue
            made = self.create(owner_kind, owner, template, name, nodes[len(pods) % len(nodes)],
                               extra_labels=labels)
            if made is None:
                break
            pods.append(made)
        return [self.set_status(p, ready, phase) for p in pods]

    def per_node(self, owner: Obj, ready: bool) -> list[Obj]:
        """DaemonSet: one pod on each node."""
        meta = owner["metadata"]
        template = (owner.get("spec") or {}).get("template") or {}
        nodes = self.nodes()
        pods = self.owned(meta["namespace"], meta["uid"])
        by_node = {(p.get("spec") or {}).get("nodeName"): p for p in pods}
        for p in pods:
            if (p.get("spec") or {}).get("nodeName") not in nodes:
                self.delete("DaemonSet", owner, p)
        out = []
        for node in nodes:
            pod = by_node.get(node) or self.create("DaemonSet", owner, template, f"{meta['name']}-{_suffix()}", node)
            if pod is not None:
                out.append(self.set_status(pod, ready))
        return out

    def ordinals(self, owner: Obj, replicas: int, ready: bool) -> list[Obj]:
        """StatefulSet: pods ``<name>-0`` … by ordinal, each with its claims, created if missing."""
        meta = owner["metadata"]
        spec = owner.get("spec") or {}
        template = spec.get("template") or {}
        ns, name = meta["namespace"], meta["name"]
        for p in self.owned(ns, meta["uid"]):
            ordinal = p["metadata"]["name"].rsplit("-", 1)[-1]
            if not ordinal.isdigit() or int(ordinal) >= replicas:
                self.delete("StatefulSet", owner, p)
        nodes = self.nodes()
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        out = []
        for i in range(replicas):
            pod_name = f"{name}-{i}"
            claims = self._claims(owner, i, selector)
            pod = self.api.store.get(("", "pods"), ns, pod_name)
            if pod is None:
                volumes = [v for v in (template.get("spec") or {}).get("volumes") or []
                           if v.get("name") not in claims]
                volumes += [{"name": t, "persistentVolumeClaim": {"claimName": c}} for t, c in claims.items()]
                extra_spec: Obj = {"hostname": pod_name, **({"subdomain": spec["serviceName"]}
                                                          if spec.get("serviceName") else {})}
                if volumes:
                    extra_spec["volumes"] = volumes
                pod = self.create("StatefulSet", owner, template, pod_name, nodes[i % len(nodes)],
                                  extra_labels={"statefulset.kubernetes.io/pod-name": pod_name,
                                                "apps.kubernetes.io/pod-index": str(i)},
                                  extra_spec=extra_spec)
            if pod is not None:
                out.append(self.set_status(pod, ready))
        return out

    def _claims(self, owner: Obj, ordinal: int, labels: dict[str, str]) -> dict[str, str]:
        """template name -> claim name, creating the claims that do not exist yet."""
        meta = owner["metadata"]
        out = {}
        for tmpl in (owner.get("spec") or {}).get("volumeClaimTemplates") or []:
            tname = (tmpl.get("metadata") or {}).get("name")
            if not tname:
                continue
            claim = f"{tname}-{meta['name']}-{ordinal}"
            out[tname] = claim
            if self.api.store.get(("", "persistentvolumeclaims"), meta["namespace"], claim) is not None:
                continue
            tspec = clone(tmpl.get("spec") or {})
            tspec.setdefault("volumeMode", "Filesystem")
            made = self.api.create_internal(self._rt(("", "persistentvolumeclaims")), {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": meta["namespace"],
                             "labels": {**((tmpl.get("metadata") or {}).get("labels") or {}), **labels}},
                "spec": tspec}, _CONTROLLER["StatefulSet"])
            if made is not None:
                self.event(owner, "SuccessfulCreate", f"create Claim {claim} Pod {meta['name']}-{ordinal} in "
                           f"StatefulSet {meta['name']} success", _CONTROLLER["StatefulSet"])
        return out


def count_ready(pods: list[Obj]) -> int:
    return sum(1 for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                      for c in (p.get("status") or {}).get("conditions") or []))


__all__ = ["Pods", "controlled_by", "count_ready", "owner_ref"]
