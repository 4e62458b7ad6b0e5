"""provision-cluster and write-kubeconfig with the `api` provisioner, against moto's EKS in server mode."""

from __future__ import annotations

import json
import os
import signal
import stat

import boto3
import pytest
import yaml
from engine.kit import Project

KEEP = ["provision-cluster", "write-kubeconfig", "write-report"]
ALL = ["duplicate-workspace", "detach-cluster", "provision-cluster", "wait-cluster-ready", "write-kubeconfig",
       "replay-workloads", "wait-workloads-ready", "open-gateway", "validate", "shift-traffic"]


def _seed_old_cluster() -> dict[str, str]:
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="eks-cluster", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    node_role = iam.create_role(RoleName="eks-node", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    eks = boto3.client("eks", region_name="us-east-1")
    eks.create_cluster(name="dev-blue", version="1.29", roleArn=role,
                       resourcesVpcConfig={"subnetIds": ["subnet-a", "subnet-b"], "securityGroupIds": ["sg-1"]})
    eks.create_nodegroup(clusterName="dev-blue", nodegroupName="general", nodeRole=node_role,
                         subnets=["subnet-a", "subnet-b"], instanceTypes=["m6i.large"],
                         scalingConfig={"minSize": 1, "maxSize": 4, "desiredSize": 3})
    return {"role": role, "node_role": node_role}


def _config(project: Project, extra_new: str = "") -> None:
    skip = ", ".join(k for k in ALL if k not in KEEP)
    (project.root / "migrate.yaml").write_text(f"""
version: 1
environments:
  dev:
    cloud: aws
    aws: {{region: us-east-1}}
    clusters:
      old: {{name: dev-blue}}
      new:
        name: dev-green
        version: "1.31"
        eks: {{addons: [], subnet_ids: [subnet-c, subnet-d]{extra_new}}}
    skip: [{skip}]
""")


@pytest.fixture
def eks_project(moto_url: str, project: Project) -> Project:
    _seed_old_cluster()
    _config(project)
    return project


def test_plan_shows_the_spec_copied_from_the_old_cluster_with_overrides(eks_project: Project) -> None:
    r = eks_project.run("plan", "--env", "dev")
    assert r.returncode == 0, r.stderr
    plan = json.loads(eks_project.plans()[-1].read_text())
    spec = plan["steps"][0]["params"]["spec"]
    assert spec["name"] == "dev-green" and spec["version"] == "1.31"
    assert spec["subnet_ids"] == ["subnet-c", "subnet-d"]  # overridden
    assert spec["security_group_ids"] == ["sg-1"]  # copied
    assert [(g["name"], g["desired_size"], g["instance_types"]) for g in spec["nodegroups"]] == [
        ("general", 3, ["m6i.large"])]
    assert plan["fingerprint"]["facts"]["provision-cluster"]["old"]["version"] == "1.29"
    assert boto3.client("eks", region_name="us-east-1").list_clusters()["clusters"] == ["dev-blue"]


def test_provision_kubeconfig_resume_and_rollback(eks_project: Project) -> None:
    eks = boto3.client("eks", region_name="us-east-1")
    # Killed right after journaling the start: the resume must not create a second cluster.
    r = eks_project.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "after-start:provision-cluster"})
    assert r.returncode == -signal.SIGKILL
    r = eks_project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert sorted(eks.list_clusters()["clusters"]) == ["dev-blue", "dev-green"]
    green = eks.describe_cluster(name="dev-green")["cluster"]
    assert green["version"] == "1.31"
    assert green["resourcesVpcConfig"]["subnetIds"] == ["subnet-c", "subnet-d"]
    assert green["tags"]["migrate/replaces"] == "dev-blue"
    assert eks.list_nodegroups(clusterName="dev-green")["nodegroups"] == ["general"]
    kubeconfig = eks_project.root / ".migrate/dev/kubeconfig"
    assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600
    kc = yaml.safe_load(kubeconfig.read_text())
    assert {c["name"] for c in kc["contexts"]} == {"dev-blue", "dev-green"} and kc["current-context"] == "dev-green"
    user = kc["users"][0]["user"]["exec"]
    assert user["args"][:3] == ["-m", "migrate.cloud.token", "eks"]
    assert "k8s-aws-v1" not in kubeconfig.read_text()  # no stored token: the exec plugin mints one
    status = json.loads(eks_project.run("status", "--env", "dev", "--json").stdout)[0]["runs"]["migrate"]
    assert status["status"] == "completed"

    r = eks_project.run("rollback", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert eks.list_clusters()["clusters"] == ["dev-blue"]
    assert eks.list_nodegroups(clusterName="dev-blue")["nodegroups"] == ["general"]  # the old side is untouched
    assert not kubeconfig.exists()
    iam = boto3.client("iam", region_name="us-east-1")
    issuers = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    assert all("dev-green" not in a for a in issuers)


def test_missing_old_cluster_is_a_clear_planning_error(moto_url: str, project: Project) -> None:
    _config(project)
    r = project.run("plan", "--env", "dev")
    assert r.returncode == 8
    assert "old cluster dev-blue was not found" in r.stderr and "clusters.old.name" in r.stderr
    assert project.plans() == []


def test_unreachable_endpoint_is_a_clear_error(project: Project) -> None:
    _config(project)
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
           "AWS_MAX_ATTEMPTS": "1"}
    r = project.run("plan", "--env", "dev", env=env)
    assert r.returncode == 6, r.stderr
    assert "AWS endpoint unreachable" in r.stderr and "Traceback" not in r.stderr
