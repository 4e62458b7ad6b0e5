"""Steps 1-5 on the sandbox: duplicate and detach the workspace, stand up EKS and GKE clusters through the
API provisioner, reach their Kubernetes APIs with our own tokens, and roll all of it back."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import boto3
import yaml
from engine.kit import Project
from google.auth.credentials import AnonymousCredentials
from google.cloud import container_v1

from migrate.cloud.aws.token import decode
from migrate.sandbox import control

SKIP_AFTER_KUBECONFIG = ("[replay-workloads, wait-workloads-ready, open-gateway, validate, shift-traffic, "
                         "protect-volumes]")


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


def _outputs(project: Project, env: str, kind: str) -> dict[str, Any]:
    """The outputs the journal holds for the last completed step of this kind."""
    recs = [json.loads(line) for line in (project.root / f".migrate/{env}/journal.jsonl").read_text().splitlines()]
    return dict([r for r in recs if r["type"] == "step.done" and kind in r["step"]][-1]["outputs"])


def _oidc_arns() -> set[str]:
    iam = boto3.client("iam", region_name="us-east-1")
    return {p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}


def _gke(sandbox: dict[str, Any]) -> container_v1.ClusterManagerClient:
    return container_v1.ClusterManagerClient(credentials=AnonymousCredentials(), transport="rest",
                                             client_options={"api_endpoint": sandbox["gcp"]["container_endpoint"]})


def _gke_old_cluster(client: container_v1.ClusterManagerClient, parent: str, name: str, channel: str) -> None:
    op = client.create_cluster(parent=parent, cluster=container_v1.Cluster(
        name=name, initial_cluster_version="1.29",
        release_channel=container_v1.ReleaseChannel(channel=container_v1.ReleaseChannel.Channel[channel]),
        node_pools=[container_v1.NodePool(name="pool-a", initial_node_count=2,
                                          config=container_v1.NodeConfig(machine_type="e2-standard-4"))]))
    deadline = time.monotonic() + 10
    while client.get_operation(name=f"{parent}/operations/{op.name}").status.name != "DONE":
        assert time.monotonic() < deadline, "the old cluster's create never finished"
        time.sleep(0.1)


def _gke_config(project: Project, sandbox: dict[str, Any], env: str, location: str, old: str, new: str,
                new_extra: str = "") -> None:
    gcp = sandbox["gcp"]
    (project.root / "migrate.yaml").write_text(f"""
version: 1
sandbox: {{enabled: true, state_dir: {sandbox['state_dir']}}}
environments:
  {env}:
    cloud: gcp
    gcp: {{project: {gcp['project']}, location: {location}, endpoint: "{gcp['container_endpoint']}"}}
    clusters:
      old: {{name: {old}}}
      new: {{name: {new}, version: "1.31"{new_extra}}}
    skip: [duplicate-workspace, detach-cluster, {SKIP_AFTER_KUBECONFIG[1:]}
""")


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
    # The OIDC provider for the new cluster's own issuer, recorded in the outputs; the old one's stays apart.
    green_arn = _outputs(project, "dev", "provision-cluster")["oidc_provider_arn"]
    green_issuer = eks.describe_cluster(name="dev-green")["cluster"]["identity"]["oidc"]["issuer"]
    blue_issuer = eks.describe_cluster(name="dev-blue")["cluster"]["identity"]["oidc"]["issuer"]
    assert green_arn.endswith(green_issuer.removeprefix("https://")) and green_issuer != blue_issuer
    blue_arns = {a for a in _oidc_arns() if a.endswith(blue_issuer.removeprefix("https://"))}
    assert green_arn in _oidc_arns() and len(blue_arns) == 1
    # Rollback removes what the run created, and only that.
    r = project.run("rollback", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dev-green" not in eks.list_clusters()["clusters"] and "dev-blue" in eks.list_clusters()["clusters"]
    assert green_arn not in _oidc_arns() and blue_arns <= _oidc_arns()
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
    client = _gke(sandbox)
    parent = f"projects/{gcp['project']}/locations/{gcp['location']}"
    _gke_old_cluster(client, parent, "gke-blue", "REGULAR")
    _gke_config(project, sandbox, "gdev", gcp["location"], "gke-blue", "gke-green",
                ", ready_timeout: 60s, gke: {release_channel: STABLE}")
    r = project.run("migrate", "--env", "gdev")
    assert r.returncode == 0, r.stdout + r.stderr
    green = client.get_cluster(name=f"{parent}/clusters/gke-green")
    assert green.status.name == "RUNNING" and [p.name for p in green.node_pools] == ["pool-a"]
    assert green.resource_labels["migrate-replaces"] == "gke-blue"
    assert green.release_channel.channel.name == "STABLE"  # the configured channel, not the old REGULAR
    kc = yaml.safe_load((project.root / ".migrate/gdev/kubeconfig").read_text())
    assert kc["users"][0]["user"]["exec"]["args"][-1] == "gke"
    nodes = json.loads(_kubectl(str(project.root / ".migrate/gdev/kubeconfig"), "get", "nodes", "-o", "json"))
    assert len([n for n in nodes["items"] if n["metadata"]["labels"].get("cloud.google.com/gke-nodepool")]) == 2
    r = project.run("rollback", "--env", "gdev")
    assert r.returncode == 0, r.stdout + r.stderr
    names = [c.name for c in client.list_clusters(parent=parent).clusters]
    assert "gke-green" not in names and "gke-blue" in names


def test_gke_injected_provisioning_failure_is_clear_and_rollback_cleans_up(sandbox: dict[str, Any],
                                                                           project: Project) -> None:
    location = "europe-west4"  # a location of its own: afterwards it must list the old cluster only
    parent = f"projects/{sandbox['gcp']['project']}/locations/{location}"
    client = _gke(sandbox)
    _gke_old_cluster(client, parent, "gfail-blue", "REGULAR")
    _gke_config(project, sandbox, "gfail", location, "gfail-blue", "gfail-green")  # default ready_timeout: 1800 s
    control(sandbox, "POST", "/faults", {"kind": "gke_create_error", "cluster": "gfail-green"})
    try:
        t0 = time.monotonic()
        r = project.run("migrate", "--env", "gfail")
        elapsed = time.monotonic() - t0
    finally:
        control(sandbox, "DELETE", "/faults")
    assert r.returncode == 6, r.stdout + r.stderr
    assert elapsed < 30, "a failed create must be reported at once, not after the ready timeout"
    assert "CREATE_CLUSTER" in r.stderr and "for cluster gfail-green failed" in r.stderr
    assert "Insufficient regional quota" in r.stderr and "rollback" in r.stderr
    assert "Traceback" not in r.stderr and "timed out" not in r.stderr
    green = client.get_cluster(name=f"{parent}/clusters/gfail-green")
    assert green.status.name == "ERROR" and "Insufficient regional quota" in green.status_message

    r = project.run("rollback", "--env", "gfail")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [c.name for c in client.list_clusters(parent=parent).clusters] == ["gfail-blue"]
    assert "gfail-green" not in control(sandbox, "GET", "/status")["clusters"]  # its API emulator is gone too
