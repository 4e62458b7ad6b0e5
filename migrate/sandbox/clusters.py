"""The emulated clusters of the sandbox: one Kubernetes API emulator plus one data plane per cluster.

Clusters are created by the cloud emulators (EKS hook, GKE emulator), never directly by the toolkit.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .blockstore import BlockStore
from .dataplane import DataPlane
from .faults import SandboxFaults
from .kubeapi import KubeAPIServer
from .kubeapi.controllers import Provisioner, Snapshotter

CONTROLLER_DELAY = 0.3  # seconds before workloads turn ready: short, but readiness must really be waited for


@dataclass
class EmulatedCluster:
    name: str
    cloud: str  # aws | gcp
    version: str
    api: KubeAPIServer
    dataplane: DataPlane
    kubeconfig: Path

    def add_nodes(self, group: str, count: int, label: str = "eks.amazonaws.com/nodegroup",
                  zones: list[str] | None = None) -> None:
        """Register ``count`` Ready nodes for a node group, as kubelets joining would (through the public API).
        Nodes spread over the group's zones (its subnets'), and carry the zone labels the CSI drivers use."""
        for i in range(1, count + 1):
            name = f"{self.name}-{group}-{i}"
            labels = {label: group, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
            if zones:
                zone = zones[(i - 1) % len(zones)]
                labels.update({"topology.kubernetes.io/zone": zone, "topology.ebs.csi.aws.com/zone": zone,
                               "topology.gke.io/zone": zone, "topology.kubernetes.io/region": zone[:-2]
                               if label.startswith("cloud.google.com") else zone[:-1]})
            node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": {}}
            status = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                      "message": "kubelet is posting ready status"}]}
            try:
                _request(f"{self.api.url}/api/v1/nodes", "POST", node)
            except urllib.error.HTTPError as e:
                if e.code != 409:  # already joined: idempotent
                    raise
            patch = {"status": status}
            _request(f"{self.api.url}/api/v1/nodes/{name}/status", "PATCH", patch,
                     content_type="application/merge-patch+json")

    def install(self, objs: list[dict[str, Any]]) -> None:
        """Create kube-system add-ons as the cloud's addon manager would (idempotent: 409 is fine)."""
        for o in objs:
            group_version = o["apiVersion"]
            base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
            plural = o["kind"].lower() + "s"
            ns = o["metadata"]["namespace"]
            try:
                _request(f"{self.api.url}{base}/namespaces/{ns}/{plural}", "POST", o)
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise

    def info(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "version": self.version, "api": self.api.url,
                "dataplane": self.dataplane.url, "kubeconfig": str(self.kubeconfig)}


def _request(url: str, method: str, body: dict[str, Any], content_type: str = "application/json") -> None:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": content_type})
    urllib.request.urlopen(req, timeout=10).close()


class ClusterRegistry:
    def __init__(self, faults: SandboxFaults, kubeconfig_dir: Path, controller_delay: float = CONTROLLER_DELAY) -> None:
        self.faults = faults
        self.kubeconfig_dir = kubeconfig_dir
        self.controller_delay = controller_delay
        self._clusters: dict[str, EmulatedCluster] = {}
        self._lock = threading.Lock()
        self.on_change: list[Callable[[], None]] = []
        # Set by the daemon: EBS-backed dynamic provisioning for EKS clusters, and the volumes' bytes.
        self.ebs_provisioner: Provisioner | None = None
        self.ebs_deprovisioner: Callable[[dict[str, Any]], None] | None = None
        self.ebs_snapshotter: Snapshotter | None = None
        self.pd_provisioner: Provisioner | None = None  # PD-backed dynamic provisioning for GKE clusters
        self.blocks: BlockStore | None = None

    def create(self, name: str, cloud: str, version: str | None) -> EmulatedCluster:
        with self._lock:
            if name in self._clusters:  # idempotent: a re-create of a known name keeps its state
                return self._clusters[name]
            ver = _minor(version)
            api = KubeAPIServer(version=ver, controller_delay=self.controller_delay, cluster_name=name).start()
            for w in self.faults.workloads_for(name):  # faults may be set before the cluster exists
                api.faults.never_ready(w.resource, w.namespace, w.name)
            if cloud == "aws" and self.ebs_provisioner is not None:
                api.controllers.provision = self.ebs_provisioner
                api.controllers.snapshotter = self.ebs_snapshotter
            if cloud == "gcp" and self.pd_provisioner is not None:
                api.controllers.provision = self.pd_provisioner
            plane = DataPlane(name, api, self.faults, self.blocks, self._dataplane_of).start()
            kc = api.write_kubeconfig(self.kubeconfig_dir / f"{name}.yaml")
            cluster = EmulatedCluster(name, cloud, ver, api, plane, kc)
            self._clusters[name] = cluster
        self._changed()
        return cluster

    def delete(self, name: str, *, teardown: bool = True) -> None:
        """``teardown``: the cluster is deleted through the cloud API (its Delete volumes go with it), not only
        stopped with the sandbox."""
        with self._lock:
            cluster = self._clusters.pop(name, None)
        if cluster is not None:
            if teardown and cluster.cloud == "aws" and self.ebs_deprovisioner is not None:
                for pv in cluster.api.api.store.objects(("", "persistentvolumes")):
                    if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy", "Delete") == "Delete":
                        self.ebs_deprovisioner(pv)
            cluster.dataplane.stop()
            cluster.api.stop()
            cluster.kubeconfig.unlink(missing_ok=True)
            self._changed()

    def get(self, name: str) -> EmulatedCluster | None:
        return self._clusters.get(name)

    def all(self) -> list[EmulatedCluster]:
        with self._lock:
            return list(self._clusters.values())

    def owner_of(self, hostname: str) -> EmulatedCluster | None:
        """The cluster whose LoadBalancer has this hostname: how DNS answers reach a data plane."""
        host = hostname.rstrip(".").lower()
        for c in self.all():
            if host in c.dataplane.lookup.lb_hostnames():
                return c
        return None

    def _dataplane_of(self, hostname: str) -> DataPlane | None:
        owner = self.owner_of(hostname)
        return owner.dataplane if owner is not None else None

    def apply_workload_fault(self, cluster: str, resource: str, namespace: str, name: str) -> None:
        c = self.get(cluster)
        if c is not None:
            c.api.faults.never_ready(resource, namespace, name)

    def stop_all(self) -> None:
        for c in self.all():
            self.delete(c.name, teardown=False)

    def _changed(self) -> None:
        for fn in list(self.on_change):
            fn()


def _minor(version: str | None) -> str:
    """EKS/GKE versions look like 1.29 or 1.29.3-gke.100; the emulator wants the minor, 1.29."""
    if not version:
        return "1.29"
    parts = version.split("-")[0].split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else version
