"""Decommission safety on the sandbox, through the real CLI: the shipped dev environment carries the kv claims
(snapshot) and starts redis's claim empty (fresh). Destroying the old cluster deletes its Delete volumes (the
sandbox models a teardown that removes the namespaces first), so redis's old data would go with it.

The decommission must refuse until the operator names that claim, take a final snapshot of every old volume
whose data was not carried (found again after a kill, never taken twice), and list them in its report.
"""

from __future__ import annotations

import signal
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

REDIS = "shop/data-redis-0"


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[Project]:
    with sandboxed_project(tmp_path, envs=["dev"]) as (project, _):
        _fast(project)
        path = project.root / "migrate.yaml"
        cfg = yaml.safe_load(path.read_text())
        cfg["environments"]["dev"]["bake"] = "0s"
        path.write_text(yaml.safe_dump(cfg))
        r = project.run("migrate", "--env", "dev", timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        yield project


def _ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def _old_handles(project: Project) -> dict[str, str]:
    """claim -> the EBS volume behind it on the old cluster."""
    out = {}
    for pv in _kube(project, "dev-blue", "get", "pv")["items"]:
        spec = pv["spec"]
        handle = spec["csi"]["volumeHandle"] if spec.get("csi") else \
            spec.get("awsElasticBlockStore", {}).get("volumeID", "").rsplit("/", 1)[-1]
        out[f"{spec['claimRef']['namespace']}/{spec['claimRef']['name']}"] = handle
    return out


def _volume_exists(volume_id: str) -> bool:
    return bool(_ec2().describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Volumes"])


def _cluster_exists(name: str) -> bool:
    return name in boto3.client("eks", region_name="us-east-1").list_clusters()["clusters"]


def test_refused_until_the_fresh_claim_is_accepted_then_snapshotted_once_and_reported(migrated: Project) -> None:
    p = migrated
    handles = _old_handles(p)
    assert REDIS in handles and _volume_exists(handles[REDIS])

    # Refused, by plan and by run: the message names the claim and the flag; nothing is written or destroyed.
    for args in (("plan", "--env", "dev", "--decommission"), ("decommission", "--env", "dev")):
        r = p.run(*args, timeout=120)
        assert r.returncode == 7, r.stdout + r.stderr
        assert REDIS in r.stderr and f"--accept-data-loss {REDIS}" in r.stderr, r.stderr
        assert "shop/data-kv" not in r.stderr  # carried at the cut: not at risk
    assert not list((p.root / "plans").glob("decommission-dev-*"))
    assert _cluster_exists("dev-blue") and _tagged("snapshot", "decommission") == {}

    # A pattern that names no claim at risk is a typo until proven otherwise.
    r = p.run("plan", "--env", "dev", "--decommission", "--accept-data-loss", REDIS,
              "--accept-data-loss", "shop/data-kv-0", timeout=120)
    assert r.returncode == 2 and "names no claim" in r.stderr and REDIS in r.stderr, r.stderr

    # Accepted by glob: the plan records it and shows every old volume's fate.
    r = p.run("plan", "--env", "dev", "--decommission", "--accept-data-loss", "shop/data-redis-*", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    plan_json = sorted((p.root / "plans").glob("decommission-dev-*.plan.json"))[-1]
    md = plan_json.with_name(plan_json.name.replace(".plan.json", ".plan.md")).read_text()
    assert "## The old cluster's volumes" in md and "**yes (accepted)**" in md
    assert f"the data of {REDIS} on {handles[REDIS]} (accepted with --accept-data-loss)" in md

    # The reviewed plan's acceptance cannot be changed on the command line.
    r = p.run("decommission", "--env", "dev", "--plan", str(plan_json), "--accept-data-loss", "shop/*",
              timeout=120)
    assert r.returncode == 3 and "the plan accepts" in r.stderr, r.stderr

    # Killed right after the first snapshot is created, then resumed: one snapshot per claim, no more.
    r = p.run("decommission", "--env", "dev", "--plan", str(plan_json),
              env={"MIGRATE_FAILPOINTS": "at:protect-volumes/created"}, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    assert _cluster_exists("dev-blue")
    r = p.run("decommission", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _tagged("snapshot", "decommission") == {REDIS: 1}

    snaps = _ec2().describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:migrate-phase", "Values": ["decommission"]}])["Snapshots"]
    assert snaps[0]["VolumeId"] == handles[REDIS] and snaps[0]["State"] == "completed"
    # The old cluster is gone, and with it its Delete volumes; the snapshot and the carried data remain.
    assert not _cluster_exists("dev-blue")
    assert not _volume_exists(handles[REDIS])
    assert not any(_volume_exists(handles[c]) for c in handles if c.startswith("shop/data-kv-"))
    assert _tagged("volume", "restored") == {f"shop/data-kv-{i}": 1 for i in range(3)}

    report = next((p.root / "plans").glob("decommission-dev-*.report.md")).read_text()
    assert "SUCCESS: cluster dev-blue is decommissioned" in report
    assert snaps[0]["SnapshotId"] in report and "## Old cluster's volumes" in report
    assert f"accepted with --accept-data-loss: {REDIS}" in report
    assert "the snapshot only" in report
    restored = {v["VolumeId"] for v in _ec2().describe_volumes(
        Filters=[{"Name": "tag:migrate-phase", "Values": ["restored"]}])["Volumes"]}
    assert all(v in report for v in restored)  # where the carried claims' data is now
