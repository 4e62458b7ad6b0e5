"""The `csi-snapshot` strategy's Kubernetes side (snapshot.storage.k8s.io/v1), used by the volume cut.

On the old cluster a VolumeSnapshot of the claim is taken (its CSI driver makes the cloud snapshot); on the
new one a pre-provisioned VolumeSnapshotContent (``deletionPolicy: Retain``) names that cloud snapshot, with
its VolumeSnapshot, and the claim is created with it as ``dataSource``: the new cluster's driver provisions
the volume from it, in the zone its scheduler picks. Every object has a name fixed by the claim and the
attempt, so a resumed cut finds what it made (409) instead of making a second one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from migrate.errors import StepFailed
from migrate.kube.client import KubeApiError, KubeClient, object_path
from migrate.kube.objects import Obj, dig
from migrate.kube.ready import pauses
from migrate.kube.volumes import VolumePlan

GROUP = "snapshot.storage.k8s.io"
API = f"{GROUP}/v1"
_DEFAULT = "snapshot.storage.kubernetes.io/is-default-class"


def _path(plural: str, ns: str, name: str) -> str:
    return object_path(API, plural, ns, name)


def snapshot_class(kube: KubeClient, driver: str | None) -> str | None:
    """The cluster's VolumeSnapshotClass for ``driver`` (its default one first), or None."""
    try:
        classes = [c for c in kube.list_pages(f"/apis/{API}/volumesnapshotclasses") if c.get("driver") == driver]
    except KubeApiError as e:
        if e.status == 404:  # the snapshot CRDs are not installed
            return None
        raise
    classes.sort(key=lambda c: (dig(c, "metadata", "annotations", _DEFAULT) != "true", dig(c, "metadata", "name")))
    return str(dig(classes[0], "metadata", "name")) if classes else None


def missing_classes(old: KubeClient, new: KubeClient, claims: list[VolumePlan]) -> list[str]:
    """What stops a csi-snapshot cut before the freeze: a cluster without a snapshot class for the driver."""
    out = []
    for driver in sorted({str(c.volume.csi_driver) for c in claims}):
        for side, kube in (("old", old), ("new", new)):
            if snapshot_class(kube, driver) is None:
                refs = ", ".join(c.volume.ref for c in claims if c.volume.csi_driver == driver)
                out.append(f"{refs}: the {side} cluster has no VolumeSnapshotClass for {driver} ({API}): install "
                           "the snapshot CRDs, the snapshot controller (on EKS, the snapshot-controller add-on) "
                           "and a class for the driver")
    return out


def _name(c: dict[str, Any], phase: str, attempt: int) -> str:
    return f"migrate-{phase}-{c['name']}" + (f"-{attempt}" if attempt else "")


def _create(kube: KubeClient, coll: str, obj: Obj) -> bool:
    try:
        kube.call("POST", coll, body=obj)
        return True
    except KubeApiError as e:
        if e.status != 409:
            raise
        return False  # made before a restart


def take(kube: KubeClient, c: dict[str, Any], run_id: str, attempt: int, log: Callable[[str], None],
         phase: str = "final") -> dict[str, Any]:
    """A VolumeSnapshot of the claim on ``kube`` (the old cluster), once."""
    cls = snapshot_class(kube, c.get("csi_driver"))
    name = _name(c, phase, attempt)
    made = _create(kube, f"/apis/{API}/namespaces/{c['namespace']}/volumesnapshots", {
        "apiVersion": API, "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": c["namespace"],
                     "labels": {"migrate.dev/run": run_id, "migrate.dev/phase": phase}},
        "spec": {"volumeSnapshotClassName": cls, "source": {"persistentVolumeClaimName": c["name"]}}})
    log(f"volumes: {c['claim']}: {phase} VolumeSnapshot {c['namespace']}/{name}"
        f"{'' if made else ' (found, taken before a restart)'}")
    return {**c, "vs_name": name, "vs_class": cls}


def wait_ready(kube: KubeClient, ns: str, name: str, timeout: float) -> Obj:
    deadline = time.monotonic() + timeout
    pause = pauses(0.2)
    while True:
        vs = kube.request("GET", _path("volumesnapshots", ns, name))
        st = vs.get("status") or {}
        if st.get("error"):
            raise StepFailed(f"VolumeSnapshot {ns}/{name} failed: {dig(st, 'error', 'message') or st['error']}",
                             where=f"{ns}/{name}", hint="see its events (kubectl describe volumesnapshot); the "
                                                        "old writer is scaled back up")
        if st.get("readyToUse"):
            return vs
        if time.monotonic() > deadline:
            raise StepFailed(f"VolumeSnapshot {ns}/{name} is not ready after {timeout:g}s",
                             where="replay.volumes.snapshot_timeout",
                             hint="see its events and the snapshot controller's logs; the old writer is scaled "
                                  "back up")
        time.sleep(next(pause))


def wait_taken(kube: KubeClient, c: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Wait for the old cluster's snapshot; the cloud snapshot's id comes from its content."""
    vs = wait_ready(kube, c["namespace"], c["vs_name"], timeout)
    content = kube.request("GET", _path("volumesnapshotcontents", "",
                                        str(dig(vs, "status", "boundVolumeSnapshotContentName"))))
    handle = dig(content, "status", "snapshotHandle")
    if not handle:
        raise StepFailed(f"VolumeSnapshot {c['namespace']}/{c['vs_name']} is ready but its content names no "
                         "snapshot handle", where=c["claim"], hint="check the CSI driver's snapshotter")
    return {**c, "snapshot_id": str(handle)}


def pre_provision(new: KubeClient, c: dict[str, Any], run_id: str) -> dict[str, Any]:
    """On the new cluster: a content naming the cloud snapshot (Retain: deleting it keeps the data) and its
    VolumeSnapshot, under the old snapshot's name."""
    ns, name = c["namespace"], c["vs_name"]
    content = f"migrate-{ns}-{name}"[:253]
    cls = snapshot_class(new, c.get("csi_driver")) or c.get("vs_class")
    _create(new, f"/apis/{API}/volumesnapshotcontents", {
        "apiVersion": API, "kind": "VolumeSnapshotContent", "metadata": {"name": content,
                                                                         "labels": {"migrate.dev/run": run_id}},
        "spec": {"deletionPolicy": "Retain", "driver": c.get("csi_driver"),
                 "source": {"snapshotHandle": c["snapshot_id"]}, "volumeSnapshotClassName": cls,
                 "volumeSnapshotRef": {"namespace": ns, "name": name}}})
    _create(new, f"/apis/{API}/namespaces/{ns}/volumesnapshots", {
        "apiVersion": API, "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": ns, "labels": {"migrate.dev/run": run_id}},
        "spec": {"volumeSnapshotClassName": cls, "source": {"volumeSnapshotContentName": content}}})
    return {**c, "content": content}


def data_source(name: str) -> Obj:
    return {"apiGroup": GROUP, "kind": "VolumeSnapshot", "name": name}
