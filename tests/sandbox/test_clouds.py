"""The clouds as the toolkit's SDKs see them: EKS through boto3 (endpoint = the cluster's API emulator),
GKE through google-cloud-container over REST, GCS through google-cloud-storage. Real clients, no mocks."""

from __future__ import annotations

import time
from typing import Any

import boto3
import kubernetes
import pytest
import urllib3
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import container_v1, storage

from migrate.sandbox import env_vars, lifecycle
from sandbox.sandboxkit import aws, wait_for


def core(endpoint: str) -> kubernetes.client.CoreV1Api:
    cfg = kubernetes.client.Configuration()
    cfg.host = endpoint
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))


def test_eks_endpoint_is_the_clusters_emulator_with_plain_sdk_env(sandbox: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """No special case in the caller: env_vars() + plain boto3.client("eks") + describe_cluster's endpoint."""
    for k, v in env_vars(sandbox).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    cluster = boto3.client("eks").describe_cluster(name="prod-blue")["cluster"]
    assert cluster["status"] == "ACTIVE" and cluster["version"] == "1.29"
    assert cluster["endpoint"] == sandbox["clusters"]["prod-blue"]["api"]
    assert cluster["certificateAuthority"]["data"]
    assert cluster["identity"]["oidc"]["issuer"].startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    names = {n.metadata.name for n in core(cluster["endpoint"]).list_namespace().items}
    assert {"shop", "ingress-nginx", "monitoring", "kube-system"} <= names
    # EKS's self-managed core add-ons are there from the start, and the readiness check sees them ready.
    from migrate.cloud.clusters import EKS_ADDON_WORKLOADS, EKS_DEFAULT_ADDONS, api_missing

    api = core(cluster["endpoint"]).api_client
    addons = [(a, *EKS_ADDON_WORKLOADS[a]) for a in EKS_DEFAULT_ADDONS]
    wait_for(lambda: api_missing(api, 0, addons) == [], what="core add-ons ready")
    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_eks_delay_fault_create_and_delete(sandbox: dict[str, Any], clean_faults: None) -> None:
    eks = aws(sandbox, "eks")
    role = eks.describe_cluster(name="staging-blue")["cluster"]["roleArn"]
    lifecycle.control(sandbox, "POST", "/faults", {"kind": "eks_delay", "seconds": 1.0})
    eks.create_cluster(name="delayed", version="1.31", roleArn=role, resourcesVpcConfig={"subnetIds": []})
    assert eks.describe_cluster(name="delayed")["cluster"]["status"] == "CREATING"
    with pytest.raises(eks.exceptions.InvalidRequestException):  # as on AWS: not before the cluster is ACTIVE
        eks.create_nodegroup(clusterName="delayed", nodegroupName="ng", nodeRole=role, subnets=["subnet-1"])
    t0 = time.monotonic()
    wait_for(lambda: eks.describe_cluster(name="delayed")["cluster"]["status"] == "ACTIVE", what="ACTIVE")
    assert time.monotonic() - t0 > 0.3
    ng = eks.create_nodegroup(clusterName="delayed", nodegroupName="ng", nodeRole=role, subnets=["subnet-1"])
    assert ng["nodegroup"]["status"] == "CREATING"
    wait_for(lambda: eks.describe_nodegroup(clusterName="delayed", nodegroupName="ng")["nodegroup"]["status"]
             == "ACTIVE", what="node group ACTIVE")
    endpoint = eks.describe_cluster(name="delayed")["cluster"]["endpoint"]
    assert core(endpoint).read_namespace("default").metadata.name == "default"
    assert core(endpoint).get_api_resources  # the python client reaches it
    eks.delete_nodegroup(clusterName="delayed", nodegroupName="ng")
    gone = eks.delete_cluster(name="delayed")["cluster"]
    assert gone["status"] == "DELETING"  # moto alone says ACTIVE
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_cluster(name="delayed")
    with pytest.raises(urllib3.exceptions.MaxRetryError):  # the emulator is stopped with its cluster
        core(endpoint).list_namespace(_request_timeout=2)
    assert "delayed" not in lifecycle.control(sandbox, "GET", "/status")["clusters"]


def gke_client(sandbox: dict[str, Any]) -> container_v1.ClusterManagerClient:
    return container_v1.ClusterManagerClient(
        transport="rest", credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=sandbox["gcp"]["container_endpoint"]))


def wait_op(client: container_v1.ClusterManagerClient, parent: str, op: Any) -> None:
    name = f"{parent}/operations/{op.name}"
    wait_for(lambda: client.get_operation(name=name).status == container_v1.Operation.Status.DONE,
             what=f"operation {op.name}")


def test_gke_clusters_node_pools_and_operations_over_rest(sandbox: dict[str, Any]) -> None:
    client = gke_client(sandbox)
    parent = f"projects/{sandbox['gcp']['project']}/locations/europe-west1"
    op = client.create_cluster(parent=parent, cluster=container_v1.Cluster(
        name="gke-green", initial_cluster_version="1.31", node_pools=[container_v1.NodePool(
            name="default-pool", initial_node_count=2)]))
    assert op.operation_type == container_v1.Operation.Type.CREATE_CLUSTER
    assert op.status == container_v1.Operation.Status.RUNNING
    name = f"{parent}/clusters/gke-green"
    assert client.get_cluster(name=name).status == container_v1.Cluster.Status.PROVISIONING
    wait_op(client, parent, op)
    cluster = client.get_cluster(name=name)
    assert cluster.status == container_v1.Cluster.Status.RUNNING
    assert cluster.current_master_version.startswith("1.31")
    scheme = sandbox["gcp"]["cluster_scheme"]
    assert core(f"{scheme}://{cluster.endpoint}").read_namespace("default").metadata.name == "default"
    assert [c.name for c in client.list_clusters(parent=parent).clusters] == ["gke-green"]
    with pytest.raises(gexc.Conflict):
        client.create_cluster(parent=parent, cluster=container_v1.Cluster(name="gke-green"))

    op = client.create_node_pool(parent=name, node_pool=container_v1.NodePool(name="extra", initial_node_count=1))
    wait_op(client, parent, op)
    assert {p.name for p in client.list_node_pools(parent=name).node_pools} == {"default-pool", "extra"}
    assert client.get_node_pool(name=f"{name}/nodePools/extra").status == container_v1.NodePool.Status.RUNNING
    wait_op(client, parent, client.delete_node_pool(name=f"{name}/nodePools/extra"))
    assert {p.name for p in client.list_node_pools(parent=name).node_pools} == {"default-pool"}

    wait_op(client, parent, client.delete_cluster(name=name))
    with pytest.raises(gexc.NotFound):
        client.get_cluster(name=name)
    assert "gke-green" not in lifecycle.control(sandbox, "GET", "/status")["clusters"]


def test_gcs_state_bucket_through_storage_emulator_host(sandbox: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", env_vars(sandbox)["STORAGE_EMULATOR_HOST"])
    client = storage.Client(project=sandbox["gcp"]["project"], credentials=AnonymousCredentials())
    bucket = client.bucket(sandbox["gcp"]["storage_bucket"])
    blob = bucket.blob("platform/dev.tfstate")
    blob.upload_from_string(b'{"version": 4}', if_generation_match=0)  # what the GCS backend's lock relies on
    assert bucket.blob("platform/dev.tfstate").download_as_bytes() == b'{"version": 4}'
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("platform/dev.tfstate").upload_from_string(b"{}", if_generation_match=0)
    assert [b.name for b in client.list_blobs(bucket)] == ["platform/dev.tfstate"]
    gen = bucket.get_blob("platform/dev.tfstate").generation
    with pytest.raises(gexc.PreconditionFailed):  # unlock deletes only the generation it locked
        bucket.blob("platform/dev.tfstate").delete(if_generation_match=int(gen) + 1)
    bucket.blob("platform/dev.tfstate").delete(if_generation_match=gen)
    assert list(client.list_blobs(bucket)) == []


def test_gke_one_operation_at_a_time_node_pool_nodes_and_kube_dns(sandbox: dict[str, Any]) -> None:
    client = gke_client(sandbox)
    parent = f"projects/{sandbox['gcp']['project']}/locations/asia-east1"
    name = f"{parent}/clusters/gke-ops"
    op = client.create_cluster(parent=parent, cluster=container_v1.Cluster(name="gke-ops", node_pools=[
        container_v1.NodePool(name="default-pool", initial_node_count=1)]))
    with pytest.raises(gexc.BadRequest, match="incompatible operation"):  # GKE: FAILED_PRECONDITION
        client.delete_cluster(name=name)
    with pytest.raises(gexc.BadRequest, match="incompatible operation"):
        client.create_node_pool(parent=name, node_pool=container_v1.NodePool(name="extra", initial_node_count=2))
    wait_op(client, parent, op)
    endpoint = f"{sandbox['gcp']['cluster_scheme']}://{client.get_cluster(name=name).endpoint}"
    apps = kubernetes.client.AppsV1Api(core(endpoint).api_client)
    assert apps.read_namespaced_deployment("kube-dns", "kube-system").spec.replicas == 2  # GKE's DNS add-on

    def pool_nodes() -> list[str]:
        return sorted(str(n.metadata.labels.get("cloud.google.com/gke-nodepool")) for n in core(endpoint).list_node(
            label_selector="cloud.google.com/gke-nodepool").items)

    assert pool_nodes() == ["default-pool"]
    wait_op(client, parent, client.create_node_pool(parent=name, node_pool=container_v1.NodePool(
        name="extra", initial_node_count=2)))
    assert pool_nodes() == ["default-pool", "extra", "extra"]  # the new pool's kubelets joined
    wait_op(client, parent, client.delete_node_pool(name=f"{name}/nodePools/extra"))
    assert pool_nodes() == ["default-pool"]  # and left with it
    wait_op(client, parent, client.delete_cluster(name=name))


def test_gke_create_error_fault(sandbox: dict[str, Any], clean_faults: None) -> None:
    client = gke_client(sandbox)
    parent = f"projects/{sandbox['gcp']['project']}/locations/asia-east2"
    lifecycle.control(sandbox, "POST", "/faults", {"kind": "gke_create_error", "cluster": "gke-broken",
                                                   "message": "Insufficient regional quota: CPUS"})
    assert lifecycle.control(sandbox, "GET", "/faults")["gke_create_error"] == [
        {"cluster": "gke-broken", "message": "Insufficient regional quota: CPUS", "code": 8}]
    op = client.create_cluster(parent=parent, cluster=container_v1.Cluster(name="gke-broken"))
    wait_op(client, parent, op)
    done = client.get_operation(name=f"{parent}/operations/{op.name}")
    assert done.error.code == 8 and done.error.message == "Insufficient regional quota: CPUS"
    broken = client.get_cluster(name=f"{parent}/clusters/gke-broken")
    assert broken.status == container_v1.Cluster.Status.ERROR
    assert broken.status_message == "Insufficient regional quota: CPUS"
    assert {p.status for p in broken.node_pools} == {container_v1.NodePool.Status.ERROR}
    other = client.create_cluster(parent=parent, cluster=container_v1.Cluster(name="gke-fine"))  # not matched
    wait_op(client, parent, other)
    assert client.get_cluster(name=f"{parent}/clusters/gke-fine").status == container_v1.Cluster.Status.RUNNING
    for c in ("gke-broken", "gke-fine"):  # a cluster in ERROR is deleted like any other
        wait_op(client, parent, client.delete_cluster(name=f"{parent}/clusters/{c}"))
    assert list(client.list_clusters(parent=parent).clusters) == []
