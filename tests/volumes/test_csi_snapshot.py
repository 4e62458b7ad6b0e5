"""`csi-snapshot` through the real CLI on the sandbox: the kv claims (gp3, ebs.csi.aws.com) are carried with
VolumeSnapshots on the old cluster and pre-provisioned VolumeSnapshotContents on the new one, the claims
restored with `dataSource`. The snapshot API is installed on the old cluster in the shapes of
kubernetes-csi/external-snapshotter's CRDs (`client/config/crd`) and of the aws-ebs-csi-driver's snapshot
example class (`csi-aws-vsc`); the replay carries CRDs and class to the new cluster. The emulator's snapshot
controller makes a real moto snapshot per VolumeSnapshot, tagged `CSIVolumeSnapshotName` as the driver does.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from e2e.world import sandboxed_project
from engine.kit import Project

from volumes.test_cut import CLAIMS, _fast, _kube, _writes

pytestmark = pytest.mark.slow

GROUP = "snapshot.storage.k8s.io"


def _crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}",
                         "annotations": {"api-approved.kubernetes.io": "https://github.com/kubernetes-csi/"
                                                                       "external-snapshotter/pull/814"}},
            "spec": {"group": GROUP, "scope": scope,
                     "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                               "singular": kind.lower()},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "subresources": {"status": {}} if kind != "VolumeSnapshotClass" else {},
                                   "schema": {"openAPIV3Schema": schema}}]}}


SNAPSHOT_API = [_crd("VolumeSnapshotClass", "volumesnapshotclasses", "Cluster"),
                _crd("VolumeSnapshotContent", "volumesnapshotcontents", "Cluster"),
                _crd("VolumeSnapshot", "volumesnapshots", "Namespaced")]
CLASS = {"apiVersion": f"{GROUP}/v1", "kind": "VolumeSnapshotClass", "metadata": {"name": "csi-aws-vsc"},
         "driver": "ebs.csi.aws.com", "deletionPolicy": "Delete"}


def _kubectl(project: Project, *args: str, body: Any = None) -> str:
    kubeconfig = project.root / "sandbox" / "kubeconfigs" / "dev-blue.yaml"
    out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                         input=json.dumps(body) if body is not None else None, timeout=60, check=True)
    return out.stdout


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Project]:
    with sandboxed_project(tmp_path, envs=["dev"]) as (project, _):
        _kubectl(project, "apply", "-f", "-", body={"apiVersion": "v1", "kind": "List", "items": SNAPSHOT_API})
        _kubectl(project, "wait", "--for=condition=Established", "--timeout=30s",
                 *[f"crd/{c['metadata']['name']}" for c in SNAPSHOT_API])
        _kubectl(project, "apply", "-f", "-", body=CLASS)
        cfg = _fast(project)
        cfg["environments"]["dev"]["replay"]["volumes"]["rules"][0]["strategy"] = "csi-snapshot"
        (project.root / "migrate.yaml").write_text(yaml.safe_dump(cfg))
        yield project


def _csi_snapshots() -> dict[str, int]:
    """source volume -> how many snapshots the (emulated) EBS CSI driver made of it."""
    snaps = boto3.client("ec2", region_name="us-east-1").describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["CSIVolumeSnapshotName"]}])["Snapshots"]
    out: dict[str, int] = {}
    for s in snaps:
        out[s["VolumeId"]] = out.get(s["VolumeId"], 0) + 1
    return out


def _assert_carried(project: Project, stdout: str) -> None:
    acked, lost = _writes(stdout)
    assert acked > 20 and lost == 0, stdout  # read back from the volumes the new cluster's driver provisioned
    # One warm-up and one final snapshot per claim: none twice, whatever was killed.
    old_pvs = {pv["spec"]["claimRef"]["name"]: pv["spec"]["csi"]["volumeHandle"]
               for pv in _kube(project, "dev-blue", "get", "pv")["items"] if pv["spec"].get("csi")}
    made = _csi_snapshots()
    assert {c: made.get(old_pvs[c.split("/")[1]]) for c in CLAIMS} == dict.fromkeys(CLAIMS, 2)
    old = {vs["metadata"]["name"]: vs for vs in _kube(project, "dev-blue", "get", "volumesnapshots", "-n",
                                                       "shop")["items"]}
    assert sorted(old) == sorted([f"migrate-final-data-kv-{i}-1" for i in range(3)]
                                 + [f"migrate-warm-data-kv-{i}" for i in range(3)])
    contents = {c["metadata"]["name"]: c for c in _kube(project, "dev-green", "get", "volumesnapshotcontents")["items"]}
    claims = {c["metadata"]["name"]: c for c in _kube(project, "dev-green", "get", "pvc", "-n", "shop")["items"]}
    for i in range(3):
        content = contents[f"migrate-shop-migrate-final-data-kv-{i}-1"]
        assert content["spec"]["deletionPolicy"] == "Retain"
        vs = old[f"migrate-final-data-kv-{i}-1"]
        old_content = _kube(project, "dev-blue", "get", "volumesnapshotcontent",
                            vs["status"]["boundVolumeSnapshotContentName"])
        assert content["spec"]["source"]["snapshotHandle"] == old_content["status"]["snapshotHandle"]
        claim = claims[f"data-kv-{i}"]
        assert claim["spec"]["dataSource"] == {"apiGroup": GROUP, "kind": "VolumeSnapshot",
                                               "name": f"migrate-final-data-kv-{i}-1"}
        assert claim["status"]["phase"] == "Bound"


def test_csi_snapshot_carries_the_kv_claims_with_no_lost_write(world: Project) -> None:
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_carried(world, r.stdout)
    # The old cluster's snapshots are not replayed to the new one: they are records of the old claims.
    new_vs = {vs["metadata"]["name"] for vs in _kube(world, "dev-green", "get", "volumesnapshots", "-n",
                                                     "shop")["items"]}
    assert new_vs == {f"migrate-final-data-kv-{i}-1" for i in range(3)}
    # The decommission plan knows these claims were carried (no final snapshot, no data loss for them).
    r = world.run("plan", "--env", "dev", "--decommission", "--accept-data-loss", "shop/data-redis-0", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    md = next((world.root / "plans").glob("decommission-dev-*.plan.md")).read_text()
    assert "carried at the cut (restored as a volume of VolumeSnapshot shop/migrate-final-data-kv-0-1)" in md


@pytest.mark.parametrize("phase", ["frozen", "snapshotted", "restored"])
def test_csi_snapshot_kill_inside_the_cut_then_resume(world: Project, phase: str) -> None:
    r = world.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": f"at:cut-volumes/{phase}"}, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_carried(world, r.stdout)


def test_csi_snapshot_without_a_snapshot_class_stops_before_the_freeze(world: Project) -> None:
    _kubectl(world, "delete", "volumesnapshotclass", "csi-aws-vsc")
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 8, r.stdout + r.stderr
    assert "no VolumeSnapshotClass for ebs.csi.aws.com" in r.stderr and "nothing was frozen" in r.stderr
    assert _kube(world, "dev-blue", "get", "statefulset", "-n", "shop", "kv")["spec"]["replicas"] == 3
    assert _csi_snapshots() == {}
