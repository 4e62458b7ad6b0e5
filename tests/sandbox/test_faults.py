"""Fault injection through the control API, the invoke task and the module CLI; the gateway proxy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from migrate.sandbox import lifecycle
from migrate.sandbox.seed import kube
from sandbox.sandboxkit import aws, http, wait_for


def test_http_fault_answers_5xx_on_a_path_through_the_router(sandbox: dict[str, Any], clean_faults: None) -> None:
    e = sandbox["environments"]["staging"]
    lifecycle.control(sandbox, "POST", "/faults", {"kind": "http", "cluster": "staging-blue", "path": "/api",
                                                   "status": 502})
    status, headers, body = http(sandbox["router_url"] + "/api/orders", e["record"])
    assert status == 502 and headers["X-Sandbox-Cluster"] == "staging-blue" and body["error"] == "injected fault"
    assert http(sandbox["router_url"] + "/", e["record"])[0] == 200  # other paths still answer
    lifecycle.control(sandbox, "DELETE", "/faults")
    assert http(sandbox["router_url"] + "/api/orders", e["record"])[0] == 200


def test_never_ready_workload_answers_503_until_cleared(sandbox: dict[str, Any], clean_faults: None) -> None:
    """A fault named before the workload exists; the data plane follows readiness in the emulator."""
    lifecycle.control(sandbox, "POST", "/faults", {"kind": "never_ready", "cluster": "staging-blue",
                                                   "namespace": "shop", "name": "canary"})
    st = lifecycle.control(sandbox, "GET", "/status")
    plane = st["clusters"]["staging-blue"]["dataplane"]
    from migrate.sandbox.seed.workloads import _deployment, _service
    dep = _deployment("canary", "shop", "registry.example/canary:1", 8080, 1)
    svc = _service("canary", "shop", 80, 8080, "LoadBalancer")
    server = _Remote(st["clusters"]["staging-blue"]["api"])
    server.create([dep, svc])
    lb = wait_for(lambda: server.lb_hostname("shop", "canary"), what="LB hostname")
    code, _, body = http(plane + "/", lb)
    assert code == 503 and body["deployment"] == "canary" and "not ready" in body["error"]
    # Cleared: the workload becomes ready by itself and the data plane answers.
    lifecycle.control(sandbox, "DELETE", "/faults")
    wait_for(lambda: http(plane + "/", lb)[0] == 200, what="canary to answer 200 after the fault is cleared")


class _Remote:
    """A few raw calls to an emulator's HTTP API (what kubectl does), enough for these tests."""

    def __init__(self, url: str) -> None:
        self.url = url

    def create(self, objs: list[dict[str, Any]]) -> None:
        import json
        import urllib.request

        for o in objs:
            plural = {"Deployment": "apis/apps/v1", "Service": "api/v1"}[o["kind"]]
            path = f"{self.url}/{plural}/namespaces/{o['metadata']['namespace']}/{o['kind'].lower()}s"
            req = urllib.request.Request(path, data=json.dumps(o).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=5).close()

    def lb_hostname(self, ns: str, name: str) -> str | None:
        _, _, svc = http(f"{self.url}/api/v1/namespaces/{ns}/services/{name}")
        ing = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return ing[0]["hostname"] if ing else None


def test_state_write_fault_fails_s3_puts_on_matching_keys(sandbox: dict[str, Any], clean_faults: None) -> None:
    s3 = aws(sandbox, "s3")
    s3_once = boto3.client("s3", endpoint_url=sandbox["aws"]["endpoint_url"], region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing",
                           config=Config(retries={"mode": "standard", "max_attempts": 1}))
    lifecycle.control(sandbox, "POST", "/faults", {"kind": "state_write", "bucket": "sandbox-tfstate",
                                                   "key_contains": "staging-green"})
    key = "env:/staging-green/platform/terraform.tfstate"
    with pytest.raises(ClientError) as err:
        s3_once.put_object(Bucket="sandbox-tfstate", Key=key, Body=b"{}")
    assert err.value.response["Error"]["Code"] == "InternalError"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    s3.put_object(Bucket="sandbox-tfstate", Key="unrelated", Body=b"{}")  # other keys unaffected
    with pytest.raises(ClientError):  # until cleared
        s3_once.put_object(Bucket="sandbox-tfstate", Key=key, Body=b"{}")
    lifecycle.control(sandbox, "DELETE", "/faults")
    s3_once.put_object(Bucket="sandbox-tfstate", Key=key, Body=b"{}")
    s3.delete_object(Bucket="sandbox-tfstate", Key=key)
    s3.delete_object(Bucket="sandbox-tfstate", Key="unrelated")


def test_fault_commands_invoke_and_module_cli(sandbox: dict[str, Any], sandbox_dir: Path, clean_faults: None) -> None:
    from invoke import Collection, Program

    from migrate.sandbox.tasks import namespace

    root = Collection()
    root.add_collection(namespace)
    Program(namespace=root).run(["migrate", "sandbox.fault", "--kind", "eks-delay", "--seconds", "2",
                                 "--state-dir", str(sandbox_dir)], exit=False)
    assert lifecycle.control(sandbox, "GET", "/faults")["eks_delay"] == 2.0
    for args in (["--kind", "gke-create-error", "--cluster", "stage-gke-green"],
                 ["--kind", "never-ready", "--cluster", "dev-green", "--namespace", "shop", "--name", "cart"],
                 ["--kind", "state-write", "--key-contains", "dev-green", "--count", "1"]):
        Program(namespace=root).run(["migrate", "sandbox.fault", *args, "--state-dir", str(sandbox_dir)], exit=False)
    faults = lifecycle.control(sandbox, "GET", "/faults")
    assert [g["cluster"] for g in faults["gke_create_error"]] == ["stage-gke-green"]
    assert [(w["cluster"], w["name"]) for w in faults["never_ready"]] == [("dev-green", "cart")]
    assert [(w["key_contains"], w["count"]) for w in faults["state_write"]] == [("dev-green", 1)]
    out = subprocess.run([sys.executable, "-m", "migrate.sandbox", "--state-dir", str(sandbox_dir), "fault", "http",
                          "--cluster", "prod-green", "--status", "500"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert lifecycle.control(sandbox, "GET", "/faults")["http"] == [{"cluster": "prod-green", "path": "/",
                                                                     "status": 500}]
    bad = subprocess.run([sys.executable, "-m", "migrate.sandbox", "--state-dir", str(sandbox_dir), "fault", "http",
                          "--cluster", "x", "--status", "200"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "5xx" in bad.stderr


def test_gateway_proxy_plays_the_http_api_and_follows_integration_switches(sandbox: dict[str, Any]) -> None:
    apigw = aws(sandbox, "apigatewayv2")
    prod = sandbox["environments"]["prod"]
    api = apigw.get_api(ApiId=prod["prod_api"]["id"])
    assert api["ApiEndpoint"].startswith("http://127.0.0.1:")  # callers use it as on AWS
    code, _, body = http(api["ApiEndpoint"] + "/api/cart?x=1")
    assert code == 200 and body["cluster"] == "prod-blue" and body["deployment"] == "api"
    assert http(api["ApiEndpoint"] + "/")[2]["deployment"] == "frontend"

    # A temporary gateway in front of another cluster, switched by update_integration (the gateway router).
    tmp = apigw.create_api(Name="tmp", ProtocolType="HTTP")
    integ = apigw.create_integration(ApiId=tmp["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                     IntegrationUri=f"http://{prod['ingress_hostname']}/{{proxy}}",
                                     PayloadFormatVersion="1.0")
    apigw.create_route(ApiId=tmp["ApiId"], RouteKey="ANY /{proxy+}", Target=f"integrations/{integ['IntegrationId']}")
    assert http(tmp["ApiEndpoint"] + "/x")[0] == 404  # no stage deployed yet
    apigw.create_stage(ApiId=tmp["ApiId"], StageName="$default", AutoDeploy=True)
    assert http(tmp["ApiEndpoint"] + "/x")[2]["cluster"] == "prod-blue"
    staging_lb = sandbox["environments"]["staging"]["ingress_hostname"]
    apigw.update_integration(ApiId=tmp["ApiId"], IntegrationId=integ["IntegrationId"],
                             IntegrationUri=f"http://{staging_lb}/{{proxy}}")
    assert http(tmp["ApiEndpoint"] + "/x")[2]["cluster"] == "staging-blue"
    apigw.delete_api(ApiId=tmp["ApiId"])
    with pytest.raises(OSError):
        http(tmp["ApiEndpoint"] + "/x", timeout=2)


def test_kube_seed_helper_rejects_unknown_kinds(sandbox: dict[str, Any]) -> None:
    from migrate.sandbox.kubeapi import KubeAPIServer

    with KubeAPIServer() as server, pytest.raises(ValueError):
        kube.collection_path(server, {"apiVersion": "nope/v1", "kind": "Nope", "metadata": {"name": "x"}})
