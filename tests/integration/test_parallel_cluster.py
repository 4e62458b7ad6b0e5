"""Steps 1-5 on the sandbox: duplicate and detach the workspace, stand up EKS and GKE clusters through the
API provisioner, reach their Kubernetes APIs with our own tokens, and roll all of it back."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import boto3
import yaml
from engine.kit import Project
from google.auth.credentials import AnonymousCredentials
from google.cloud import container_v1

from migrate.cloud.aws.token import decode
from migrate.sandbox import control

SKIP_AFTER_KUBECONFIG = "[replay-workloads, wait-workloads-ready, open-gateway, validate, shift-traffic]"


def _aws_config(project: Project, sandbox: dict[str, Any], env: str, extra: str = "") -> None:
    (project.root / "migrate.yaml").write_text(f"""
version: 1
sandbox: {{enabled: true, state_dir: {sandbox['state_dir']}}}
environments:
  {env}:
    cloud: aws
    aws: {{region: us-east-1, account_id: "123456789012"}}
    terraform:
      root: {os.getcwd()}/terraform-modules/stacks/sandbox
      backend: {{type: s3, bucket: sandbox-tfstate, key: platform/terraform.tfstate, region: us-east-1,
                dynamodb_table: sandbox-tflock}}
      workspace: {env}
      new_workspace: {env}-green
    clusters:
      old: {{name: {env}-blue}}
      new: {{name: {env}-green, version: "1.31", eks: {{addons: []}}{extra}}}
    skip: {SKIP_AFTER_KUBECONFIG}
""")


def _state_keys() -> list[str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="sandbox-tfstate").get("Contents", []))


def _kubectl(kubeconfig: str, *args: str) -> str:
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True,
                          check=True, env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")}).stdout


def test_eks_cluster_comes_up_answers_and_rolls_back(sandbox: dict[str, Any], project: Project) -> None:
    _aws_config(project, sandbox, "dev")
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    eks = boto3.client("eks", region_name="us-east-1")
    assert {"dev-blue", "dev-green"} <= set(eks.list_clusters()["clusters"])
    # The copy exists with a fresh lineage and without the cluster; the original is untouched.
    assert "env:/dev-green/platform/terraform.tfstate" in _state_keys()
    s3 = boto3.client("s3", region_name="us-east-1")
    green = json.loads(s3.get_object(Bucket="sandbox-tfstate", Key="env:/dev-green/platform/terraform.tfstate")
                       ["Body"].read())
    blue = json.loads(s3.get_object(Bucket="sandbox-tfstate", Key="env:/dev/platform/terraform.tfstate")
                      ["Body"].read())
    assert green["lineage"] != blue["lineage"]
    assert not [r for r in green["resources"] if r["type"] == "aws_eks_cluster"]
    assert [r for r in blue["resources"] if r["type"] == "aws_eks_cluster"]
    # The Kubernetes API answers through the kubeconfig's exec plugin (our token), with Ready nodes.
    kubeconfig = str(project.root / ".migrate/dev/kubeconfig")
    nodes = json.loads(_kubectl(kubeconfig, "get", "nodes", "-o", "json"))["items"]
    ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in n["status"]["conditions"])]
    assert len(ready) >= 3
    assert "kube-system" in _kubectl(kubeconfig, "--context", "dev-blue", "get", "ns")
    # The emulators accept any bearer token, so run the kubeconfig's exec command itself and check its token.
    kc = yaml.safe_load((project.root / ".migrate/dev/kubeconfig").read_text())
    exe = next(u["user"]["exec"] for u in kc["users"] if u["name"] == "dev-green")
    cred = json.loads(subprocess.run([exe["command"], *exe["args"]], capture_output=True, text=True, check=True,
                                     env=dict(os.environ)).stdout)
    url = decode(cred["status"]["token"])
    assert "Action=GetCallerIdentity" in url and "x-k8s-aws-id" in url and "X-Amz-Expires=60" in url
    # Rollback removes what the run created, and only that.
    r = project.run("rollback", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dev-green" not in eks.list_clusters()["clusters"] and "dev-blue" in eks.list_clusters()["clusters"]
    assert "env:/dev-green/platform/terraform.tfstate" not in _state_keys()
    assert "env:/dev/platform/terraform.tfstate" in _state_keys()


def test_injected_provisioning_failure_is_clear_and_rollback_cleans_up(sandbox: dict[str, Any],
                                                                       project: Project) -> None:
    _aws_config(project, sandbox, "staging", extra=", ready_timeout: 2s")
    control(sandbox, "POST", "/faults", {"kind": "eks_delay", "seconds": 60})
    try:
        r = project.run("migrate", "--env", "staging")
    finally:
        control(sandbox, "DELETE", "/faults")
    assert r.returncode == 6, r.stdout + r.stderr
    assert "timed out after 2s waiting for cluster staging-green to become active" in r.stderr
    assert "CREATING" in r.stderr and "Traceback" not in r.stderr
    eks = boto3.client("eks", region_name="us-east-1")
    assert "staging-green" in eks.list_clusters()["clusters"]
    r = project.run("rollback", "--env", "staging")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "staging-green" not in eks.list_clusters()["clusters"]
    assert "env:/staging-green/platform/terraform.tfstate" not in _state_keys()


def test_gke_cluster_comes_up_through_the_rest_api(sandbox: dict[str, Any], project: Project) -> None:
    gcp = sandbox["gcp"]
    client = container_v1.ClusterManagerClient(credentials=AnonymousCredentials(), transport="rest",
                                               client_options={"api_endpoint": gcp["container_endpoint"]})
    parent = f"projects/{gcp['project']}/locations/{gcp['location']}"
    client.create_cluster(parent=parent, cluster=container_v1.Cluster(
        name="gke-blue", initial_cluster_version="1.29",
        node_pools=[container_v1.NodePool(name="pool-a", initial_node_count=2,
                                          config=container_v1.NodeConfig(machine_type="e2-standard-4"))]))
    (project.root / "migrate.yaml").write_text(f"""
version: 1
sandbox: {{enabled: true, state_dir: {sandbox['state_dir']}}}
environments:
  gdev:
    cloud: gcp
    gcp: {{project: {gcp['project']}, location: {gcp['location']}, endpoint: "{gcp['container_endpoint']}"}}
    clusters:
      old: {{name: gke-blue}}
      new: {{name: gke-green, version: "1.31", ready_timeout: 60s}}
    skip: [duplicate-workspace, detach-cluster, {SKIP_AFTER_KUBECONFIG[1:]}
""")
    r = project.run("migrate", "--env", "gdev")
    assert r.returncode == 0, r.stdout + r.stderr
    green = client.get_cluster(name=f"{parent}/clusters/gke-green")
    assert green.status.name == "RUNNING" and [p.name for p in green.node_pools] == ["pool-a"]
    assert green.resource_labels["migrate-replaces"] == "gke-blue"
    kc = yaml.safe_load((project.root / ".migrate/gdev/kubeconfig").read_text())
    assert kc["users"][0]["user"]["exec"]["args"][-1] == "gke"
    nodes = json.loads(_kubectl(str(project.root / ".migrate/gdev/kubeconfig"), "get", "nodes", "-o", "json"))
    assert len([n for n in nodes["items"] if n["metadata"]["labels"].get("cloud.google.com/gke-nodepool")]) == 2
    r = project.run("rollback", "--env", "gdev")
    assert r.returncode == 0, r.stdout + r.stderr
    names = [c.name for c in client.list_clusters(parent=parent).clusters]
    assert "gke-green" not in names and "gke-blue" in names
