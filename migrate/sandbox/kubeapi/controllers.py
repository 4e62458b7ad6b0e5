"""Simulated controllers: after a configurable delay they write the status a real control plane would,
so readiness checks (`kubectl rollout status`, `kubectl wait`, kstatus) behave as on a real cluster."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from .api import KubeAPI, now_iso
from .pods import Pods, count_ready
from .resources import ResourceType
from .store import Bucket, Event, Obj

_WORKLOADS: set[Bucket] = {("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"),
                           ("apps", "daemonsets"), ("batch", "jobs"), ("", "services"),
                           ("", "persistentvolumeclaims"), ("", "pods"), ("", "replicationcontrollers"),
                           ("apiregistration.k8s.io", "apiservices"),
                           ("snapshot.storage.k8s.io", "volumesnapshots")}
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTPATH_PROVISIONER = "sandbox.migrate.dev/hostpath"
# (claim, its StorageClass, the nodes' zones) -> the PV's volume source and node affinity, or None to fall back
# to a hostPath volume. The sandbox wires it to moto's EBS for EKS clusters.
Provisioner = Callable[..., Obj | None]  # (claim, class, zones, snapshot id or None)
# The CSI driver's snapshot calls: create(volume handle, tags) -> snapshot id; state(snapshot id) -> its state.
Snapshotter = tuple[Callable[[str, dict[str, str]], str], Callable[[str], str]]
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_OWNER_BUCKETS: dict[str, Bucket] = {"ReplicaSet": ("apps", "replicasets"), "StatefulSet": ("apps", "statefulsets"),
                                     "DaemonSet": ("apps", "daemonsets"),
                                     "ReplicationController": ("", "replicationcontrollers")}


def _hash(value: Any, n: int = 10) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:n]


def _conditions(old: list[Obj] | None, wanted: list[tuple[str, str, str, str]], with_update: bool = False) -> list[Obj]:
    """Keep a condition object (and its timestamps) when nothing about it changed: reconciles stay no-ops."""
    by_type = {c.get("type"): c for c in old or []}
    out = []
    now = now_iso()
    for ctype, status, reason, message in wanted:
        prev = by_type.get(ctype)
        if prev and (prev.get("status"), prev.get("reason"), prev.get("message")) == (status, reason, message):
            out.append(prev)
            continue
        c: Obj = {"type": ctype, "status": status, "reason": reason, "message": message,
                  "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status else now}
        if with_update:
            c["lastUpdateTime"] = now
        out.append(c)
    return out


_REVISION = "deployment.kubernetes.io/revision"


def _revision(obj: Obj | None) -> int:
    try:
        return int(((obj or {}).get("metadata", {}).get("annotations") or {}).get(_REVISION, 0))
    except ValueError:
        return 0


def _nonzero(d: Obj) -> Obj:
    # Real status structs omit zero counters (`omitempty`).
    return {k: v for k, v in d.items() if v not in (0, None)}


class Controllers:
    def __init__(self, api: KubeAPI, delay: float, cluster_name: str = "sandbox") -> None:
        self.api = api
        self.delay = delay
        self.cluster_name = cluster_name
        self._heap: list[tuple[float, int, tuple[str, Bucket, str, str]]] = []
        self._queued: set[tuple[str, Bucket, str, str]] = set()
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.pods = Pods(api, self._rt, cluster_name)
        self.provision: Provisioner | None = None
        self.snapshotter: Snapshotter | None = None
        api.store.subscribe(self._on_event)
        api.faults.subscribe(self._on_faults_changed)

    # ------------------------------------------------------------------ queue

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kubeapi-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _schedule(self, item: tuple[str, Bucket, str, str], delay: float) -> None:
        with self._cond:
            if item in self._queued:
                return
            self._queued.add(item)
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), item))
            self._cond.notify_all()

    def _on_event(self, ev: Event) -> None:
        meta = ev.obj["metadata"]
        if ev.type == "DELETED":
            if ev.bucket == ("", "pods"):
                # A deleted pod is replaced by its controller, as on a real cluster.
                for ref in meta.get("ownerReferences") or []:
                    bucket = _OWNER_BUCKETS.get(str(ref.get("kind")))
                    if ref.get("controller") and bucket is not None:
                        self._schedule(("reconcile", bucket, ev.namespace, str(ref.get("name"))), self.delay)
            return
        if ev.bucket == ("", "namespaces"):
            if meta.get("deletionTimestamp"):
                self._schedule(("ns-finalize", ev.bucket, "", meta["name"]), self.delay)
            elif ev.type == "ADDED":
                self._schedule(("ns-init", ev.bucket, "", meta["name"]), 0)
        elif ev.bucket in _WORKLOADS:
            self._schedule(("reconcile", ev.bucket, ev.namespace, meta["name"]), self.delay)
        if ev.bucket in (("", "services"), ("", "pods")):
            # An aggregated API is available once its service has ready pods behind it.
            for svc in self.api.store.objects(("apiregistration.k8s.io", "apiservices")):
                if ((svc.get("spec") or {}).get("service") or {}).get("namespace") == ev.namespace:
                    self._schedule(("reconcile", ("apiregistration.k8s.io", "apiservices"), "",
                                    svc["metadata"]["name"]), self.delay)
        elif ev.bucket == ("", "nodes") and ev.type == "ADDED":
            # A new node gets every DaemonSet's pod.
            for ds in self.api.store.objects(("apps", "daemonsets")):
                self._schedule(("reconcile", ("apps", "daemonsets"), ds["metadata"]["namespace"],
                                ds["metadata"]["name"]), self.delay)

    def _on_faults_changed(self, keys: list[tuple[str, str, str]]) -> None:
        for resource, ns, name in keys:
            bucket = next(((rt.group, rt.plural) for rt in self.api.registry.all() if rt.plural == resource), None)
            if bucket in _WORKLOADS:
                self._schedule(("reconcile", bucket, ns, name), 0)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stop:
                    return
                _, _, item = heapq.heappop(self._heap)
                self._queued.discard(item)
                self._busy = True
            try:
                self._run(item)
            except Exception:  # a controller bug must not kill the loop; the object just stays unreconciled
                pass
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _rt(self, bucket: Bucket) -> ResourceType:
        for rt in self.api.registry.all():
            if (rt.group, rt.plural) == bucket:
                return rt
        raise KeyError(bucket)

    def _run(self, item: tuple[str, Bucket, str, str]) -> None:
        action, bucket, ns, name = item
        if action == "ns-init":
            self._namespace_init(name)
            return
        if action == "ns-finalize":
            self._namespace_finalize(name)
            return
        obj = self.api.store.get(bucket, ns, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        rt = self._rt(bucket)
        fault = self.api.faults.workload_fault(rt.plural, obj)
        handler: Callable[[ResourceType, Obj, str | None], None] | None = getattr(
            self, f"_reconcile_{rt.plural}", None)
        if handler is not None:
            handler(rt, obj, fault)

    def _set_status(self, rt: ResourceType, obj: Obj, build: Callable[[Obj], Obj]) -> None:
        meta = obj["metadata"]

        def mutate(o: Obj) -> None:
            o["status"] = build(o.get("status") or {})

        self.api.update_internal(rt, meta.get("namespace", ""), meta["name"], mutate)

    # ------------------------------------------------------------------ bootstrap

    def bootstrap(self) -> None:
        ns_rt = self._rt(("", "namespaces"))
        for ns in SYSTEM_NAMESPACES:
            self.api.create_internal(ns_rt, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        svc = self._rt(("", "services"))
        self.api.create_internal(svc, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}})
        self.api.create_internal(self._rt(("", "nodes")), {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"{self.cluster_name}-node-1", "labels": {
                "kubernetes.io/hostname": f"{self.cluster_name}-node-1", "kubernetes.io/os": "linux"}},
            "spec": {}})
        self.api.update_internal(self._rt(("", "nodes")), "", f"{self.cluster_name}-node-1", lambda o: o.update(
            status={"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                    "message": "kubelet is posting ready status"}],
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.10"}]}))
        self.api.update_internal(self._rt(("storage.k8s.io", "storageclasses")), "", "standard", lambda o: None)
        self.api.create_internal(self._rt(("storage.k8s.io", "storageclasses")), {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": HOSTPATH_PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate"})
        self._local_apiservices()

    def _local_apiservices(self) -> None:
        """The APIServices a real server registers for the groups it serves itself (Local, automanaged)."""
        rt = self._rt(("apiregistration.k8s.io", "apiservices"))
        for group, version in sorted({(t.group, t.version) for t in self.api.registry.all() if not t.is_custom}):
            self.api.create_internal(rt, {
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": f"{version}.{group}",
                             "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                "spec": {"group": group, "version": version, "groupPriorityMinimum": 18000,
                         "versionPriority": 15}}, "kube-apiserver")

    def _namespace_init(self, ns: str) -> None:
        sa = self._rt(("", "serviceaccounts"))
        cm = self._rt(("", "configmaps"))
        if self.api.store.get(("", "serviceaccounts"), ns, "default") is None:
            self.api.create_internal(sa, {"apiVersion": "v1", "kind": "ServiceAccount",
                                          "metadata": {"name": "default", "namespace": ns}}, "kube-controller-manager")
        if self.api.store.get(("", "configmaps"), ns, "kube-root-ca.crt") is None:
            self.api.create_internal(cm, {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                                                       "annotations": {"kubernetes.io/description": "Contains a CA "
                                                                       "bundle for verifying the API server."}},
                                          "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nsandbox\n"
                                                             "-----END CERTIFICATE-----\n"}}, "kube-controller-manager")

    def _namespace_finalize(self, ns: str) -> None:
        remaining = 0
        for rt in self.api.registry.all():
            if not rt.namespaced:
                continue
            for obj in self.api.store.objects((rt.group, rt.plural), ns):
                self.api.delete_internal(rt, ns, obj["metadata"]["name"])
                if self.api.store.get((rt.group, rt.plural), ns, obj["metadata"]["name"]) is not None:
                    remaining += 1
        if remaining:
            self._schedule(("ns-finalize", ("", "namespaces"), "", ns), max(self.delay, 0.05))
            return
        self.api.store.remove(("", "namespaces"), "", ns)

    # ------------------------------------------------------------------ workloads

    def _reconcile_deployments(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        spec = obj.get("spec") or {}
        r = int(spec.get("replicas", 1))
        rs = self._ensure_replicaset(obj, r, fault)
        # The ReplicaSet's pods now, rather than on its own reconcile: the Deployment's status counts them.
        ready = count_ready(self.pods.scale("ReplicaSet", rs, r, not fault)) if rs is not None else 0
        if fault == "failed-rollout":
            progressing = ("Progressing", "False", "ProgressDeadlineExceeded",
                           f'ReplicaSet "{obj["metadata"]["name"]}" has timed out progressing.')
        elif fault:
            progressing = ("Progressing", "True", "ReplicaSetUpdated",
                           f'ReplicaSet "{obj["metadata"]["name"]}" is progressing.')
        else:
            progressing = ("Progressing", "True", "NewReplicaSetAvailable",
                           f'ReplicaSet "{obj["metadata"]["name"]}" has successfully progressed.')
        available = ("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.") \
            if ready >= r or not fault else \
            ("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        gen = obj["metadata"].get("generation", 1)

        def build(old: Obj) -> Obj:
            return {**_nonzero({"observedGeneration": gen, "replicas": r, "updatedReplicas": r,
                                "readyReplicas": ready, "availableReplicas": ready,
                                "unavailableReplicas": r - ready}),
                    "conditions": _conditions(old.get("conditions"), [available, progressing], with_update=True)}

        self._set_status(rt, obj, build)

    def _ensure_replicaset(self, dep: Obj, replicas: int, fault: str | None) -> Obj | None:
        meta = dep["metadata"]
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        h = _hash(template)
        rs_name = f"{meta['name']}-{h}"[:253]
        rs_rt = self._rt(("apps", "replicasets"))
        ns = meta["namespace"]
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"], "uid": meta["uid"],
                 "controller": True, "blockOwnerDeletion": True}
        others = 0  # the highest revision among the deployment's other ReplicaSets
        for rs in self.api.store.objects(("apps", "replicasets"), ns):
            refs = rs["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == meta["uid"] for r in refs) or rs["metadata"]["name"] == rs_name:
                continue
            others = max(others, _revision(rs))
            if (rs.get("spec") or {}).get("replicas", 0) != 0:
                def zero(o: Obj) -> None:
                    o["spec"]["replicas"] = 0
                self.api.update_internal(rs_rt, ns, rs["metadata"]["name"], zero, subresource="")
        existing = self.api.store.get(("apps", "replicasets"), ns, rs_name)
        # As the deployment controller does: the current template's ReplicaSet carries the highest revision
        # (a rollback to an older template moves that ReplicaSet to the top), and so does the Deployment.
        revision = _revision(existing) if existing is not None and _revision(existing) > others else others + 1
        if existing is not None and _revision(existing) != revision:
            def bump(o: Obj) -> None:
                o["metadata"].setdefault("annotations", {})[_REVISION] = str(revision)
            self.api.update_internal(rs_rt, ns, rs_name, bump, subresource="")
        if (meta.get("annotations") or {}).get(_REVISION) != str(revision):
            def mark(o: Obj) -> None:
                o["metadata"].setdefault("annotations", {})[_REVISION] = str(revision)
            self.api.update_internal(self._rt(("apps", "deployments")), ns, meta["name"], mark, subresource="")
        if existing is None:
            tmeta = dict(template.get("metadata") or {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), "pod-template-hash": h}
            selector = json.loads(json.dumps(spec.get("selector") or {}))
            selector.setdefault("matchLabels", {})["pod-template-hash"] = h
            annotations = {"deployment.kubernetes.io/desired-replicas": str(replicas), _REVISION: str(revision)}
            if fault:
                annotations["sandbox.migrate.dev/fault"] = fault
            self.api.create_internal(rs_rt, {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": tmeta["labels"],
                             "annotations": annotations, "ownerReferences": [owner]},
                "spec": {"replicas": replicas, "selector": selector, "template": {**template, "metadata": tmeta}}})
            self.pods.event(dep, "ScalingReplicaSet", f"Scaled up replica set {rs_name} to {replicas}",
                            "deployment-controller")
        elif (existing.get("spec") or {}).get("replicas") != replicas:
            def scale(o: Obj) -> None:
                o["spec"]["replicas"] = replicas
            before = int((existing.get("spec") or {}).get("replicas", 0))
            self.api.update_internal(rs_rt, ns, rs_name, scale, subresource="")
            self.pods.event(dep, "ScalingReplicaSet", f"Scaled {'up' if replicas > before else 'down'} replica "
                            f"set {rs_name} from {before} to {replicas}", "deployment-controller")
        return self.api.store.get(("apps", "replicasets"), ns, rs_name)

    def _owner_fault(self, obj: Obj, fault: str | None) -> str | None:
        """A ReplicaSet of a Deployment is as healthy as its Deployment: the fault is set on (and cleared
        from) the Deployment, whatever the ReplicaSet's copy of the annotation says."""
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Deployment" and ref.get("controller"):
                dep = self.api.store.get(("apps", "deployments"), obj["metadata"]["namespace"], ref["name"])
                if dep is not None:
                    return self.api.faults.workload_fault("deployments", dep)
        return fault

    def _reconcile_replicasets(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        self._replicas(rt, obj, "ReplicaSet", self._owner_fault(obj, fault))

    def _reconcile_replicationcontrollers(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        self._replicas(rt, obj, "ReplicationController", fault)

    def _replicas(self, rt: ResourceType, obj: Obj, kind: str, fault: str | None) -> None:
        """ReplicaSet and ReplicationController: ``spec.replicas`` pods, and the status counted from them."""
        r = int((obj.get("spec") or {}).get("replicas", 1))
        pods = self.pods.scale(kind, obj, r, not fault)
        n, ready = len(pods), count_ready(pods)
        gen = obj["metadata"].get("generation", 1)
        self._set_status(rt, obj, lambda old: {"replicas": n, **_nonzero({
            "fullyLabeledReplicas": n, "readyReplicas": ready, "availableReplicas": ready}),
            "observedGeneration": gen})

    def _reconcile_statefulsets(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        spec = obj.get("spec") or {}
        r = int(spec.get("replicas", 1))
        ready = count_ready(self.pods.ordinals(obj, r, not fault))
        rev = f"{obj['metadata']['name']}-{_hash(spec.get('template') or {})}"
        gen = obj["metadata"].get("generation", 1)
        self._set_status(rt, obj, lambda old: {
            "observedGeneration": gen, "replicas": r, **_nonzero({
                "readyReplicas": ready, "currentReplicas": r, "updatedReplicas": r, "availableReplicas": ready}),
            "currentRevision": rev if not fault else old.get("currentRevision", rev), "updateRevision": rev,
            "collisionCount": 0})

    def _reconcile_daemonsets(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        pods = self.pods.per_node(obj, not fault)
        n, ready = len(pods), count_ready(pods)
        gen = obj["metadata"].get("generation", 1)
        self._set_status(rt, obj, lambda old: {
            "currentNumberScheduled": n, "numberMisscheduled": 0, "desiredNumberScheduled": n,
            "numberReady": ready, "observedGeneration": gen, "updatedNumberScheduled": n,
            **_nonzero({"numberAvailable": ready, "numberUnavailable": n - ready})})

    def _reconcile_jobs(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or []):
            return  # finished: its pods stay as they ended
        completions = int(spec.get("completions") or 1)
        parallelism = int(spec.get("parallelism") or 1)
        if fault == "failed-rollout":
            self.pods.scale("Job", obj, 1, False, phase="Failed")
            self.pods.event(obj, "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                            "job-controller", "Warning")
        elif fault:
            self.pods.scale("Job", obj, parallelism, False)
        else:
            self.pods.scale("Job", obj, completions, False, phase="Succeeded")
            self.pods.event(obj, "Completed", "Job completed", "job-controller")
        now = now_iso()

        def build(old: Obj) -> Obj:
            start = old.get("startTime", now)
            if fault == "failed-rollout":
                return {"startTime": start, "failed": int(spec.get("backoffLimit", 6)) + 1, "ready": 0,
                        "conditions": _conditions(None, [("Failed", "True", "BackoffLimitExceeded",
                                                          "Job has reached the specified backoff limit")])}
            if fault:
                return {"startTime": start, "active": parallelism, "ready": 0}
            conds = _conditions(None, [("Complete", "True", "", "")])
            for c in conds:
                c.pop("reason")
                c.pop("message")
                c["lastProbeTime"] = now
            return {"startTime": start, "completionTime": now, "succeeded": completions, "ready": 0,
                    "conditions": conds, "uncountedTerminatedPods": {}}

        self._set_status(rt, obj, build)

    def _reconcile_apiservices(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        """As the aggregator's availability controller: Local, or a Service with ready pods behind it."""
        ref = (obj.get("spec") or {}).get("service")
        if not ref:
            wanted = ("Available", "True", "Local", "Local APIServices are always available")
        else:
            ns, name = ref.get("namespace", ""), ref.get("name", "")
            svc = self.api.store.get(("", "services"), ns, name)
            selector = ((svc or {}).get("spec") or {}).get("selector") or {}
            ready = [p for p in self.api.store.objects(("", "pods"), ns)
                     if selector and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
                     and count_ready([p])]
            if svc is None:
                wanted = ("Available", "False", "ServiceNotFound", f'service/{name} in "{ns}" is not present')
            elif not ready:
                wanted = ("Available", "False", "MissingEndpoints",
                          f'endpoints for service/{name} in "{ns}" have no addresses with port name "https"')
            else:
                wanted = ("Available", "True", "Passed", "all checks passed")
        self._set_status(rt, obj, lambda old: {"conditions": _conditions(old.get("conditions"), [wanted])})

    def _reconcile_services(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        spec = obj.get("spec") or {}
        if spec.get("type") != "LoadBalancer" or fault:
            return
        meta = obj["metadata"]
        host = f"{meta['name']}-{meta['uid'].replace('-', '')[:16]}.{meta['namespace']}.{self.cluster_name}" \
               ".elb.sandbox.local"

        def build(old: Obj) -> Obj:
            return {**old, "loadBalancer": {"ingress": [{"hostname": host}]}}

        self._set_status(rt, obj, build)

    def node_zones(self) -> list[str]:
        """The zones the cluster's nodes are in (``topology.kubernetes.io/zone``), sorted."""
        return sorted({z for n in self.api.store.objects(("", "nodes"))
                       if (z := ((n["metadata"].get("labels") or {}).get(ZONE_LABEL)))})

    def _reconcile_volumesnapshots(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        """The snapshot controller and the CSI driver's snapshotter together: a dynamic snapshot of a claim
        gets a content and a cloud snapshot; a pre-provisioned one binds to its content. Ready once the
        cloud snapshot completes (re-checked until then)."""
        st = obj.get("status") or {}
        if st.get("readyToUse") or self.snapshotter is None or fault:
            return
        create, state = self.snapshotter
        meta, spec = obj["metadata"], obj.get("spec") or {}
        ns, src = meta["namespace"], spec.get("source") or {}
        contents = (SNAPSHOT_GROUP, "volumesnapshotcontents")
        content_rt = self._rt(contents)
        size = None
        if src.get("persistentVolumeClaimName"):
            name = str(st.get("boundVolumeSnapshotContentName") or f"snapcontent-{meta['uid']}")
            pvc = self.api.store.get(("", "persistentvolumeclaims"), ns, str(src["persistentVolumeClaimName"]))
            pv = self.api.store.get(("", "persistentvolumes"), "", str(((pvc or {}).get("spec") or {})
                                                                      .get("volumeName") or ""))
            csi = ((pv or {}).get("spec") or {}).get("csi") or {}
            size = (((pv or {}).get("spec") or {}).get("capacity") or {}).get("storage")
            if not csi.get("volumeHandle"):
                return  # no bound CSI volume: the snapshot stays unready, as on a real cluster
            if self.api.store.get(contents, "", name) is None:
                sid = create(str(csi["volumeHandle"]), {"CSIVolumeSnapshotName": f"snapshot-{meta['uid']}"})
                self.api.create_internal(content_rt, {
                    "apiVersion": f"{SNAPSHOT_GROUP}/v1", "kind": "VolumeSnapshotContent", "metadata": {"name": name},
                    "spec": {"deletionPolicy": "Delete", "driver": csi.get("driver"),
                             "source": {"volumeHandle": csi["volumeHandle"]},
                             "volumeSnapshotClassName": spec.get("volumeSnapshotClassName"),
                             "volumeSnapshotRef": {"kind": "VolumeSnapshot", "apiVersion": f"{SNAPSHOT_GROUP}/v1",
                                                   "namespace": ns, "name": meta["name"], "uid": meta["uid"]}}},
                    "snapshot-controller")
                self.api.update_internal(content_rt, "", name, lambda o: o.update(
                    status={"snapshotHandle": sid, "readyToUse": False}), "csi-snapshotter")
        elif src.get("volumeSnapshotContentName"):
            name = str(src["volumeSnapshotContentName"])
        else:
            return
        content = self.api.store.get(contents, "", name)
        if content is None:
            return  # a pre-provisioned snapshot whose content does not exist (yet)
        sid = str((content.get("status") or {}).get("snapshotHandle")
                  or ((content.get("spec") or {}).get("source") or {}).get("snapshotHandle") or "")
        ready = state(sid) == "completed"
        self.api.update_internal(content_rt, "", name, lambda o: o.update(
            status={**(o.get("status") or {}), "snapshotHandle": sid, "readyToUse": ready}), "csi-snapshotter")
        self._set_status(rt, obj, lambda old: {**old, "boundVolumeSnapshotContentName": name, "readyToUse": ready,
                                               **({"restoreSize": size} if size else {})})
        if not ready:
            self._schedule(("reconcile", (SNAPSHOT_GROUP, "volumesnapshots"), ns, meta["name"]), 0.2)

    def _snapshot_of(self, ns: str, spec: Obj) -> tuple[bool, str | None]:
        """(wait, snapshot id): a claim restored from a VolumeSnapshot waits until the snapshot is ready."""
        ds = spec.get("dataSource") or spec.get("dataSourceRef") or {}
        if ds.get("kind") != "VolumeSnapshot":
            return False, None
        vs = self.api.store.get((SNAPSHOT_GROUP, "volumesnapshots"), ns, str(ds.get("name")))
        st = (vs or {}).get("status") or {}
        content = self.api.store.get((SNAPSHOT_GROUP, "volumesnapshotcontents"), "",
                                     str(st.get("boundVolumeSnapshotContentName") or "")) if st.get("readyToUse") \
            else None
        if content is None:
            return True, None
        return False, str((content.get("status") or {}).get("snapshotHandle") or "") or None

    def _reconcile_persistentvolumeclaims(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        if fault or (obj.get("status") or {}).get("phase") == "Bound":
            return
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        wait, snapshot_id = self._snapshot_of(meta["namespace"], spec)
        if wait:
            self._schedule(("reconcile", ("", "persistentvolumeclaims"), meta["namespace"], meta["name"]), 0.3)
            return
        pv_name = spec.get("volumeName") or f"pvc-{meta['uid']}"
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        modes = spec.get("accessModes") or ["ReadWriteOnce"]
        sc_name = spec.get("storageClassName") or "standard"
        pv_rt = self._rt(("", "persistentvolumes"))
        if self.api.store.get(("", "persistentvolumes"), "", pv_name) is None:
            if spec.get("volumeName"):
                return  # pre-bound to a volume that does not exist (yet): stays Pending, as on a real cluster
            sc = self.api.store.get(("storage.k8s.io", "storageclasses"), "", sc_name)
            made = self.provision(obj, sc, self.node_zones(), snapshot_id) if self.provision and sc else None
            made_by = str((sc or {}).get("provisioner") or HOSTPATH_PROVISIONER) if made else HOSTPATH_PROVISIONER
            source = made or {"hostPath": {"path": f"/tmp/sandbox/{pv_name}"}}
            self.api.create_internal(pv_rt, {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": made_by}},
                "spec": {"capacity": {"storage": size}, "accessModes": modes,
                         "persistentVolumeReclaimPolicy": str((sc or {}).get("reclaimPolicy") or "Delete"),
                         "storageClassName": sc_name, **source,
                         "claimRef": {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                                      "name": meta["name"], "uid": meta["uid"], "apiVersion": "v1"}}},
                "persistentvolume-controller")
            self.api.update_internal(pv_rt, "", pv_name, lambda o: o.update(status={"phase": "Bound"}),
                                     "persistentvolume-controller")
        else:
            def claim(o: Obj) -> None:  # a pre-bound volume: the controller completes its claimRef
                ref = o["spec"].setdefault("claimRef", {})
                ref.update({"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"],
                            "uid": meta["uid"], "apiVersion": "v1"})
                o["status"] = {"phase": "Bound"}
            self.api.update_internal(pv_rt, "", pv_name, claim, "persistentvolume-controller")
        pv = self.api.store.get(("", "persistentvolumes"), "", pv_name) or {}
        provisioner = (pv["metadata"].get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") \
            if pv else None

        def bind(o: Obj) -> None:
            o["spec"]["volumeName"] = pv_name
            o["spec"].setdefault("storageClassName", sc_name)
            ann = o["metadata"].setdefault("annotations", {})
            ann["pv.kubernetes.io/bind-completed"] = "yes"
            if not spec.get("volumeName"):
                ann["pv.kubernetes.io/bound-by-controller"] = "yes"
            if provisioner:
                ann["volume.kubernetes.io/storage-provisioner"] = provisioner
            o["status"] = {"phase": "Bound", "accessModes": modes,
                           "capacity": {"storage": ((pv.get("spec") or {}).get("capacity") or {}).get("storage", size)}}

        self.api.update_internal(rt, meta["namespace"], meta["name"], bind, "persistentvolume-controller", "")

    def _reconcile_pods(self, rt: ResourceType, obj: Obj, fault: str | None) -> None:
        if (obj.get("status") or {}).get("phase"):
            return
        now = now_iso()
        ready = "False" if fault else "True"
        containers = (obj.get("spec") or {}).get("containers") or []
        self._set_status(rt, obj, lambda old: {
            "phase": "Pending" if fault else "Running", "hostIP": "10.0.0.10", "podIP": "10.244.0.10",
            "startTime": now, "qosClass": "BestEffort",
            "conditions": [{"type": t, "status": s, "lastTransitionTime": now, "lastProbeTime": None}
                           for t, s in (("Initialized", "True"), ("Ready", ready), ("ContainersReady", ready),
                                        ("PodScheduled", "True"))],
            "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "imageID": "",
                                   "ready": not fault, "restartCount": 0, "started": not fault,
                                   "state": {"running": {"startedAt": now}} if not fault else
                                   {"waiting": {"reason": "ContainerCreating"}}} for c in containers]})
