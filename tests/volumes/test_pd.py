"""The `snapshot` strategy on GKE persistent disks, through the real CLI: the GKE emulator serves Compute
Engine's disks and snapshots (compute v1), the emulated PD CSI driver provisions each claim of the GKE
default class (`standard-rwo`, `pd.csi.storage.gke.io`, in the shape of GKE's own) as a compute disk, and the
cut snapshots and restores them through google-cloud-compute. The data written to each old disk (the kv
layout the data plane uses) must be on the new cluster's disks, and a kill at each PD sub-step must leave
one snapshot and one disk per claim.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.world import sandboxed_project
from engine.kit import Project
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, container_v1

from migrate.sandbox.blockstore import BlockStore
from migrate.sandbox.seed.workloads import kv_store

pytestmark = pytest.mark.slow
CLAIMS = [f"data-kv-{i}" for i in range(3)]
STANDARD_RWO = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "standard-rwo", "annotations": {"components.gke.io/component-name": "pdcsi"}},
                "provisioner": "pd.csi.storage.gke.io", "parameters": {"type": "pd-balanced"},
                "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True}


def _kubectl(project: Project, cluster: str, *args: str, body: Any = None) -> Any:
    kubeconfig = project.root / "sandbox" / "kubeconfigs" / f"{cluster}.yaml"
    out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                         input=json.dumps(body) if body is not None else None, timeout=60, check=True)
    return json.loads(out.stdout) if "-o" in args else out.stdout


def _pvs(project: Project, cluster: str) -> dict[str, Any]:
    return {pv["spec"]["claimRef"]["name"]: pv for pv in _kubectl(project, cluster, "get", "pv", "-o", "json")["items"]
            if pv["spec"].get("claimRef", {}).get("namespace") == "shop"}


@pytest.fixture
def gdev(tmp_path: Path) -> Iterator[tuple[Project, dict[str, Any]]]:
    with sandboxed_project(tmp_path, envs=["dev"]) as (project, endpoints):
        gcp = endpoints["gcp"]
        parent = f"projects/{gcp['project']}/locations/{gcp['location']}"
        gke = container_v1.ClusterManagerClient(credentials=AnonymousCredentials(), transport="rest",
                                                client_options={"api_endpoint": gcp["container_endpoint"]})
        op = gke.create_cluster(parent=parent, cluster=container_v1.Cluster(
            name="gke-blue", initial_cluster_version="1.29",
            node_pools=[container_v1.NodePool(name="pool-a", initial_node_count=3)]))
        while gke.get_operation(name=f"{parent}/operations/{op.name}").status.name != "DONE":
            time.sleep(0.1)
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
        objs = [STANDARD_RWO, ns, *kv_store("shop")]
        for o in objs:
            if o["kind"] == "StatefulSet":
                o["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = "standard-rwo"
        _kubectl(project, "gke-blue", "apply", "-f", "-", body={"apiVersion": "v1", "kind": "List", "items": objs})
        deadline = time.monotonic() + 30
        while len(_pvs(project, "gke-blue")) < 3:
            assert time.monotonic() < deadline, "the PD claims were never provisioned"
            time.sleep(0.2)
        (project.root / "migrate.yaml").write_text(f"""
version: 1
sandbox: {{enabled: true, state_dir: {project.root / 'sandbox'}}}
environments:
  gdev:
    cloud: gcp
    gcp: {{project: {gcp['project']}, location: {gcp['location']}, endpoint: "{gcp['container_endpoint']}"}}
    clusters:
      old: {{name: gke-blue}}
      new: {{name: gke-green, version: "1.31", ready_timeout: 60s}}
    replay:
      volumes:
        rules: [{{match: {{namespace: shop, name: "data-kv-*"}}, strategy: snapshot}}]
        ready_timeout: 60s
    skip: [duplicate-workspace, detach-cluster, open-gateway, validate, shift-traffic, protect-volumes]
""")
        yield project, gcp


def _write(project: Project, handle: str, n: int) -> None:
    store = BlockStore(project.root / "sandbox" / "blocks")
    for i in range(n):
        store.kv_put(store.volume(handle), f"k{i}", f"{handle}:{i}")


def _compute(gcp: dict[str, Any]) -> tuple[compute_v1.DisksClient, compute_v1.SnapshotsClient]:
    opts = {"api_endpoint": gcp["container_endpoint"]}
    return (compute_v1.DisksClient(credentials=AnonymousCredentials(), client_options=opts),
            compute_v1.SnapshotsClient(credentials=AnonymousCredentials(), client_options=opts))


def _by_phase(gcp: dict[str, Any], phase: str) -> dict[str, int]:
    disks, snaps = _compute(gcp)
    items = list(snaps.list(project=gcp["project"]))
    for zone in ("a", "b", "c"):
        items += list(disks.list(project=gcp["project"], zone=f"{gcp['location']}-{zone}"))
    out: dict[str, int] = {}
    for it in items:
        if it.labels.get("migrate-phase") == phase:
            kind = "snapshot" if isinstance(it, compute_v1.Snapshot) else "disk"
            out[f"{kind}:{it.labels['migrate-volume']}"] = out.get(f"{kind}:{it.labels['migrate-volume']}", 0) + 1
    return out


def _assert_carried(project: Project, gcp: dict[str, Any], old_handles: dict[str, str]) -> None:
    new = _pvs(project, "gke-green")
    store = BlockStore(project.root / "sandbox" / "blocks")
    for claim in CLAIMS:
        pv = new[claim]
        handle = pv["spec"]["csi"]["volumeHandle"]
        assert pv["spec"]["csi"]["driver"] == "pd.csi.storage.gke.io" and handle != old_handles[claim]
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        zone = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert zone["key"] == "topology.gke.io/zone" and f"/zones/{zone['values'][0]}/" in handle
        for i in (0, 9, 19):  # the bytes of the old disk, frozen at the cut
            assert store.kv_get(store.volume(handle), f"k{i}") == (True, f"{old_handles[claim]}:{i}")
    # GCE label values: lowercase, no '/': the claim shop/data-kv-0 is labelled shop_data-kv-0.
    assert _by_phase(gcp, "final") == {f"snapshot:shop_{c}": 1 for c in CLAIMS}
    assert _by_phase(gcp, "restored") == {f"disk:shop_{c}": 1 for c in CLAIMS}
    assert _by_phase(gcp, "warm") == {f"snapshot:shop_{c}": 1 for c in CLAIMS}
    sts = _kubectl(project, "gke-green", "get", "statefulset", "-n", "shop", "kv", "-o", "json")
    assert sts["spec"]["replicas"] == 3


def test_pd_snapshot_carries_the_kv_disks(gdev: tuple[Project, dict[str, Any]]) -> None:
    project, gcp = gdev
    old = {c: pv["spec"]["csi"]["volumeHandle"] for c, pv in _pvs(project, "gke-blue").items()}
    for handle in old.values():
        _write(project, handle, 20)
    r = project.run("migrate", "--env", "gdev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_carried(project, gcp, old)


@pytest.mark.parametrize("phase", ["snapshot-created", "snapshotted", "restore-created", "restored"])
def test_pd_kill_inside_the_cut_then_resume(gdev: tuple[Project, dict[str, Any]], phase: str) -> None:
    project, gcp = gdev
    old = {c: pv["spec"]["csi"]["volumeHandle"] for c, pv in _pvs(project, "gke-blue").items()}
    for handle in old.values():
        _write(project, handle, 20)
    r = project.run("migrate", "--env", "gdev", env={"MIGRATE_FAILPOINTS": f"at:cut-volumes/{phase}"}, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    r = project.run("migrate", "--env", "gdev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_carried(project, gcp, old)


def test_pd_decommission_refuses_a_fresh_claim_then_keeps_its_final_snapshot(
        gdev: tuple[Project, dict[str, Any]]) -> None:
    project, gcp = gdev
    scratch = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "scratch", "namespace": "shop"},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard-rwo",
                        "resources": {"requests": {"storage": "1Gi"}}}}
    _kubectl(project, "gke-blue", "apply", "-f", "-", body=scratch)
    deadline = time.monotonic() + 30
    while "scratch" not in _pvs(project, "gke-blue"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cfg = (project.root / "migrate.yaml").read_text()
    cfg = cfg.replace('strategy: snapshot}]', 'strategy: snapshot}, {match: {name: scratch}, strategy: fresh}]')
    cfg = cfg.replace(", protect-volumes]", "]")
    (project.root / "migrate.yaml").write_text(cfg)
    r = project.run("migrate", "--env", "gdev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    r = project.run("decommission", "--env", "gdev", timeout=300)
    assert r.returncode == 7 and "shop/scratch" in r.stderr and "--accept-data-loss shop/scratch" in r.stderr
    assert _by_phase(gcp, "decommission") == {}
    r = project.run("decommission", "--env", "gdev", "--accept-data-loss", "shop/scratch", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _by_phase(gcp, "decommission") == {"snapshot:shop_scratch": 1}  # the carried kv disks need none
    report = next((project.root / "plans").glob("decommission-gdev-*.report.md")).read_text()
    assert "SUCCESS: cluster gke-blue is decommissioned" in report and "shop/scratch" in report
