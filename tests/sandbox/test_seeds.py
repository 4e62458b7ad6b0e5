"""The seeds: realistic blue clusters, a Terraform state matching moto and the root stack, Route 53 records."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import hcl2
import pytest

from migrate.kube.export import skip_reason
from sandbox.sandboxkit import aws, http

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "terraform-modules" / "stacks" / "sandbox"


def _get(url: str, path: str) -> dict[str, Any]:
    code, _, body = http(url + path)
    assert code == 200, (path, body)
    return body


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_blue_cluster_runs_every_kind_the_toolkit_replays(sandbox: dict[str, Any], env: str) -> None:
    url = sandbox["clusters"][f"{env}-blue"]["api"]
    # Counted: objects the replay would copy (what the cluster makes by itself, e.g. kube-root-ca.crt or the
    # `default` ServiceAccount, does not count; the toolkit's own skip rules decide).
    want = {
        "/api/v1/namespaces": 3, "/apis/apps/v1/deployments": 3, "/apis/apps/v1/statefulsets": 1,
        "/apis/apps/v1/daemonsets": 1, "/apis/batch/v1/cronjobs": 1, "/apis/networking.k8s.io/v1/ingresses": 1,
        "/api/v1/configmaps": 2, "/api/v1/secrets": 1, "/api/v1/serviceaccounts": 3, "/api/v1/services": 3,
        "/apis/rbac.authorization.k8s.io/v1/roles": 1, "/apis/rbac.authorization.k8s.io/v1/rolebindings": 1,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles": 1,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings": 1,
        "/apis/autoscaling/v2/horizontalpodautoscalers": 1, "/apis/policy/v1/poddisruptionbudgets": 1,
        "/apis/networking.k8s.io/v1/networkpolicies": 1, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions": 1,
        "/apis/shop.example.com/v1/featureflags": 2,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations": 1,
    }
    for path, at_least in want.items():
        doc = _get(url, path)
        kind = doc["kind"].removesuffix("List")
        items = [o for o in doc["items"] if skip_reason({"kind": kind, "apiVersion": doc["apiVersion"], **o}) is None]
        assert len(items) >= at_least, (path, [o["metadata"]["name"] for o in items])
    sts = _get(url, "/apis/apps/v1/namespaces/shop/statefulsets/redis")
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    lbs = [s for s in _get(url, "/api/v1/services")["items"] if s["spec"]["type"] == "LoadBalancer"]
    # At least the seeded ones (other tests on this shared sandbox add their own, e.g. staging's canary).
    assert {"ingress-nginx-controller", "api-public"} <= {s["metadata"]["name"] for s in lbs}
    assert all(s["status"]["loadBalancer"]["ingress"][0]["hostname"] for s in lbs)
    dep = _get(url, "/apis/apps/v1/namespaces/shop/deployments/frontend")
    assert dep["status"]["readyReplicas"] == dep["spec"]["replicas"] == 3
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]


def _u(s: str) -> str:
    return s.strip('"')  # python-hcl2 8 keeps the quotes of labels and strings


def _stack_addresses() -> set[str]:
    """Resource addresses the root stack and its modules declare (count/for_each stripped)."""
    out: set[str] = set()

    def walk(directory: Path, prefix: str) -> None:
        for tf in sorted(directory.glob("*.tf")):
            doc = hcl2.loads(tf.read_text())
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for name in named:
                        out.add(f"{prefix}{_u(rtype)}.{_u(name)}")
            for block in doc.get("data", []):
                for rtype, named in block.items():
                    for name in named:
                        out.add(f"{prefix}data.{_u(rtype)}.{_u(name)}")
            for block in doc.get("module", []):
                for mname, body in block.items():
                    walk((directory / _u(body["source"])).resolve(), f"{prefix}module.{_u(mname)}.")

    walk(STACK, "")
    return out


def test_seeded_states_match_moto_and_the_root_stack(sandbox: dict[str, Any]) -> None:
    s3, ddb, ec2, eks = (aws(sandbox, s) for s in ("s3", "dynamodb", "ec2", "eks"))
    declared = _stack_addresses()
    lineages = set()
    for env in ("dev", "staging", "prod"):
        key = f"env:/{env}/platform/terraform.tfstate"
        body = s3.get_object(Bucket="sandbox-tfstate", Key=key)["Body"].read()
        digest = ddb.get_item(TableName="sandbox-tflock", Key={"LockID": {"S": f"sandbox-tfstate/{key}-md5"}})
        assert digest["Item"]["Digest"]["S"] == hashlib.md5(body).hexdigest()
        state = json.loads(body)
        assert state["version"] == 4 and state["serial"] >= 1
        lineages.add(str(uuid.UUID(state["lineage"])))
        by_addr = {}
        for r in state["resources"]:
            addr = ".".join(x for x in (r.get("module"), "data" if r["mode"] == "data" else None, r["type"], r["name"])
                            if x)
            by_addr[addr] = r
            assert r["provider"].startswith('provider["registry.terraform.io/hashicorp/')
        assert set(by_addr) == declared - {"module.eks.data.aws_iam_policy_document.irsa_trust"}
        vpc = by_addr["aws_vpc.main"]["instances"][0]["attributes"]["id"]
        assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"] == by_addr["aws_vpc.main"]["instances"][0][
            "attributes"]["cidr_block"]
        cluster = by_addr["module.eks.aws_eks_cluster.this"]["instances"][0]
        assert cluster["attributes"]["endpoint"] == eks.describe_cluster(name=f"{env}-blue")["cluster"]["endpoint"]
        assert "aws_subnet.private" in cluster["dependencies"]
        irsa = by_addr["module.eks.aws_iam_role.irsa"]["instances"][0]
        assert "module.eks.aws_iam_openid_connect_provider.this" in irsa["dependencies"]
        ns = by_addr["kubernetes_namespace.shop"]["instances"][0]
        assert "module.eks.aws_eks_cluster.this" in ns["dependencies"]
        records = by_addr["module.dns.aws_route53_record.weighted"]
        assert records["each"] == "map" and {i["index_key"] for i in records["instances"]} == {"blue", "green"}
        keys = [(r.get("module", ""), r["mode"] != "managed", r["type"], r["name"]) for r in state["resources"]]
        assert keys == sorted(keys)
    assert len(lineages) == 3


def test_route53_sends_everything_to_blue(sandbox: dict[str, Any]) -> None:
    r53 = aws(sandbox, "route53")
    e = sandbox["environments"]["prod"]
    rrs = r53.list_resource_record_sets(HostedZoneId=e["zone_id"])["ResourceRecordSets"]
    mine = {r["SetIdentifier"]: r for r in rrs if r["Name"] == e["record"] + "."}
    assert mine["blue"]["Weight"] == 100 and mine["green"]["Weight"] == 0
    assert mine["blue"]["TTL"] == 5
    assert mine["blue"]["ResourceRecords"][0]["Value"] == e["ingress_hostname"]
