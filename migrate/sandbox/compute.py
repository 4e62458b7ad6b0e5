"""Compute Engine v1: the persistent-disk subset the volume cut and the emulated PD CSI driver use.

Served on the GKE emulator's port (google-cloud-compute's REST transport with ``api_endpoint`` = its URL):
- ``zones/Z/disks``: insert (empty, or from ``sourceSnapshot``), get, list, delete;
- ``zones/Z/disks/D/createSnapshot``;
- ``global/snapshots``: get, list, delete;
- ``zones/Z/operations/O`` and ``global/operations/O``: get.

Operations are DONE at once; a snapshot then reads ``CREATING`` for SNAPSHOT_LATENCY (or as the
``snapshot_pending`` fault says) before ``READY``, so callers must poll its status, as on GCE. Every disk and
snapshot is a file of the BlockStore: a snapshot copies the disk's (a point in time), a disk from a snapshot
materialises it. Names are unique per zone (disks) and per project (snapshots): a second insert of a name is
409 ALREADY_EXISTS, which is what makes the toolkit's creates idempotent.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .blockstore import GIB, SNAPSHOT_LATENCY, BlockStore
from .faults import SandboxFaults

Obj = dict[str, Any]
_P = r"/compute/v1/projects/(?P<project>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(_P + r"/zones/(?P<zone>[^/]+)/disks$"), "insert_disk"),
    ("GET", re.compile(_P + r"/zones/(?P<zone>[^/]+)/disks$"), "list_disks"),
    ("GET", re.compile(_P + r"/zones/(?P<zone>[^/]+)/disks/(?P<disk>[^/]+)$"), "get_disk"),
    ("DELETE", re.compile(_P + r"/zones/(?P<zone>[^/]+)/disks/(?P<disk>[^/]+)$"), "delete_disk"),
    ("POST", re.compile(_P + r"/zones/(?P<zone>[^/]+)/disks/(?P<disk>[^/]+)/createSnapshot$"), "create_snapshot"),
    ("GET", re.compile(_P + r"/global/snapshots$"), "list_snapshots"),
    ("GET", re.compile(_P + r"/global/snapshots/(?P<snapshot>[^/]+)$"), "get_snapshot"),
    ("DELETE", re.compile(_P + r"/global/snapshots/(?P<snapshot>[^/]+)$"), "delete_snapshot"),
    ("GET", re.compile(_P + r"/zones/(?P<zone>[^/]+)/operations/(?P<operation>[^/]+)$"), "get_operation"),
    ("GET", re.compile(_P + r"/global/operations/(?P<operation>[^/]+)$"), "get_operation"),
]
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


class ComputeError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "-00:00"


def disk_handle(project: str, zone: str, name: str) -> str:
    """The PD CSI driver's volumeHandle, also the disk's key in the BlockStore."""
    return f"projects/{project}/zones/{zone}/disks/{name}"


@dataclass
class _Snapshot:
    doc: Obj
    done_at: float


@dataclass
class ComputeState:
    disks: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    snapshots: dict[tuple[str, str], _Snapshot] = field(default_factory=dict)
    operations: dict[str, Obj] = field(default_factory=dict)


class Compute:
    def __init__(self, store: BlockStore, faults: SandboxFaults, base_url: str = "") -> None:
        self.store = store
        self.faults = faults
        self.base_url = base_url
        self.state = ComputeState()
        self._ids = itertools.count(1000)

    def _link(self, path: str) -> str:
        return f"{self.base_url}/compute/v1/{path}"

    def _op(self, project: str, kind: str, target: str, zone: str | None = None) -> Obj:
        name = f"operation-{next(self._ids)}"
        where = f"projects/{project}/zones/{zone}" if zone else f"projects/{project}/global"
        doc = {"kind": "compute#operation", "id": str(next(self._ids)), "name": name, "operationType": kind,
               "status": "DONE", "progress": 100, "targetLink": self._link(target), "insertTime": _now(),
               "startTime": _now(), "endTime": _now(), "selfLink": self._link(f"{where}/operations/{name}"),
               **({"zone": self._link(f"projects/{project}/zones/{zone}")} if zone else {})}
        self.state.operations[name] = doc
        return doc

    # ------------------------------------------------------------------ disks

    def create_disk(self, project: str, zone: str, name: str, size_gb: int, *, snapshot: str | None = None,
                    labels: dict[str, str] | None = None, disk_type: str = "pd-balanced") -> Obj:
        if not _NAME.fullmatch(name):
            raise ComputeError(400, "INVALID_ARGUMENT", f"Invalid value for field 'resource.name': '{name}'.")
        if (project, zone, name) in self.state.disks:
            raise ComputeError(409, "ALREADY_EXISTS",
                               f"The resource '{disk_handle(project, zone, name)}' already exists")
        source = None
        if snapshot:
            source = self._snapshot(project, snapshot.rsplit("/", 1)[-1])
            if self._status(source) != "READY":
                raise ComputeError(400, "FAILED_PRECONDITION", f"The snapshot '{snapshot}' is not ready")
            size_gb = max(size_gb, int(source.doc["diskSizeGb"]))
        handle = disk_handle(project, zone, name)
        doc = {"kind": "compute#disk", "id": str(next(self._ids)), "name": name, "sizeGb": str(size_gb),
               "zone": self._link(f"projects/{project}/zones/{zone}"), "status": "READY",
               "selfLink": self._link(handle), "creationTimestamp": _now(), "labels": dict(labels or {}),
               "type": self._link(f"projects/{project}/zones/{zone}/diskTypes/{disk_type}")}
        if source is not None:
            doc.update(sourceSnapshot=source.doc["selfLink"], sourceSnapshotId=source.doc["id"])
            self.store.create_volume(handle, size_gb, source.doc["_key"])
        else:
            self.store.create_volume(handle, size_gb, None)
        self.state.disks[(project, zone, name)] = doc
        return doc

    def insert_disk(self, project: str, zone: str, body: Obj) -> Obj:
        self.create_disk(project, zone, str(body.get("name") or ""), int(body.get("sizeGb") or 10),
                         snapshot=body.get("sourceSnapshot"), labels=body.get("labels"),
                         disk_type=str(body.get("type") or "pd-balanced").rsplit("/", 1)[-1])
        return self._op(project, "insert", f"projects/{project}/zones/{zone}/disks/{body.get('name')}", zone)

    def _disk(self, project: str, zone: str, disk: str) -> Obj:
        doc = self.state.disks.get((project, zone, disk))
        if doc is None:
            raise ComputeError(404, "NOT_FOUND", f"The resource '{disk_handle(project, zone, disk)}' was not found")
        return doc

    def get_disk(self, project: str, zone: str, disk: str, body: Obj) -> Obj:
        return self._disk(project, zone, disk)

    def list_disks(self, project: str, zone: str, body: Obj) -> Obj:
        return {"kind": "compute#diskList", "items": [d for (p, z, _), d in sorted(self.state.disks.items())
                                                      if (p, z) == (project, zone)]}

    def delete_disk(self, project: str, zone: str, disk: str, body: Obj) -> Obj:
        self._disk(project, zone, disk)
        del self.state.disks[(project, zone, disk)]
        self.store.remove(self.store.volume(disk_handle(project, zone, disk)))
        return self._op(project, "delete", disk_handle(project, zone, disk), zone)

    # ------------------------------------------------------------------ snapshots

    def create_snapshot(self, project: str, zone: str, disk: str, body: Obj) -> Obj:
        d = self._disk(project, zone, disk)
        name = str(body.get("name") or "")
        if not _NAME.fullmatch(name):
            raise ComputeError(400, "INVALID_ARGUMENT", f"Invalid value for field 'resource.name': '{name}'.")
        if (project, name) in self.state.snapshots:
            raise ComputeError(409, "ALREADY_EXISTS",
                               f"The resource 'projects/{project}/global/snapshots/{name}' already exists")
        key = f"pd-{project}-{name}"
        self.store.take_snapshot(disk_handle(project, zone, disk), key)
        path = f"projects/{project}/global/snapshots/{name}"
        doc = {"kind": "compute#snapshot", "id": str(next(self._ids)), "name": name, "diskSizeGb": d["sizeGb"],
               "sourceDisk": d["selfLink"], "sourceDiskId": d["id"], "selfLink": self._link(path),
               "creationTimestamp": _now(), "labels": dict(body.get("labels") or {}),
               "storageLocations": list(body.get("storageLocations") or [zone.rsplit("-", 1)[0]]),
               "storageBytes": str(int(d["sizeGb"]) * GIB // 64), "_key": key}
        seconds = self.faults.snapshot_seconds(SNAPSHOT_LATENCY)
        self.state.snapshots[(project, name)] = _Snapshot(doc, time.monotonic() + seconds if seconds >= 0
                                                           else float("inf"))
        return self._op(project, "createSnapshot", disk_handle(project, zone, disk), zone)

    def _snapshot(self, project: str, name: str) -> _Snapshot:
        s = self.state.snapshots.get((project, name))
        if s is None:
            raise ComputeError(404, "NOT_FOUND", f"The resource 'projects/{project}/global/snapshots/{name}' was "
                                                 "not found")
        return s

    def _status(self, s: _Snapshot) -> str:
        if s.done_at == float("inf") and self.faults.snapshot_pending is None:
            s.done_at = time.monotonic()  # a snapshot held for ever completes once the fault is cleared
        return "READY" if time.monotonic() >= s.done_at else "CREATING"

    def _public(self, s: _Snapshot) -> Obj:
        return {**{k: v for k, v in s.doc.items() if not k.startswith("_")}, "status": self._status(s)}

    def get_snapshot(self, project: str, snapshot: str, body: Obj) -> Obj:
        return self._public(self._snapshot(project, snapshot))

    def list_snapshots(self, project: str, body: Obj) -> Obj:
        return {"kind": "compute#snapshotList",
                "items": [self._public(s) for (p, _), s in sorted(self.state.snapshots.items()) if p == project]}

    def delete_snapshot(self, project: str, snapshot: str, body: Obj) -> Obj:
        s = self._snapshot(project, snapshot)
        del self.state.snapshots[(project, snapshot)]
        self.store.remove(self.store.snapshot(s.doc["_key"]))
        return self._op(project, "delete", f"projects/{project}/global/snapshots/{snapshot}")

    def get_operation(self, project: str, operation: str, body: Obj, zone: str | None = None) -> Obj:
        op = self.state.operations.get(operation)
        if op is None:
            raise ComputeError(404, "NOT_FOUND", f"The resource 'operations/{operation}' was not found")
        return op


def pd_provisioner(compute: Compute, project: str, location: str) -> Any:
    """Dynamic provisioning for `pd.csi.storage.gke.io` StorageClasses on GKE clusters: a compute disk in a
    zone of the nodes (by claim ordinal), or from a VolumeSnapshot's PD snapshot."""
    import zlib

    from .blockstore import size_gib

    def provision(pvc: Obj, sc: Obj, zones: list[str], snapshot_id: str | None = None) -> Obj | None:
        if sc.get("provisioner") != "pd.csi.storage.gke.io":
            return None
        meta = pvc["metadata"]
        found = re.search(r"-(\d+)$", meta["name"])
        n = int(found.group(1)) if found else zlib.crc32(meta["name"].encode())
        zone = zones[n % len(zones)] if zones else f"{location}-a"
        request = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        name = f"pvc-{meta['uid']}"
        compute.create_disk(project, zone, name, size_gib(request), snapshot=snapshot_id,
                            labels={"kubernetes-io-created-for-pvc-name": meta["name"][:63]},
                            disk_type=str((sc.get("parameters") or {}).get("type") or "pd-balanced"))
        return {"csi": {"driver": "pd.csi.storage.gke.io", "volumeHandle": disk_handle(project, zone, name),
                        "fsType": (sc.get("parameters") or {}).get("csi.storage.k8s.io/fstype") or "ext4"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.gke.io/zone", "operator": "In", "values": [zone]}]}]}}}

    return provision
