"""A run started in one clone is resumed from another: journal and run lock live next to the state
(S3 objects and the DynamoDB lock table of the sandbox), not on the machine that started it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import boto3
from engine.kit import Project

CONFIG = """
version: 1
sandbox: {{enabled: true, state_dir: {state_dir}}}
environments:
  dev:
    cloud: aws
    aws: {{region: us-east-1, account_id: "123456789012"}}
    journal: backend
    terraform:
      root: {root}/terraform-modules/stacks/sandbox
      backend: {{type: s3, bucket: sandbox-tfstate, key: platform/terraform.tfstate, region: us-east-1,
                dynamodb_table: sandbox-tflock}}
      workspace: dev
      new_workspace: dev-green
    clusters:
      old: {{name: dev-blue}}
      new: {{name: dev-green, version: "1.31", eks: {{addons: []}}}}
    skip: [replay-workloads, wait-workloads-ready, open-gateway, validate, shift-traffic, protect-volumes]
"""


def _clone(tmp: Path, name: str, sandbox: dict[str, Any]) -> Project:
    root = tmp / name
    root.mkdir()
    (root / "migrate.yaml").write_text(CONFIG.format(state_dir=sandbox["state_dir"], root=os.getcwd()))
    return Project(root)


def _journal_records() -> list[dict[str, Any]]:
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="sandbox-tfstate",
                                                        Prefix="platform/.migrate/dev/journal/").get("Contents", []))
    return [json.loads(s3.get_object(Bucket="sandbox-tfstate", Key=k)["Body"].read()) for k in keys]


def test_start_in_one_clone_resume_from_another(sandbox: dict[str, Any], tmp_path: Path) -> None:
    a, b = _clone(tmp_path, "a", sandbox), _clone(tmp_path, "b", sandbox)
    r = a.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "after-done:detach-cluster"})
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (a.root / ".migrate/dev/journal.jsonl").exists()  # nothing journaled locally
    done = [x["step"] for x in _journal_records() if x["type"] == "step.done"]
    assert done == ["01-duplicate-workspace", "02-detach-cluster"]

    # The killed run still holds the lock (a remote lock cannot die with its process): B is refused...
    r = b.run("migrate", "--env", "dev")
    assert r.returncode == 5, r.stdout + r.stderr
    assert "is locked by" in r.stderr and "lock ID" in r.stderr
    lock_id = r.stderr.split("lock ID ")[1].split(")")[0].strip()
    status = json.loads(b.run("status", "--env", "dev", "--json").stdout)[0]
    assert status["lock"]["ID"] == lock_id and status["runs"]["migrate"]["status"] == "running"
    # ...until an operator releases it by ID, then B resumes where A stopped.
    assert b.run("migrate", "--env", "dev", "--force-unlock", "wrong-id").returncode == 5
    r = b.run("migrate", "--env", "dev", "--force-unlock", lock_id)
    assert r.returncode == 0, r.stderr
    r = b.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming run" in r.stdout and "done in an earlier attempt" in r.stdout
    records = _journal_records()
    started = [x["step"] for x in records if x["type"] == "step.started"]
    assert started.count("01-duplicate-workspace") == 1 and started.count("02-detach-cluster") == 1
    assert records[-1]["type"] == "run.completed"
    assert (b.root / ".migrate/dev/kubeconfig").exists()
    # A, back online, sees the same run as completed and has nothing to do.
    r = a.run("migrate", "--env", "dev")
    assert r.returncode == 0 and "nothing to do" in r.stdout
    eks = boto3.client("eks", region_name="us-east-1")
    assert "dev-green" in eks.list_clusters()["clusters"]
    assert a.run("rollback", "--env", "dev").returncode == 0
    assert "dev-green" not in eks.list_clusters()["clusters"]
