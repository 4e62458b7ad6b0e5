"""`shared` on EFS, through the real CLI on the sandbox: the new cluster gets a static PV on the same file
system, bound to the claim by name; nothing is frozen, snapshotted or copied. The objects are in the shapes of
the aws-efs-csi-driver's examples:
- static provisioning (`examples/kubernetes/static_provisioning`): StorageClass `efs-sc`, PV `efs-pv`
  (`volumeHandle: fs-…`, Retain), claim `efs-claim` (RWX, 5Gi), and an app mounting it;
- dynamic provisioning (`examples/kubernetes/dynamic_provisioning`): a PV the driver provisioned on an access
  point (`volumeHandle: fs-…::fsap-…`, `pv.kubernetes.io/provisioned-by: efs.csi.aws.com`, Delete).
The file system is a moto EFS file system with a mount target in the dev VPC.
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

from volumes.test_cut import _fast, _kube, _tagged

pytestmark = pytest.mark.slow


def _efs() -> tuple[str, str]:
    """(file system id, access point id), with a mount target in a dev subnet."""
    efs = boto3.client("efs", region_name="us-east-1")
    fs = efs.create_file_system(CreationToken="shop-files", PerformanceMode="generalPurpose",
                                Tags=[{"Key": "Name", "Value": "shop-files"}])["FileSystemId"]
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = next(v for v in ec2.describe_vpcs()["Vpcs"] if {"Key": "Name", "Value": "dev-vpc"} in v.get("Tags", []))
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"][0]
    efs.create_mount_target(FileSystemId=fs, SubnetId=subnet["SubnetId"])
    ap = efs.create_access_point(FileSystemId=fs, PosixUser={"Uid": 1000, "Gid": 1000},
                                 RootDirectory={"Path": "/dynamic_provisioning"})["AccessPointId"]
    return fs, ap


def _manifests(fs: str, ap: str) -> list[dict[str, Any]]:
    csi = {"driver": "efs.csi.aws.com"}
    return [
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "efs-sc"},
         "provisioner": "efs.csi.aws.com",
         "parameters": {"provisioningMode": "efs-ap", "fileSystemId": fs, "directoryPerms": "700"}},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "efs-pv"},
         "spec": {"capacity": {"storage": "5Gi"}, "volumeMode": "Filesystem", "accessModes": ["ReadWriteMany"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "efs-sc",
                  "csi": {**csi, "volumeHandle": fs}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "efs-claim", "namespace": "shop"},
         "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-sc", "volumeName": "efs-pv",
                  "resources": {"requests": {"storage": "5Gi"}}}},
        {"apiVersion": "v1", "kind": "PersistentVolume",
         "metadata": {"name": "pvc-5a1e7d3c-efs",
                      "annotations": {"pv.kubernetes.io/provisioned-by": "efs.csi.aws.com"}},
         "spec": {"capacity": {"storage": "5Gi"}, "volumeMode": "Filesystem", "accessModes": ["ReadWriteMany"],
                  "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "efs-sc",
                  "csi": {**csi, "volumeHandle": f"{fs}::{ap}"},
                  "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "shop", "name": "efs-dyn"}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "efs-dyn", "namespace": "shop"},
         "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-sc", "volumeName": "pvc-5a1e7d3c-efs",
                  "resources": {"requests": {"storage": "5Gi"}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "efs-app", "namespace": "shop"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "efs-app"}},
                  "template": {"metadata": {"labels": {"app": "efs-app"}}, "spec": {
                      "containers": [{"name": "app", "image": "centos", "volumeMounts": [
                          {"name": "persistent-storage", "mountPath": "/data"},
                          {"name": "dyn", "mountPath": "/dyn"}]}],
                      "volumes": [{"name": "persistent-storage", "persistentVolumeClaim": {"claimName": "efs-claim"}},
                                  {"name": "dyn", "persistentVolumeClaim": {"claimName": "efs-dyn"}}]}}}},
    ]


def _apply(project: Project, objs: list[dict[str, Any]]) -> None:
    kubeconfig = project.root / "sandbox" / "kubeconfigs" / "dev-blue.yaml"
    path = project.root / "efs.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "apply", "-f", str(path)],
                   check=True, capture_output=True, timeout=60)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Project, str, str]]:
    with sandboxed_project(tmp_path, envs=["dev"]) as (project, _):
        fs, ap = _efs()
        _apply(project, _manifests(fs, ap))
        cfg = _fast(project)
        rules = cfg["environments"]["dev"]["replay"]["volumes"]["rules"]
        cfg["environments"]["dev"]["replay"]["volumes"]["rules"] = [
            {"match": {"namespace": "shop", "name": "efs-*"}, "strategy": "shared"}, *rules]
        cfg["environments"]["dev"]["bake"] = "0s"
        (project.root / "migrate.yaml").write_text(yaml.safe_dump(cfg))
        yield project, fs, ap


def test_shared_efs_claims_mount_the_same_file_system_on_the_new_cluster(world: tuple[Project, str, str]) -> None:
    p, fs, ap = world
    r = p.run("plan", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    md = sorted((p.root / "plans").glob("dev-*.plan.md"))[-1].read_text()
    assert f"shop/efs-claim: shared with the new cluster: {fs} has mount targets in us-east-1" in md

    r = p.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    pvs = {pv["metadata"]["name"]: pv for pv in _kube(p, "dev-green", "get", "pv")["items"]}
    static, dyn = pvs["efs-pv"], pvs["migrate-shop-efs-dyn"]  # a static PV keeps its name
    assert static["spec"]["csi"]["volumeHandle"] == fs and dyn["spec"]["csi"]["volumeHandle"] == f"{fs}::{ap}"
    for pv, claim in ((static, "efs-claim"), (dyn, "efs-dyn")):
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert pv["spec"]["claimRef"]["name"] == claim and pv["spec"]["claimRef"]["namespace"] == "shop"
    claims = {c["metadata"]["name"]: c for c in _kube(p, "dev-green", "get", "pvc", "-n", "shop")["items"]}
    assert claims["efs-claim"]["spec"]["volumeName"] == "efs-pv"
    assert claims["efs-dyn"]["spec"]["volumeName"] == "migrate-shop-efs-dyn"
    assert {claims[c]["status"]["phase"] for c in ("efs-claim", "efs-dyn")} == {"Bound"}
    # No freeze and no second writer rule: the app runs on both clusters at once, as RWX allows.
    assert _kube(p, "dev-green", "get", "deployment", "-n", "shop", "efs-app")["spec"]["replicas"] == 2
    assert _kube(p, "dev-blue", "get", "deployment", "-n", "shop", "efs-app")["spec"]["replicas"] == 2
    assert "shop/efs-claim" not in _tagged("snapshot", "final") and "shop/efs-dyn" not in _tagged("snapshot", "warm")

    # Decommission: the old provisioned PV (Delete) is set to Retain before the cluster goes; not a data loss.
    r = p.run("decommission", "--env", "dev", "--accept-data-loss", "shop/data-redis-0",
              env={"MIGRATE_FAILPOINTS": "after-done:protect-volumes"}, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    old = {pv["metadata"]["name"]: pv for pv in _kube(p, "dev-blue", "get", "pv")["items"]}
    assert old["pvc-5a1e7d3c-efs"]["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    r = p.run("decommission", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert fs in {f["FileSystemId"] for f in boto3.client("efs", region_name="us-east-1")
                  .describe_file_systems()["FileSystems"]}


def test_a_shared_claim_on_a_missing_file_system_is_a_plan_error(world: tuple[Project, str, str]) -> None:
    p, fs, _ap = world
    pv = next(o for o in _manifests("fs-0000dead", "fsap-0") if o["metadata"]["name"] == "efs-pv")
    pv["metadata"]["name"] = "efs-pv-gone"
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "efs-gone", "namespace": "shop"},
             "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-sc", "volumeName": "efs-pv-gone",
                      "resources": {"requests": {"storage": "5Gi"}}}}
    _apply(p, [pv, claim])
    r = p.run("migrate", "--env", "dev", timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "shop/efs-gone: EFS file system fs-0000dead does not exist in us-east-1" in r.stderr
    assert "environments.dev.replay.volumes.rules" in r.stderr
    assert "dev-green" not in boto3.client("eks", region_name="us-east-1").list_clusters()["clusters"]
    assert fs in {f["FileSystemId"] for f in boto3.client("efs", region_name="us-east-1")
                  .describe_file_systems()["FileSystems"]}
