"""GKE: a REST emulator of the ClusterManager v1 subset the toolkit uses.

google-cloud-container reaches it with ``transport="rest"`` and ``client_options={"api_endpoint": URL}``
(an ``http://`` URL), plus anonymous credentials. Served:
- ``projects.locations.clusters``: create, get, list, delete (long-running: an Operation is returned);
- ``projects.locations.clusters.nodePools``: create, get, list, delete;
- ``projects.locations.operations``: get.

A created cluster is PROVISIONING, with its Kubernetes API emulator already started, until its operation
is DONE (``provision_delay`` seconds), then RUNNING, with its node pools' Ready nodes and the ``kube-dns``
Deployment in kube-system (GKE's core DNS add-on). Its ``endpoint`` is ``127.0.0.1:PORT`` (GKE gives a
bare address) and, unlike GKE, it is served over plain http: endpoints.json says ``"cluster_scheme": "http"``.

As on GKE, a cluster runs one operation at a time: deleting it, or creating or deleting a node pool,
while one runs is refused with 400 FAILED_PRECONDITION. The ``gke_create_error`` fault (faults.py) makes
a create's operation end DONE with an error and the cluster go to ERROR with GKE's ``statusMessage``.
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .clusters import ClusterRegistry
from .compute import ROUTES as COMPUTE_ROUTES
from .compute import Compute, ComputeError
from .httpbase import BackgroundServer, QuietHandler

Obj = dict[str, Any]
_PARENT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(_PARENT + r"/clusters$"), "create_cluster"),
    ("GET", re.compile(_PARENT + r"/clusters$"), "list_clusters"),
    ("GET", re.compile(_PARENT + r"/clusters/(?P<cluster>[^/:]+)$"), "get_cluster"),
    ("DELETE", re.compile(_PARENT + r"/clusters/(?P<cluster>[^/:]+)$"), "delete_cluster"),
    ("POST", re.compile(_PARENT + r"/clusters/(?P<cluster>[^/]+)/nodePools$"), "create_node_pool"),
    ("GET", re.compile(_PARENT + r"/clusters/(?P<cluster>[^/]+)/nodePools$"), "list_node_pools"),
    ("GET", re.compile(_PARENT + r"/clusters/(?P<cluster>[^/]+)/nodePools/(?P<pool>[^/:]+)$"), "get_node_pool"),
    ("DELETE", re.compile(_PARENT + r"/clusters/(?P<cluster>[^/]+)/nodePools/(?P<pool>[^/:]+)$"),
     "delete_node_pool"),
    ("GET", re.compile(_PARENT + r"/operations/(?P<operation>[^/:]+)$"), "get_operation"),
]
FAKE_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nsandbox\n-----END CERTIFICATE-----\n").decode()


class GkeError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Op:
    doc: Obj
    done_at: float
    on_done: Any = None
    finished: bool = False
    target: str = ""  # projects/P/locations/L/clusters/C[/nodePools/N]
    error: Obj | None = None  # google.rpc.Status the operation ends with


@dataclass
class GkeState:
    clusters: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    operations: dict[tuple[str, str, str], _Op] = field(default_factory=dict)


class GkeEmulator:
    def __init__(self, registry: ClusterRegistry, provision_delay: float = 0.5) -> None:
        self.registry = registry
        self.provision_delay = provision_delay
        self.state = GkeState()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        gke = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                try:
                    body = self.read_json() if self.command in ("POST", "PUT", "PATCH") else {}
                    self.send_json(200, gke.dispatch(self.command, self.path.split("?")[0], body))
                except (GkeError, ComputeError) as e:
                    self.send_json(e.code, {"error": {"code": e.code, "message": e.message, "status": e.status}})
                except (ValueError, KeyError, TypeError) as e:
                    self.send_json(400, {"error": {"code": 400, "message": f"invalid request: {e}",
                                                   "status": "INVALID_ARGUMENT"}})

            do_GET = do_POST = do_DELETE = _any

        self._server = BackgroundServer(Handler, name="gke")
        # Compute Engine's disks and snapshots, on the same port (the PD CSI driver's and the cut's calls).
        self.compute = Compute(registry.blocks, registry.faults) if registry.blocks is not None else None

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> GkeEmulator:
        self._server.start()
        if self.compute is not None:
            self.compute.base_url = self.url
        return self

    def stop(self) -> None:
        self._server.stop()

    # ------------------------------------------------------------------ routing

    def dispatch(self, method: str, path: str, body: Obj) -> Obj:
        if path.startswith("/compute/") and self.compute is not None:
            for verb, rx, handler in COMPUTE_ROUTES:
                m = rx.match(path)
                if m and verb == method:
                    with self._lock:
                        return getattr(self.compute, handler)(body=body, **m.groupdict())
        for verb, rx, handler in _ROUTES:
            m = rx.match(path)
            if m and verb == method:
                with self._lock:
                    self._tick()
                    return getattr(self, handler)(body=body, **m.groupdict())
        raise GkeError(404, "NOT_FOUND", f"no such method: {method} {path}")

    def _tick(self) -> None:
        """Finish due operations (lazily, on the next request: no timer threads to clean up)."""
        now = time.monotonic()
        for op in self.state.operations.values():
            if not op.finished and op.done_at <= now:
                op.finished = True
                op.doc.update(status="DONE", endTime=_now(), progress={"metrics": [{"name": "done", "intValue": 1}]})
                if op.error is not None:
                    op.doc.update(error=op.error, statusMessage=op.error.get("message", ""))
                if op.on_done is not None:
                    op.on_done()

    def _busy(self, project: str, location: str, cluster: str) -> None:
        """GKE runs one operation per cluster: refuse another while one is still running."""
        path = f"projects/{project}/locations/{location}/clusters/{cluster}"
        for op in self.state.operations.values():
            if not op.finished and (op.target == path or op.target.startswith(path + "/")):
                raise GkeError(400, "FAILED_PRECONDITION",
                               f"Cluster is running incompatible operation {op.doc['name']}.")

    def _cluster(self, project: str, location: str, cluster: str) -> Obj:
        c = self.state.clusters.get((project, location, cluster))
        if c is None:
            raise GkeError(404, "NOT_FOUND", f"Not found: projects/{project}/locations/{location}/clusters/{cluster}.")
        return c

    def _operation(self, project: str, location: str, kind: str, target: str, on_done: Any = None,
                   delay: float | None = None, error: Obj | None = None) -> Obj:
        name = f"operation-{int(time.time() * 1000)}-{next(self._ids):04d}"
        doc = {"name": name, "zone": location, "operationType": kind, "status": "RUNNING",
               "selfLink": f"{self.url}/v1/projects/{project}/locations/{location}/operations/{name}",
               "targetLink": f"{self.url}/v1/{target}", "startTime": _now()}
        self.state.operations[(project, location, name)] = _Op(
            doc, time.monotonic() + (self.provision_delay if delay is None else delay), on_done, target=target,
            error=error)
        self._tick()
        return dict(doc)

    # ------------------------------------------------------------------ clusters

    def create_cluster(self, project: str, location: str, body: Obj) -> Obj:
        spec = body.get("cluster") or {}
        name = str(spec.get("name") or "")
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?", name):
            raise GkeError(400, "INVALID_ARGUMENT", f"Invalid cluster name {name!r}.")
        if (project, location, name) in self.state.clusters:
            raise GkeError(409, "ALREADY_EXISTS", f"Already exists: projects/{project}/locations/{location}/"
                                                  f"clusters/{name}.")
        version = str(spec.get("initialClusterVersion") or "1.29")
        emu = self.registry.create(name, "gcp", version)
        path = f"projects/{project}/locations/{location}/clusters/{name}"
        pools = spec.get("nodePools") or [{"name": "default-pool",
                                           "initialNodeCount": int(spec.get("initialNodeCount") or 3)}]
        cluster = {**spec, "name": name, "location": location, "zone": location, "status": "PROVISIONING",
                   "endpoint": f"127.0.0.1:{emu.api.port}", "currentMasterVersion": f"{emu.version}.0-gke.100",
                   "initialClusterVersion": version, "currentNodeVersion": f"{emu.version}.0-gke.100",
                   "masterAuth": {"clusterCaCertificate": FAKE_CA}, "createTime": _now(),
                   "selfLink": f"{self.url}/v1/{path}", "id": f"{next(self._ids):032x}",
                   "network": spec.get("network", "default"), "subnetwork": spec.get("subnetwork", "default"),
                   "nodePools": [self._pool(project, location, name, p, "PROVISIONING") for p in pools]}
        self.state.clusters[(project, location, name)] = cluster
        fault = self.registry.faults.gke_create_error(name)

        def running() -> None:
            cluster["status"] = "RUNNING"
            emu.install([_kube_dns()])  # GKE's addon manager, once the control plane runs
            for p in cluster["nodePools"]:
                p["status"] = "RUNNING"
                emu.add_nodes(str(p["name"]), int(p.get("initialNodeCount") or 1),
                              label="cloud.google.com/gke-nodepool",
                              zones=_zones(location, p.get("locations") or spec.get("locations")))

        def failed() -> None:
            assert fault is not None
            cluster.update(status="ERROR", statusMessage=fault.message,
                           conditions=[{"code": "GCE_QUOTA_EXCEEDED", "message": fault.message,
                                        "canonicalCode": "RESOURCE_EXHAUSTED"}])
            for p in cluster["nodePools"]:
                p["status"] = "ERROR"

        if fault is not None:
            return self._operation(project, location, "CREATE_CLUSTER", path, failed,
                                   error={"code": fault.code, "message": fault.message, "details": []})
        return self._operation(project, location, "CREATE_CLUSTER", path, running)

    def _pool(self, project: str, location: str, cluster: str, spec: Obj, status: str) -> Obj:
        name = str(spec.get("name") or "")
        if not name:
            raise GkeError(400, "INVALID_ARGUMENT", "Node pool name is required.")
        return {**spec, "name": name, "status": status, "initialNodeCount": int(spec.get("initialNodeCount") or 1),
                "config": spec.get("config") or {"machineType": "e2-standard-4", "diskSizeGb": 100},
                "version": "1.29.0-gke.100",
                "selfLink": f"{self.url}/v1/projects/{project}/locations/{location}/clusters/{cluster}"
                            f"/nodePools/{name}"}

    def get_cluster(self, project: str, location: str, cluster: str, body: Obj) -> Obj:
        return self._cluster(project, location, cluster)

    def list_clusters(self, project: str, location: str, body: Obj) -> Obj:
        return {"clusters": [c for (p, loc, _), c in sorted(self.state.clusters.items())
                             if p == project and location in (loc, "-")]}

    def delete_cluster(self, project: str, location: str, cluster: str, body: Obj) -> Obj:
        c = self._cluster(project, location, cluster)
        self._busy(project, location, cluster)
        c["status"] = "STOPPING"
        key = (project, location, cluster)

        def gone() -> None:
            self.state.clusters.pop(key, None)
            self.registry.delete(cluster)

        return self._operation(project, location, "DELETE_CLUSTER",
                               f"projects/{project}/locations/{location}/clusters/{cluster}", gone)

    # ------------------------------------------------------------------ node pools

    def create_node_pool(self, project: str, location: str, cluster: str, body: Obj) -> Obj:
        c = self._cluster(project, location, cluster)
        pool = self._pool(project, location, cluster, body.get("nodePool") or {}, "PROVISIONING")
        if any(p["name"] == pool["name"] for p in c["nodePools"]):
            raise GkeError(409, "ALREADY_EXISTS", f"Node pool {pool['name']} already exists.")
        self._busy(project, location, cluster)
        c["nodePools"].append(pool)

        def running() -> None:
            pool["status"] = "RUNNING"
            emu = self.registry.get(cluster)
            if emu is not None:  # the pool's kubelets join the cluster
                emu.add_nodes(str(pool["name"]), int(pool["initialNodeCount"]), label="cloud.google.com/gke-nodepool")

        return self._operation(project, location, "CREATE_NODE_POOL",
                               f"projects/{project}/locations/{location}/clusters/{cluster}/nodePools/{pool['name']}",
                               running)

    def _find_pool(self, c: Obj, pool: str) -> Obj:
        for p in c["nodePools"]:
            if p["name"] == pool:
                return p
        raise GkeError(404, "NOT_FOUND", f"Not found: node pool {pool!r}.")

    def get_node_pool(self, project: str, location: str, cluster: str, pool: str, body: Obj) -> Obj:
        return self._find_pool(self._cluster(project, location, cluster), pool)

    def list_node_pools(self, project: str, location: str, cluster: str, body: Obj) -> Obj:
        return {"nodePools": self._cluster(project, location, cluster)["nodePools"]}

    def delete_node_pool(self, project: str, location: str, cluster: str, pool: str, body: Obj) -> Obj:
        c = self._cluster(project, location, cluster)
        p = self._find_pool(c, pool)
        self._busy(project, location, cluster)
        p["status"] = "STOPPING"

        def gone() -> None:
            if p in c["nodePools"]:
                c["nodePools"].remove(p)
            emu = self.registry.get(cluster)
            if emu is not None:  # its nodes leave the cluster
                for i in range(1, int(p.get("initialNodeCount") or 1) + 1):
                    _delete(f"{emu.api.url}/api/v1/nodes/{cluster}-{pool}-{i}")

        return self._operation(project, location, "DELETE_NODE_POOL",
                               f"projects/{project}/locations/{location}/clusters/{cluster}/nodePools/{pool}", gone)

    # ------------------------------------------------------------------ operations

    def get_operation(self, project: str, location: str, operation: str, body: Obj) -> Obj:
        op = self.state.operations.get((project, location, operation))
        if op is None:
            raise GkeError(404, "NOT_FOUND", f"Operation {operation!r} not found.")
        return dict(op.doc)


def _zones(location: str, locations: Any) -> list[str]:
    """A pool's zones: its own or the cluster's `locations`, else the zonal location, else the region's a-c."""
    if locations:
        return [str(z) for z in locations]
    return [location] if re.search(r"-[a-z]$", location) else [f"{location}-{z}" for z in "abc"]


def _kube_dns() -> Obj:
    labels = {"k8s-app": "kube-dns"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {**labels,
                                                                                   "addonmanager.kubernetes.io/mode":
                                                                                   "Reconcile"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "kubedns", "image": "gke.gcr.io/k8s-dns-kube-dns:1.23.0-gke.9",
                          "ports": [{"name": "dns", "containerPort": 10053, "protocol": "UDP"}]}]}}}}


def _delete(url: str) -> None:
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).close()
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
