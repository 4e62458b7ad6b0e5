"""provision-cluster and write-kubeconfig with the `api` provisioner, against moto's EKS in server mode."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from typing import Any

import boto3
import pytest
import yaml
from engine.kit import Project
from moto.eks.models import EKSBackend

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


def _config(project: Project, extra_new: str = "", eks: str | None = None) -> None:
    skip = ", ".join(k for k in ALL if k not in KEEP)
    eks = eks if eks is not None else f"eks: {{addons: [], subnet_ids: [subnet-c, subnet-d]{extra_new}}}"
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
        {eks}
    skip: [{skip}]
""")


def _outputs(project: Project, kind: str) -> dict[str, Any]:
    """The outputs the journal holds for the last completed step of this kind."""
    done = [json.loads(line) for line in (project.root / ".migrate/dev/journal.jsonl").read_text().splitlines()]
    return dict([r for r in done if r["type"] == "step.done" and kind in r["step"]][-1]["outputs"])


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

    # The OIDC provider made for the new cluster's issuer: recorded in the step's outputs, tagged as ours.
    iam = boto3.client("iam", region_name="us-east-1")
    arn = _outputs(eks_project, "provision-cluster")["oidc_provider_arn"]
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert green["identity"]["oidc"]["issuer"].endswith(provider["Url"])
    assert {"Key": "migrate/cluster", "Value": "dev-green"} in provider["Tags"]

    r = eks_project.run("rollback", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert eks.list_clusters()["clusters"] == ["dev-blue"]
    assert eks.list_nodegroups(clusterName="dev-blue")["nodegroups"] == ["general"]  # the old side is untouched
    assert not kubeconfig.exists()
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)


def test_rollback_leaves_an_oidc_provider_it_did_not_create(eks_project: Project) -> None:
    """moto gives every cluster the same issuer, so the old cluster's provider is already in place for the
    new one's (on AWS: one someone else made for the new issuer). Undo must not delete it."""
    iam = boto3.client("iam", region_name="us-east-1")
    issuer = boto3.client("eks", region_name="us-east-1").describe_cluster(name="dev-blue")["cluster"]["identity"]
    theirs = iam.create_open_id_connect_provider(Url=issuer["oidc"]["issuer"], ClientIDList=["sts.amazonaws.com"],
                                                 ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"])
    r = eks_project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert _outputs(eks_project, "provision-cluster")["oidc_provider_arn"] == theirs["OpenIDConnectProviderArn"]
    r = eks_project.run("rollback", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=theirs["OpenIDConnectProviderArn"])


def _fail_new(monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    """Make moto's backend fail the new cluster (or its node group) the way EKS does: a terminal status and
    health.issues. moto itself never fails a create; this hook runs inside the in-process moto server."""
    create_cluster, create_nodegroup = EKSBackend.create_cluster, EKSBackend.create_nodegroup

    def failing_cluster(self: EKSBackend, *args: Any, **kwargs: Any) -> Any:
        c = create_cluster(self, *args, **kwargs)
        if c.name == "dev-green":
            c.status = "FAILED"
            c.health = {"issues": [{"code": "Ec2SubnetInvalidConfiguration", "resourceIds": ["subnet-c"],
                                    "message": "One or more Amazon EC2 Subnets of [subnet-c] does not "
                                               "automatically assign public IP addresses"}]}
        return c

    def failing_nodegroup(self: EKSBackend, *args: Any, **kwargs: Any) -> Any:
        ng = create_nodegroup(self, *args, **kwargs)
        if ng.cluster_name == "dev-green":
            ng.status = "CREATE_FAILED"
            ng.health = {"issues": [{"code": "AsgInstanceLaunchFailures", "message": "We currently do not have "
                                     "sufficient m6i.large capacity", "resourceIds": ["eks-general-asg"]}]}
        return ng

    if what == "cluster":
        monkeypatch.setattr(EKSBackend, "create_cluster", failing_cluster)
    else:
        monkeypatch.setattr(EKSBackend, "create_nodegroup", failing_nodegroup)


@pytest.mark.parametrize("what", ["cluster", "nodegroup"])
def test_a_failed_create_is_reported_at_once_with_ekss_reason_and_rolls_back(
        eks_project: Project, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    _fail_new(monkeypatch, what)
    t0 = time.monotonic()
    r = eks_project.run("migrate", "--env", "dev")  # ready_timeout is the default 1800 s
    assert r.returncode == 6, r.stderr
    assert time.monotonic() - t0 < 30, "a failed cluster must not be waited for"
    assert "Traceback" not in r.stderr and "timed out" not in r.stderr
    if what == "cluster":
        assert "EKS cluster dev-green is FAILED: Ec2SubnetInvalidConfiguration: One or more Amazon EC2 Subnets" \
               in r.stderr and "(subnet-c)" in r.stderr
    else:
        assert "node group general of EKS cluster dev-green is CREATE_FAILED: AsgInstanceLaunchFailures: " \
               "We currently do not have sufficient m6i.large capacity" in r.stderr
    assert "rollback" in r.stderr  # the hint says how to clean up
    eks = boto3.client("eks", region_name="us-east-1")
    assert "dev-green" in eks.list_clusters()["clusters"]
    r = eks_project.run("rollback", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert eks.list_clusters()["clusters"] == ["dev-blue"]


def test_addons_on_an_endpoint_without_the_addons_api_are_a_clear_error(moto_url: str, project: Project) -> None:
    """moto (and so the sandbox) has no EKS add-ons API: its routes answer a bare 404 page."""
    _seed_old_cluster()
    _config(project, eks="eks: {subnet_ids: [subnet-c, subnet-d]}")  # add-ons copied from the old cluster
    r = project.run("plan", "--env", "dev")
    assert r.returncode == 6, r.stderr
    assert "has no add-ons API" in r.stderr and "clusters.new.eks.addons: []" in r.stderr
    assert "<html" not in r.stderr.lower() and "Traceback" not in r.stderr

    _config(project, eks="eks: {addons: [coredns], subnet_ids: [subnet-c, subnet-d]}")
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 6, r.stderr
    assert "has no add-ons API" in r.stderr and "clusters.new.eks.addons: []" in r.stderr
    assert "<html" not in r.stderr.lower() and "timed out" not in r.stderr
    r = project.run("rollback", "--env", "dev")  # deleting add-ons that cannot exist is no error
    assert r.returncode == 0, r.stderr
    assert boto3.client("eks", region_name="us-east-1").list_clusters()["clusters"] == ["dev-blue"]


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
