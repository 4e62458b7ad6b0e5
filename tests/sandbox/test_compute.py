"""The GKE emulator's Compute Engine surface (disks and snapshots), through the official google-cloud-compute
client over REST, as the volume cut and the emulated PD CSI driver use it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from migrate.sandbox.blockstore import BlockStore
from migrate.sandbox.clusters import ClusterRegistry
from migrate.sandbox.compute import disk_handle
from migrate.sandbox.faults import SandboxFaults
from migrate.sandbox.gke import GkeEmulator

P, Z = "sandbox-project", "us-central1-b"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[tuple[GkeEmulator, BlockStore, SandboxFaults]]:
    faults = SandboxFaults()
    registry = ClusterRegistry(faults, tmp_path / "kc")
    registry.blocks = BlockStore(tmp_path / "blocks")
    gke = GkeEmulator(registry).start()
    try:
        yield gke, registry.blocks, faults
    finally:
        gke.stop()


def _clients(url: str) -> tuple[compute_v1.DisksClient, compute_v1.SnapshotsClient]:
    opts = {"api_endpoint": url}
    return (compute_v1.DisksClient(credentials=AnonymousCredentials(), client_options=opts),
            compute_v1.SnapshotsClient(credentials=AnonymousCredentials(), client_options=opts))


def test_disk_snapshot_restore_keeps_the_bytes_and_names_are_unique(
        emu: tuple[GkeEmulator, BlockStore, SandboxFaults]) -> None:
    gke, store, _ = emu
    disks, snaps = _clients(gke.url)
    op = disks.insert_unary(project=P, zone=Z, disk_resource=compute_v1.Disk(name="data", size_gb=10))
    assert op.status == compute_v1.Operation.Status.DONE
    store.kv_put(store.volume(disk_handle(P, Z, "data")), "k", "before")
    disks.create_snapshot_unary(project=P, zone=Z, disk="data",
                                snapshot_resource=compute_v1.Snapshot(name="s1", labels={"migrate-phase": "final"}))
    store.kv_put(store.volume(disk_handle(P, Z, "data")), "k", "after")  # after the point in time
    assert snaps.get(project=P, snapshot="s1").status == "CREATING"  # callers must poll
    with pytest.raises(gexc.BadRequest):  # not restorable until READY
        disks.insert_unary(project=P, zone=Z, disk_resource=compute_v1.Disk(
            name="early", source_snapshot=f"projects/{P}/global/snapshots/s1"))
    deadline = time.monotonic() + 5
    while snaps.get(project=P, snapshot="s1").status != "READY":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    disks.insert_unary(project=P, zone="us-central1-c", disk_resource=compute_v1.Disk(
        name="restored", source_snapshot=f"projects/{P}/global/snapshots/s1"))
    restored = disks.get(project=P, zone="us-central1-c", disk="restored")
    assert restored.status == "READY" and restored.size_gb == 10 and restored.source_snapshot.endswith("/s1")
    assert store.kv_get(store.volume(disk_handle(P, "us-central1-c", "restored")), "k") == (True, "before")
    assert [s.labels["migrate-phase"] for s in snaps.list(project=P)] == ["final"]
    with pytest.raises(gexc.Conflict):
        disks.create_snapshot_unary(project=P, zone=Z, disk="data", snapshot_resource=compute_v1.Snapshot(name="s1"))
    with pytest.raises(gexc.Conflict):
        disks.insert_unary(project=P, zone=Z, disk_resource=compute_v1.Disk(name="data"))
    with pytest.raises(gexc.NotFound):
        disks.get(project=P, zone=Z, disk="nope")
    with pytest.raises(gexc.BadRequest):
        disks.insert_unary(project=P, zone=Z, disk_resource=compute_v1.Disk(name="Bad_Name"))
    disks.delete_unary(project=P, zone=Z, disk="data")
    assert not store.volume(disk_handle(P, Z, "data")).exists()


def test_snapshot_pending_fault_holds_pd_snapshots(emu: tuple[GkeEmulator, BlockStore, SandboxFaults]) -> None:
    gke, _store, faults = emu
    disks, snaps = _clients(gke.url)
    disks.insert_unary(project=P, zone=Z, disk_resource=compute_v1.Disk(name="d", size_gb=1))
    faults.add("snapshot_pending", {"seconds": -1})
    disks.create_snapshot_unary(project=P, zone=Z, disk="d", snapshot_resource=compute_v1.Snapshot(name="held"))
    time.sleep(0.5)
    assert snaps.get(project=P, snapshot="held").status == "CREATING"
    faults.clear()
    assert snaps.get(project=P, snapshot="held").status == "READY"
