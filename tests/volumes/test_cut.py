"""The stateful cut on the sandbox, through the real CLI: the shipped dev environment (the kv StatefulSet on
three gp3 EBS volumes, a write probe through the record), with a short traffic phase so that each run is
quick. Every sandbox PV is a moto volume and every snapshot a moto snapshot, so duplicates are counted there.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from e2e.world import sandboxed_project
from engine.kit import Project

pytestmark = pytest.mark.slow

CLAIMS = ["shop/data-kv-0", "shop/data-kv-1", "shop/data-kv-2"]
PHASES = ["freezing", "frozen", "snapshot-created", "snapshotted", "restore-created", "restored", "bound",
          "scaled"]


def _fast(project: Project, **volumes: Any) -> dict[str, Any]:
    """One weight step and short soaks: the cut, not the traffic, is under test."""
    path = project.root / "migrate.yaml"
    cfg = yaml.safe_load(path.read_text())
    dev = cfg["environments"]["dev"]
    dev["traffic"].update(steps=[100], soak="2s", gate_interval="1s", baseline="1s")
    dev["traffic"]["record"]["ttl"] = 1
    dev["replay"]["volumes"].update(volumes)
    path.write_text(yaml.safe_dump(cfg))
    return cfg


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Project]:
    with sandboxed_project(tmp_path, envs=["dev"]) as (project, _):
        _fast(project)
        yield project


def _ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def _tagged(kind: str, phase: str) -> dict[str, int]:
    """claim -> how many snapshots (or volumes) of this phase exist for it."""
    flt = [{"Name": "tag:migrate-phase", "Values": [phase]}]
    items = (_ec2().describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"] if kind == "snapshot"
             else _ec2().describe_volumes(Filters=flt)["Volumes"])
    out: dict[str, int] = {}
    for it in items:
        claim = {t["Key"]: t["Value"] for t in it.get("Tags", [])}["migrate-volume"]
        out[claim] = out.get(claim, 0) + 1
    return out


def _writes(stdout: str) -> tuple[int, int]:
    m = re.search(r"writes: (\d+) acknowledged, (\d+) lost", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2))


def _kube(project: Project, cluster: str, *args: str) -> Any:
    """kubectl against one of the sandbox's clusters, through the run's kubeconfig."""
    import subprocess

    # The old cluster through the sandbox's own kubeconfig: a rollback removes the run's.
    sandbox = project.root / "sandbox" / "kubeconfigs" / f"{cluster}.yaml"
    kubeconfig = sandbox if sandbox.exists() else project.root / ".migrate" / "dev" / "kubeconfig"
    context = [] if sandbox.exists() else ["--context", cluster]
    out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *context, *args, "-o", "json"],
                         capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)


def _assert_carried_once(project: Project, out: str) -> None:
    acked, lost = _writes(out)
    assert acked > 20 and lost == 0, out
    assert _tagged("snapshot", "final") == dict.fromkeys(CLAIMS, 1)
    assert _tagged("snapshot", "warm") == dict.fromkeys(CLAIMS, 1)
    assert _tagged("volume", "restored") == dict.fromkeys(CLAIMS, 1)
    sts = _kube(project, "dev-green", "get", "statefulset", "-n", "shop", "kv")
    assert sts["spec"]["replicas"] == 3
    old = _kube(project, "dev-blue", "get", "service", "-n", "shop", "kv")
    assert old["spec"]["type"] == "ExternalName"  # the old cluster's clients reach the new writer
    pvs = {pv["spec"]["claimRef"]["name"]: pv for pv in _kube(project, "dev-green", "get", "pv")["items"]
           if pv["spec"].get("claimRef", {}).get("namespace") == "shop"}
    restored = {c["metadata"]["name"]: c for c in _kube(project, "dev-green", "get", "pvc", "-n", "shop")["items"]}
    for claim in ("data-kv-0", "data-kv-1", "data-kv-2"):
        pv = pvs[claim]
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert restored[claim]["spec"]["volumeName"] == pv["metadata"]["name"]
        assert restored[claim]["status"]["phase"] == "Bound"


def test_dev_carries_the_kv_volumes_with_no_lost_write(world: Project) -> None:
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_carried_once(world, r.stdout)
    assert re.search(r"freeze window StatefulSet/shop/kv: \d+\.\d s", r.stdout), r.stdout
    report = next((world.root / "plans").glob("dev-*.report.md")).read_text()
    assert "## Stateful workloads" in report and "0 lost" in report
    assert list((world.root / "plans").glob("dev-*.report.writes.png"))
    cut = json.loads((world.root / ".migrate" / "dev" / "volumes" / "cut.json").read_text())
    entry = cut["workloads"]["StatefulSet/shop/kv"]
    assert entry["phase"] == "done" and 0 < entry["window_s"] < 60


@pytest.mark.parametrize("phase", PHASES)
def test_kill_inside_the_cut_then_resume(world: Project, phase: str) -> None:
    r = world.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": f"at:cut-volumes/{phase}"}, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming run" in r.stdout
    _assert_carried_once(world, r.stdout)


def test_kill_during_the_warm_up_then_resume(world: Project) -> None:
    r = world.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "at:snapshot-volumes/created"},
                  timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    assert sum(_tagged("snapshot", "warm").values()) == 1
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_carried_once(world, r.stdout)


def test_rollback_after_the_freeze_brings_the_old_writer_back(world: Project) -> None:
    r = world.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "at:cut-volumes/restored"}, timeout=600)
    assert r.returncode == -signal.SIGKILL
    assert _kube(world, "dev-blue", "get", "statefulset", "-n", "shop", "kv")["spec"]["replicas"] == 0
    r = world.run("rollback", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    sts = _kube(world, "dev-blue", "get", "statefulset", "-n", "shop", "kv")
    assert sts["spec"]["replicas"] == 3
    svc = _kube(world, "dev-blue", "get", "service", "-n", "shop", "kv")
    assert svc["spec"]["type"] == "LoadBalancer"
    # The restored volumes and the snapshots are kept (tagged) for an explicit cleanup.
    assert _tagged("volume", "restored") == dict.fromkeys(CLAIMS, 1)
    assert _tagged("snapshot", "final") == dict.fromkeys(CLAIMS, 1)
    # The old writer answers again, with the data written before the freeze.
    samples = [json.loads(line) for line in
               (world.root / ".migrate" / "dev" / "volumes" / "writes.jsonl").read_text().splitlines()]
    acked = [s["key"] for s in samples if s.get("key") and 200 <= s["status"] < 300]
    assert acked
    import requests

    for key in acked[:: max(1, len(acked) // 10)]:
        resp = requests.get(f"http://app.dev.sandbox.internal/kv/{key}", timeout=5)
        assert resp.status_code == 200 and resp.json()["value"] == key


def test_zone_remap_when_the_new_cluster_is_in_other_zones(world: Project) -> None:
    ec2 = _ec2()
    vpc = next(v for v in ec2.describe_vpcs()["Vpcs"]
               if {"Key": "Name", "Value": "dev-vpc"} in v.get("Tags", []))
    prefix = ".".join(vpc["CidrBlock"].split(".")[:2])
    subnets = [ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=f"{prefix}.{20 + i}.0/24",
                                 AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for i, z in enumerate("cd")]
    path = world.root / "migrate.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["environments"]["dev"]["clusters"]["new"]["eks"]["subnet_ids"] = subnets
    path.write_text(yaml.safe_dump(cfg))
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_carried_once(world, r.stdout)
    zones = {v["AvailabilityZone"] for v in ec2.describe_volumes(
        Filters=[{"Name": "tag:migrate-phase", "Values": ["restored"]}])["Volumes"]}
    assert zones == {"us-east-1c", "us-east-1d"}
    assert "moved from us-east-1a" in r.stdout
    for pv in _kube(world, "dev-green", "get", "pv")["items"]:
        if pv["metadata"]["name"].startswith("migrate-shop-"):
            term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
            assert term["values"][0] in ("us-east-1c", "us-east-1d")


# --- bad input: a clear error, nothing half-done ---------------------------------------------------------


def test_a_bound_claim_without_a_strategy_is_a_plan_error(world: Project) -> None:
    path = world.root / "migrate.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["environments"]["dev"]["replay"]["volumes"]["rules"] = [
        {"match": {"name": "data-redis-*"}, "strategy": "fresh"}]
    path.write_text(yaml.safe_dump(cfg))
    r = world.run("plan", "--env", "dev")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "environments.dev.replay.volumes.rules" in r.stderr
    assert "shop/data-kv-0: no strategy" in r.stderr
    r = world.run("migrate", "--env", "dev")
    assert r.returncode == 2 and "shop/data-kv-1: no strategy" in r.stderr
    assert "dev-green" not in boto3.client("eks", region_name="us-east-1").list_clusters()["clusters"]
    assert not _ec2().describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag-key", "Values": ["migrate-run"]}])["Snapshots"]
    assert not list((world.root / "plans").glob("dev-*.plan.json"))


def test_a_hostpath_claim_under_a_snapshot_rule_is_refused_with_the_reason(world: Project) -> None:
    """The k8s docs' `task-pv-volume` (hostPath, `manual` class) and its claim, on the old cluster."""
    import subprocess

    objs = [{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "task-pv-volume",
                                                                        "labels": {"type": "local"}},
             "spec": {"storageClassName": "manual", "capacity": {"storage": "10Gi"},
                      "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/mnt/data"}}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "task-pv-claim",
                                                                             "namespace": "shop"},
             "spec": {"storageClassName": "manual", "accessModes": ["ReadWriteOnce"], "volumeName": "task-pv-volume",
                      "resources": {"requests": {"storage": "3Gi"}}}}]
    kubeconfig = world.root / "sandbox" / "kubeconfigs" / "dev-blue.yaml"
    subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "apply", "-f", "-"], check=True, timeout=60,
                   capture_output=True, input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}),
                   text=True)
    cfg = _fast(world)
    cfg["environments"]["dev"]["replay"]["volumes"]["rules"].insert(
        0, {"match": {"name": "task-pv-claim"}, "strategy": "snapshot"})
    (world.root / "migrate.yaml").write_text(yaml.safe_dump(cfg))
    r = world.run("migrate", "--env", "dev", timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "shop/task-pv-claim: a hostpath volume lives on one node's disk" in r.stderr, r.stderr
    assert "dev-green" not in boto3.client("eks", region_name="us-east-1").list_clusters()["clusters"]
    assert not list((world.root / "plans").glob("dev-*.plan.json"))


def test_a_zone_the_new_cluster_lacks_stops_the_cut_before_the_freeze(world: Project) -> None:
    _fast(world, zone_map={"us-east-1a": "us-east-1f"})
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode != 0, r.stdout
    assert "us-east-1f, a zone the new cluster lacks" in r.stderr, r.stderr
    assert "nothing was frozen" in r.stderr
    assert _kube(world, "dev-blue", "get", "statefulset", "-n", "shop", "kv")["spec"]["replicas"] == 3
    assert not _tagged("snapshot", "final") and not _tagged("volume", "restored")


def test_a_kill_while_the_cut_is_undone_then_resume(world: Project) -> None:
    """Stuck snapshots fail the cut; the process dies while undoing it. The resume finishes the undo before
    anything else (never a restore from the stale snapshots), then cuts again with 0 lost writes."""
    _fast(world, snapshot_timeout="3s")
    fault = world.run("sandbox.fault", "--kind", "snapshot_pending", "--seconds", "-1",
                      "--state-dir", str(world.root / "sandbox"))
    assert fault.returncode == 0, fault.stderr
    r = world.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "at:cut-volumes/unfreezing"}, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    assert world.run("sandbox.fault", "--clear", "--state-dir", str(world.root / "sandbox")).returncode == 0
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "interrupted while it was undone" in r.stdout
    assert _tagged("snapshot", "final") == dict.fromkeys(CLAIMS, 2)
    assert _tagged("volume", "restored") == dict.fromkeys(CLAIMS, 1)
    _acked, lost = _writes(r.stdout)
    assert lost == 0


def test_a_snapshot_stuck_pending_unfreezes_the_old_writer(world: Project) -> None:
    _fast(world, snapshot_timeout="3s")
    r = world.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "after-done:validate"}, timeout=600)
    assert r.returncode == -signal.SIGKILL
    fault = world.run("sandbox.fault", "--kind", "snapshot_pending", "--seconds", "-1",
                      "--state-dir", str(world.root / "sandbox"))
    assert fault.returncode == 0, fault.stderr
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode != 0
    assert re.search(r"snapshot snap-\w+ to complete", r.stderr), r.stderr
    assert "pending" in r.stderr
    # The old writer serves again; no restored volume exists; the next attempt reuses the snapshots.
    assert _kube(world, "dev-blue", "get", "statefulset", "-n", "shop", "kv")["spec"]["replicas"] == 3
    assert _kube(world, "dev-blue", "get", "service", "-n", "shop", "kv")["spec"]["type"] == "LoadBalancer"
    assert not _tagged("volume", "restored")
    assert world.run("sandbox.fault", "--clear", "--state-dir", str(world.root / "sandbox")).returncode == 0
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    # The first attempt's snapshots miss the writes taken after the unfreeze: the second takes its own (the
    # stale ones are kept, tagged with their attempt).
    assert _tagged("snapshot", "final") == dict.fromkeys(CLAIMS, 2)
    assert _tagged("volume", "restored") == dict.fromkeys(CLAIMS, 1)
    _acked, lost = _writes(r.stdout)
    assert lost == 0


def _west_subnets() -> list[str]:
    """Two subnets in us-west-2: the new cluster's node group there stands for a cluster moved to that region
    (the sandbox keeps one EKS region; its nodes carry the zones of their subnets)."""
    west = boto3.client("ec2", region_name="us-west-2")
    vpc = west.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    return [west.create_subnet(VpcId=vpc, CidrBlock=f"10.90.{i}.0/24", AvailabilityZone=f"us-west-2{z}")
            ["Subnet"]["SubnetId"] for i, z in enumerate("ab")]


def _in_region(region: str, kind: str, phase: str) -> dict[str, int]:
    ec2 = boto3.client("ec2", region_name=region)
    flt = [{"Name": "tag:migrate-phase", "Values": [phase]}]
    items = (ec2.describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"] if kind == "snapshot"
             else ec2.describe_volumes(Filters=flt)["Volumes"])
    out: dict[str, int] = {}
    for it in items:
        claim = {t["Key"]: t["Value"] for t in it.get("Tags", [])}["migrate-volume"]
        out[claim] = out.get(claim, 0) + 1
    return out


def _new_cluster_in_the_west(world: Project) -> None:
    path = world.root / "migrate.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["environments"]["dev"]["clusters"]["new"]["eks"]["subnet_ids"] = _west_subnets()
    path.write_text(yaml.safe_dump(cfg))


def test_a_new_cluster_in_another_region_without_volumes_region_stops_before_the_freeze(world: Project) -> None:
    _new_cluster_in_the_west(world)
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 8, r.stdout + r.stderr
    assert "outside us-east-1" in r.stderr and "replay.volumes.region" in r.stderr, r.stderr
    assert "nothing was frozen" in r.stderr
    assert _kube(world, "dev-blue", "get", "statefulset", "-n", "shop", "kv")["spec"]["replicas"] == 3
    assert _tagged("snapshot", "final") == {}


def test_region_change_copies_each_snapshot_once_even_when_killed_during_the_copy(world: Project) -> None:
    _new_cluster_in_the_west(world)
    _fast(world, region="us-west-2")
    r = world.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "at:cut-volumes/copy-created"},
                  timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    acked, lost = _writes(r.stdout)
    assert acked > 20 and lost == 0, r.stdout  # read back through the new cluster, from the copied data

    one = dict.fromkeys(CLAIMS, 1)
    assert _in_region("us-east-1", "snapshot", "final") == one
    assert _in_region("us-west-2", "snapshot", "warm-copy") == one
    assert _in_region("us-west-2", "snapshot", "copied") == one
    assert _in_region("us-west-2", "volume", "restored") == one
    assert _in_region("us-east-1", "volume", "restored") == {}
    west = boto3.client("ec2", region_name="us-west-2")
    zones = {v["AvailabilityZone"] for v in west.describe_volumes(
        Filters=[{"Name": "tag:migrate-phase", "Values": ["restored"]}])["Volumes"]}
    assert zones == {"us-west-2a", "us-west-2b"}
    for pv in _kube(world, "dev-green", "get", "pv")["items"]:
        if pv["metadata"]["name"].startswith("migrate-shop-"):
            term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
            assert term["values"][0] in zones
