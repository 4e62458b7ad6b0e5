"""EBS volumes and snapshots with bytes: moto keeps their metadata, this module keeps their data.

Each volume and each snapshot is a sparse file under ``<state dir>/blocks``. moto's EBS backend is hooked
in-process (as aws.py hooks EKS):
- CreateVolume from a snapshot: a copy of the snapshot's file. An empty volume has no file until it is
  written (moto creates hundreds of AMI volumes at start-up; they stay file-less);
- CreateSnapshot: a copy of the volume's file made at the call, as an EBS snapshot is point in time. The
  snapshot reads ``pending`` (with a progress figure) for SNAPSHOT_LATENCY, or for as long as the
  ``snapshot_pending`` fault says, then ``completed`` and 100%;
- CopySnapshot (another region): a copy of the file;
- DeleteVolume / DeleteSnapshot: the file goes.

Copies skip holes (SEEK_DATA / SEEK_HOLE), so a 1 GiB volume costs only the blocks written to it, as an EBS
snapshot stores only written blocks.

The demo key-value service keeps its data in a volume file: an 8-byte big-endian length, then that many bytes
of JSON lines (``{"k": ..., "v": ...}``), appended in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot, Volume

from .faults import SandboxFaults

GIB = 1 << 30
SNAPSHOT_LATENCY = 0.3  # seconds a snapshot stays pending: callers must really poll for completion
_HEADER = 8


def sparse_copy(src: Path, dst: Path) -> int:
    """Copy src to dst keeping its holes; returns the bytes of data copied. Written to a sibling, then renamed."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    copied = 0
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fin.fileno(), pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after pos
                break
            end = os.lseek(fin.fileno(), start, os.SEEK_HOLE)
            os.lseek(fin.fileno(), start, os.SEEK_SET)
            fout.seek(start)
            left = end - start
            while left:
                chunk = fin.read(min(left, 1 << 20))
                if not chunk:
                    break
                fout.write(chunk)
                left -= len(chunk)
                copied += len(chunk)
            pos = end
        fout.truncate(size)
    os.replace(tmp, dst)
    return copied


class BlockStore:
    """The files behind volumes and snapshots, and the key-value layout the demo service writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._kv: dict[str, tuple[int, dict[str, Any]]] = {}  # path -> (log length read, index)

    def volume(self, volume_id: str) -> Path:
        return self.root / f"{volume_id.replace('/', '__')}.vol"  # a PD's id is its path

    def snapshot(self, snapshot_id: str) -> Path:
        return self.root / f"{snapshot_id.replace('/', '__')}.snap"

    def create_volume(self, volume_id: str, size_gib: int, snapshot_id: str | None) -> None:
        path = self.volume(volume_id)
        src = self.snapshot(snapshot_id) if snapshot_id else None
        if src is not None and src.exists():
            sparse_copy(src, path)
        elif snapshot_id is None:
            with open(path, "wb") as f:
                f.truncate(max(1, size_gib) * GIB)

    def take_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        src = self.volume(volume_id)
        with self._lock:  # a write in flight finishes before the copy: the cut is a point in time
            if src.exists():
                sparse_copy(src, self.snapshot(snapshot_id))

    def copy_snapshot(self, source_id: str, snapshot_id: str) -> None:
        src = self.snapshot(source_id)
        if src.exists():
            sparse_copy(src, self.snapshot(snapshot_id))

    def remove(self, path: Path) -> None:
        with self._lock:
            self._kv.pop(str(path), None)
        path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ key-value layout

    def kv_put(self, path: Path, key: str, value: Any) -> None:
        line = json.dumps({"k": key, "v": value}, separators=(",", ":")).encode() + b"\n"
        with self._lock, open(path, "r+b" if path.exists() else "w+b") as f:
            length = int.from_bytes(f.read(_HEADER) or b"\0" * _HEADER, "big")
            f.seek(_HEADER + length)
            f.write(line)
            f.seek(0)
            f.write((length + len(line)).to_bytes(_HEADER, "big"))
            f.flush()

    def kv_get(self, path: Path, key: str) -> tuple[bool, Any]:
        with self._lock:
            return self._index(path).get(key, (False, None))

    def kv_count(self, path: Path) -> int:
        with self._lock:
            return len(self._index(path))

    def _index(self, path: Path) -> dict[str, Any]:
        known, index = self._kv.get(str(path), (0, {}))
        if not path.exists():
            return {}
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(_HEADER) or b"\0" * _HEADER, "big")
            if length < known:  # a different file now lives at this path: read it from the start
                known, index = 0, {}
            f.seek(_HEADER + known)
            for raw in f.read(length - known).splitlines():
                doc = json.loads(raw)
                index[doc["k"]] = (True, doc["v"])
        self._kv[str(path)] = (length, index)
        return index


class _PendingSnapshot(Snapshot):
    """A snapshot that reads ``pending`` until ``_done_at`` (monotonic seconds) has passed. One stuck by the
    ``snapshot_pending`` fault (for ever) completes once the fault is cleared, as a slow snapshot finally does."""

    _done_at: float = 0.0
    _started: float = 0.0
    _faults: SandboxFaults | None = None

    @property
    def status(self) -> str:
        return "completed" if self._complete() else "pending"

    @status.setter
    def status(self, value: str) -> None:
        pass  # moto sets "completed" in __init__; completion is time-driven here

    def _complete(self) -> bool:
        if self._done_at == float("inf") and self._faults is not None and self._faults.snapshot_pending is None:
            self._done_at = time.monotonic()
        return time.monotonic() >= self._done_at

    @property
    def progress(self) -> str:
        if self._complete():
            return "100%"
        span = max(self._done_at - self._started, 1e-6)
        return f"{min(99, int(100 * (time.monotonic() - self._started) / span))}%"


def _pending(snap: Snapshot, seconds: float, faults: SandboxFaults) -> None:
    snap.__dict__.pop("status", None)
    snap.__class__ = _PendingSnapshot
    snap._faults = faults  # type: ignore[attr-defined]
    now = time.monotonic()
    snap._started = now  # type: ignore[attr-defined]
    snap._done_at = now + seconds if seconds >= 0 else float("inf")  # type: ignore[attr-defined]


class EbsHooks:
    """Installs the byte-keeping hooks on moto's EBS backend (process-wide, like AwsHooks)."""

    def __init__(self, store: BlockStore, faults: SandboxFaults) -> None:
        self.store = store
        self.faults = faults
        self._saved: list[tuple[type, str, Any]] = []

    def install(self) -> None:
        hooks = self
        store = self.store
        originals = {n: getattr(EBSBackend, n) for n in ("create_volume", "create_snapshot", "copy_snapshot",
                                                         "delete_volume", "delete_snapshot")}

        def create_volume(self: EBSBackend, size: int, zone_name: str, snapshot_id: str | None = None,
                          *args: Any, **kwargs: Any) -> Volume:
            vol = originals["create_volume"](self, size, zone_name, snapshot_id, *args, **kwargs)
            if snapshot_id:
                store.create_volume(vol.id, int(vol.size), snapshot_id)
            return vol

        def create_snapshot(self: EBSBackend, volume_id: str, *args: Any, **kwargs: Any) -> Snapshot:
            snap = originals["create_snapshot"](self, volume_id, *args, **kwargs)
            store.take_snapshot(volume_id, snap.id)
            _pending(snap, hooks.faults.snapshot_seconds(SNAPSHOT_LATENCY), hooks.faults)
            return snap

        def copy_snapshot(self: EBSBackend, source_snapshot_id: str, *args: Any, **kwargs: Any) -> Snapshot:
            snap = originals["copy_snapshot"](self, source_snapshot_id, *args, **kwargs)
            store.copy_snapshot(source_snapshot_id, snap.id)
            _pending(snap, hooks.faults.snapshot_seconds(SNAPSHOT_LATENCY), hooks.faults)
            return snap

        def delete_volume(self: EBSBackend, volume_id: str) -> Volume:
            vol = originals["delete_volume"](self, volume_id)
            store.remove(store.volume(volume_id))
            return vol

        def delete_snapshot(self: EBSBackend, snapshot_id: str) -> Snapshot:
            snap = originals["delete_snapshot"](self, snapshot_id)
            store.remove(store.snapshot(snapshot_id))
            return snap

        fns: dict[str, Callable[..., Any]] = {"create_volume": create_volume, "create_snapshot": create_snapshot,
                                              "copy_snapshot": copy_snapshot, "delete_volume": delete_volume,
                                              "delete_snapshot": delete_snapshot}
        for name, fn in fns.items():
            self._saved.append((EBSBackend, name, originals[name]))
            setattr(EBSBackend, name, fn)

    def uninstall(self) -> None:
        for cls, name, fn in reversed(self._saved):
            setattr(cls, name, fn)
        self._saved.clear()


EBS_CSI = "ebs.csi.aws.com"
EBS_IN_TREE = "kubernetes.io/aws-ebs"
ZONE_KEYS = {EBS_CSI: "topology.ebs.csi.aws.com/zone", EBS_IN_TREE: "topology.kubernetes.io/zone"}


def size_gib(quantity: str) -> int:
    """A storage request in whole GiB, rounded up, as the EBS CSI driver rounds it."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "K": 10**3, "M": 10**6, "G": 10**9,
             "T": 10**12}
    q = str(quantity).strip()
    for suffix in sorted(units, key=len, reverse=True):
        if q.endswith(suffix):
            raw = float(q[: -len(suffix)]) * units[suffix]
            break
    else:
        raw = float(q)
    return max(1, -(-int(raw) // GIB))


def ebs_provisioner(store: BlockStore, account_id: str, region: str,
                    ) -> Callable[[dict[str, Any], dict[str, Any], list[str]], dict[str, Any] | None]:
    """Dynamic provisioning for EBS StorageClasses: a real moto volume in a zone of the cluster's nodes.

    StatefulSet claims spread over the zones by ordinal, as the scheduler spreads their pods."""
    import re
    import zlib

    from moto.ec2.models import ec2_backends

    def provision(pvc: dict[str, Any], sc: dict[str, Any], zones: list[str],
                  snapshot_id: str | None = None) -> dict[str, Any] | None:
        provisioner = sc.get("provisioner")
        if provisioner not in ZONE_KEYS:
            return None
        meta = pvc["metadata"]
        found = re.search(r"-(\d+)$", meta["name"])
        n = int(found.group(1)) if found else zlib.crc32(meta["name"].encode())
        zone = zones[n % len(zones)] if zones else f"{region}a"
        params = sc.get("parameters") or {}
        request = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        vol = ec2_backends[account_id][region].create_volume(size=size_gib(request), zone_name=zone,
                                                             snapshot_id=snapshot_id,
                                                             volume_type=params.get("type") or "gp3")
        if snapshot_id is None:  # from a snapshot, the EBS hook has materialised its bytes already
            store.create_volume(vol.id, int(vol.size), None)
        vol.add_tags({"kubernetes.io/created-for/pvc/name": meta["name"],
                      "kubernetes.io/created-for/pvc/namespace": meta["namespace"],
                      "CSIVolumeName": f"pvc-{meta['uid']}", "ebs.csi.aws.com/cluster": "true"})
        fs = params.get("csi.storage.k8s.io/fstype") or params.get("fsType") or "ext4"
        affinity = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": ZONE_KEYS[provisioner], "operator": "In", "values": [zone]}]}]}}
        if provisioner == EBS_CSI:
            return {"csi": {"driver": EBS_CSI, "volumeHandle": vol.id, "fsType": fs}, "nodeAffinity": affinity}
        return {"awsElasticBlockStore": {"volumeID": f"aws://{zone}/{vol.id}", "fsType": fs},
                "nodeAffinity": affinity}

    return provision


def ebs_deprovisioner(account_id: str, region: str) -> Callable[[dict[str, Any]], None]:
    """What a teardown does to a ``Delete`` PV of a deleted cluster: its EBS volume is deleted. A bare EKS
    DeleteCluster leaves volumes behind, but teardowns delete the namespaces (or the releases) first, and then
    the CSI driver deletes every ``Delete`` volume: the sandbox models that worst case."""
    from moto.ec2.exceptions import InvalidVolumeIdError
    from moto.ec2.models import ec2_backends

    def deprovision(pv: dict[str, Any]) -> None:
        spec = pv.get("spec") or {}
        handle = (spec.get("csi") or {}).get("volumeHandle") if (spec.get("csi") or {}).get("driver") == EBS_CSI \
            else str((spec.get("awsElasticBlockStore") or {}).get("volumeID") or "").rsplit("/", 1)[-1]
        if not handle:
            return
        with contextlib.suppress(InvalidVolumeIdError):  # already gone
            ec2_backends[account_id][region].delete_volume(handle)

    return deprovision


def ebs_snapshotter(account_id: str, region: str) -> tuple[Callable[[str, dict[str, str]], str], Callable[[str], str]]:
    """The EBS CSI driver's CreateSnapshot for the emulator's snapshot controller: a real moto snapshot."""
    from moto.ec2.models import ec2_backends

    def create(volume_id: str, tags: dict[str, str]) -> str:
        snap = ec2_backends[account_id][region].create_snapshot(volume_id, "Created by AWS EBS CSI driver")
        snap.add_tags({**tags, "ebs.csi.aws.com/cluster": "true"})
        return str(snap.id)

    def state(snapshot_id: str) -> str:
        try:
            return str(ec2_backends[account_id][region].get_snapshot(snapshot_id).status)
        except Exception:  # unknown id: moto's own error types vary by version
            return "error"

    return create, state
