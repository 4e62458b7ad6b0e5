"""Eks.delete against moto in server mode, with EKS's timing put back into moto's backend.

moto deletes a node group at once, which hides what real EKS does: the group stays DELETING for minutes
and delete_cluster answers ResourceInUseException until every group is gone (moto does refuse while a
group exists). The hooks below give moto's backend that DELETING phase, the way the sandbox's hooks give
it CREATING (migrate/sandbox/aws.py); the adapter talks to the server through boto3 as to AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.eks.models import EKSBackend

from migrate.cloud.aws.eks import Eks, EksClusterSpec, NodeGroupSpec
from migrate.errors import ProviderError


@pytest.fixture
def eks_api(moto_url: str) -> Any:
    return boto3.client("eks", region_name="us-east-1")


@pytest.fixture
def role(moto_url: str) -> str:
    iam = boto3.client("iam", region_name="us-east-1")
    return str(iam.create_role(RoleName="eks", AssumeRolePolicyDocument="{}")["Role"]["Arn"])


@pytest.fixture
def timers() -> Iterator[list[threading.Timer]]:
    started: list[threading.Timer] = []
    yield started
    for t in started:
        t.cancel()


def later(timers: list[threading.Timer], seconds: float, fn: Callable[[], Any]) -> None:
    t = threading.Timer(seconds, fn)
    timers.append(t)
    t.start()


def group(name: str, role: str) -> NodeGroupSpec:
    return NodeGroupSpec(name=name, node_role_arn=role, subnet_ids=["subnet-a"], instance_types=["m6i.large"],
                         min_size=1, max_size=2, desired_size=1)


def cluster(eks_api: Any, role: str, groups: list[str]) -> EksClusterSpec:
    eks_api.create_cluster(name="green", roleArn=role, resourcesVpcConfig={"subnetIds": ["subnet-a"]})
    for g in groups:
        eks_api.create_nodegroup(clusterName="green", nodegroupName=g, nodeRole=role, subnets=["subnet-a"])
    return EksClusterSpec(name="green", version=None, role_arn=role, subnet_ids=["subnet-a"], security_group_ids=[],
                          endpoint_public_access=True, endpoint_private_access=False, encryption_key_arn=None,
                          nodegroups=[group(g, role) for g in groups], addons=[], oidc=False, tags={})


@pytest.fixture
def eks_timing(monkeypatch: pytest.MonkeyPatch, timers: list[threading.Timer]) -> list[tuple[str, Any]]:
    """Node groups stay DELETING for 0.5 s; every delete_cluster call is recorded with the groups left."""
    calls: list[tuple[str, Any]] = []
    delete_nodegroup, delete_cluster = EKSBackend.delete_nodegroup, EKSBackend.delete_cluster

    def slow_delete_nodegroup(self: EKSBackend, cluster_name: str, nodegroup_name: str) -> Any:
        ng = self.clusters.get(cluster_name) and self.clusters[cluster_name].nodegroups.get(nodegroup_name)
        if not ng:
            return delete_nodegroup(self, cluster_name, nodegroup_name)  # moto's ResourceNotFoundException
        calls.append(("delete_nodegroup", nodegroup_name))
        ng.status = "DELETING"
        later(timers, 0.5, lambda: delete_nodegroup(self, cluster_name, nodegroup_name))
        return ng

    def recorded_delete_cluster(self: EKSBackend, name: str) -> Any:
        calls.append(("delete_cluster", sorted(self.clusters[name].nodegroups) if name in self.clusters else None))
        return delete_cluster(self, name)  # moto: ResourceInUseException while a node group remains

    monkeypatch.setattr(EKSBackend, "delete_nodegroup", slow_delete_nodegroup)
    monkeypatch.setattr(EKSBackend, "delete_cluster", recorded_delete_cluster)
    return calls


def test_delete_waits_for_every_node_group_to_be_gone_before_deleting_the_cluster(
        eks_api: Any, role: str, eks_timing: list[tuple[str, Any]]) -> None:
    spec = cluster(eks_api, role, ["a", "b"])
    Eks(boto3.Session(region_name="us-east-1"), poll_interval=0.05).delete(spec, timeout=10)
    # One delete_cluster, sent when no group was left: EKS would have refused any earlier one.
    assert eks_timing == [("delete_nodegroup", "a"), ("delete_nodegroup", "b"), ("delete_cluster", [])]
    assert "green" not in eks_api.list_clusters()["clusters"]


def test_delete_cluster_is_retried_while_eks_says_it_is_in_use(
        eks_api: Any, role: str, eks_timing: list[tuple[str, Any]], timers: list[threading.Timer]) -> None:
    spec = cluster(eks_api, role, ["a"])
    # A group the spec does not name (made by hand): only EKS's ResourceInUseException tells of it.
    eks_api.create_nodegroup(clusterName="green", nodegroupName="by-hand", nodeRole=role, subnets=["subnet-a"])
    later(timers, 1.0, lambda: eks_api.delete_nodegroup(clusterName="green", nodegroupName="by-hand"))
    Eks(boto3.Session(region_name="us-east-1"), poll_interval=0.05).delete(spec, timeout=15)
    attempts = [left for call, left in eks_timing if call == "delete_cluster"]
    assert len(attempts) >= 2 and attempts[0] == ["by-hand"] and attempts[-1] == []
    assert "green" not in eks_api.list_clusters()["clusters"]


def test_a_cluster_that_stays_in_use_times_out_with_ekss_reason(
        eks_api: Any, role: str, eks_timing: list[tuple[str, Any]]) -> None:
    spec = cluster(eks_api, role, [])
    eks_api.create_nodegroup(clusterName="green", nodegroupName="by-hand", nodeRole=role, subnets=["subnet-a"])
    with pytest.raises(ProviderError) as err:
        Eks(boto3.Session(region_name="us-east-1"), poll_interval=0.05).delete(spec, timeout=0.5)
    assert err.value.retryable and "timed out" in err.value.what and "ResourceInUseException" in err.value.what
    assert "green" in eks_api.list_clusters()["clusters"]


def test_a_node_group_eks_cannot_delete_is_a_permanent_error(
        eks_api: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = cluster(eks_api, role, ["a"])

    def failing_delete(self: EKSBackend, cluster_name: str, nodegroup_name: str) -> Any:
        ng = self.clusters[cluster_name].nodegroups[nodegroup_name]
        ng.status = "DELETE_FAILED"
        ng.health = {"issues": [{"code": "Ec2SecurityGroupDeletionFailure", "message": "sg-1 has a dependency",
                                 "resourceIds": ["sg-1"]}]}
        return ng

    monkeypatch.setattr(EKSBackend, "delete_nodegroup", failing_delete)
    with pytest.raises(ProviderError) as err:
        Eks(boto3.Session(region_name="us-east-1"), poll_interval=0.05).delete(spec, timeout=10)
    assert not err.value.retryable
    assert "could not delete node group a: Ec2SecurityGroupDeletionFailure: sg-1 has a dependency (sg-1)" in str(
        err.value)
