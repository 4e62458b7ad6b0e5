from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.errors import ConfigError
from migrate.terraform.ownership import classify, read_root_module
from migrate.terraform.state import State

ROOT_TF = """
provider "aws" { region = "eu-west-1" }
provider "kubernetes" {
  host                   = aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(aws_eks_cluster.this.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.this.token
}
provider "kubectl" {
  alias = "eks"
  host  = module.eks.cluster_endpoint
}
provider "helm" {
  alias = "other"
  kubernetes { host = var.other_cluster_endpoint }
}
resource "aws_vpc" "main" { cidr_block = "10.0.0.0/16" }
resource "aws_eks_cluster" "this" {
  name     = "prod-${terraform.workspace}"
  role_arn = aws_iam_role.cluster.arn
}
resource "aws_iam_role" "cluster" { name = "eks-${terraform.workspace}" }
resource "aws_iam_role" "admins" { name = "admins" }  # shared IAM
module "eks" { source = "terraform-aws-modules/eks/aws" }
data "aws_eks_cluster_auth" "this" { name = aws_eks_cluster.this.name }
"""

AWS = 'provider["registry.terraform.io/hashicorp/aws"]'


def r(rtype: str, name: str, deps: list[str] | None = None, *, provider: str = AWS, module: str = "",
      mode: str = "managed") -> dict[str, Any]:
    out: dict[str, Any] = {"module": module} if module else {}
    inst: dict[str, Any] = {"schema_version": 0, "attributes": {"id": name}}
    if deps:
        inst["dependencies"] = deps
    out.update({"mode": mode, "type": rtype, "name": name, "provider": provider, "instances": [inst]})
    return out


@pytest.fixture
def state() -> State:
    return State.from_dict({
        "version": 4, "serial": 1, "lineage": "l", "terraform_version": "1.11.4", "outputs": {},
        "resources": [
            r("aws_vpc", "main"),
            r("aws_route53_zone", "z"),
            r("aws_iam_role", "admins"),
            r("aws_iam_role", "cluster"),
            r("aws_eks_cluster", "this", ["aws_iam_role.cluster", "aws_vpc.main"]),
            r("aws_eks_node_group", "ng", ["aws_eks_cluster.this"]),
            r("aws_eks_addon", "coredns", ["aws_eks_cluster.this"]),
            r("aws_iam_openid_connect_provider", "oidc", ["aws_eks_cluster.this"]),
            r("aws_iam_role", "irsa_lb", ["aws_iam_openid_connect_provider.oidc"]),
            r("aws_eks_cluster_auth", "this", ["aws_eks_cluster.this"], mode="data"),
            # provider-configured, no recorded dependency on the cluster:
            r("kubernetes_namespace", "apps", provider='provider["registry.terraform.io/hashicorp/kubernetes"]'),
            r("kubectl_manifest", "crd", provider='provider["registry.terraform.io/gavinbunney/kubectl"].eks'),
            r("aws_route53_record", "ingress", ["kubernetes_namespace.apps"]),
        ],
        "check_results": None,
    }).sorted()


def test_read_root_module(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(ROOT_TF)
    facts = read_root_module(tmp_path)
    assert facts.cluster_resources == ("aws_eks_cluster.this",)
    assert facts.cluster_modules == ("eks",)
    assert facts.cluster_providers == ("kubectl.eks", "kubernetes")  # helm.other is another cluster
    assert facts.workspace_named == ("aws_eks_cluster.this", "aws_iam_role.cluster")


def test_classify_eks(tmp_path: Path, state: State) -> None:
    (tmp_path / "main.tf").write_text(ROOT_TF)
    own = classify(state, read_root_module(tmp_path))
    assert set(own.cluster) == {
        "aws_eks_cluster.this", "aws_eks_node_group.ng", "aws_eks_addon.coredns",
        "aws_iam_openid_connect_provider.oidc", "aws_iam_role.irsa_lb", "data.aws_eks_cluster_auth.this",
        "kubernetes_namespace.apps", "kubectl_manifest.crd", "aws_route53_record.ingress",
    }
    assert set(own.shared) == {"aws_vpc.main", "aws_route53_zone.z", "aws_iam_role.admins", "aws_iam_role.cluster"}
    assert own.roots == ("aws_eks_cluster.this",)
    assert "configured from the cluster" in own.reasons["kubectl_manifest.crd"]
    assert any("aws_iam_role.cluster" in w and "terraform.workspace" in w for w in own.warnings)
    assert set(own.to_dict()) == {"cluster", "shared", "roots", "reasons", "warnings"}


def test_overrides_win(state: State) -> None:
    own = classify(state, cluster=["aws_iam_role.cluster"], shared=["aws_route53_record.ingress"])
    assert "aws_iam_role.cluster" in own.cluster
    assert "aws_route53_record.ingress" in own.shared
    assert own.reasons["aws_route53_record.ingress"] == "listed as shared in config"
    assert any("aws_route53_record.ingress" in w for w in own.warnings)
    with pytest.raises(ConfigError, match="both"):
        classify(state, cluster=["aws_vpc.main"], shared=["aws_vpc.main"])
    with pytest.raises(ConfigError, match=r"aws_nope\.x") as e:
        classify(state, cluster=["aws_nope.x"], where="environments.dev.terraform.cluster_addresses")
    assert e.value.where == "environments.dev.terraform.cluster_addresses"


def test_gke_and_nothing_found() -> None:
    gke = State.from_dict({"version": 4, "serial": 1, "lineage": "l", "resources": [
        r("google_container_cluster", "primary", module="module.gke"),
        r("google_container_node_pool", "pool", ["module.gke.google_container_cluster.primary"], module="module.gke"),
        r("google_compute_network", "vpc"),
    ]})
    own = classify(gke)
    assert set(own.cluster) == {"module.gke.google_container_cluster.primary",
                                "module.gke.google_container_node_pool.pool"}
    assert own.shared == ("google_compute_network.vpc",)
    none = classify(State.from_dict({"version": 4, "serial": 1, "lineage": "l", "resources": [r("aws_vpc", "v")]}))
    assert none.cluster == () and any("no cluster resource" in w for w in none.warnings)


def test_bad_hcl_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('resource "x" {')
    with pytest.raises(ConfigError, match="cannot parse HCL") as e:
        read_root_module(tmp_path)
    assert e.value.where and e.value.where.endswith("main.tf")
    with pytest.raises(ConfigError, match="no"):
        read_root_module(tmp_path / "empty")
