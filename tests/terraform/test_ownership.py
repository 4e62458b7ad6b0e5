"""The ownership classifier on fixtures in the shapes of public examples (tests/terraform/shapes.py): each
shape asserts the exact cluster-owned and shared sets, and the category of the addresses that matter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from terraform import shapes

from migrate.errors import ConfigError
from migrate.terraform.hclroot import cluster_module_kind, read_root_module
from migrate.terraform.ownership import Ownership, classify, provider_key
from migrate.terraform.state import State


def _classify(tmp_path: Path, shape: shapes.Shape, **kw: Any) -> Ownership:
    for name, text in shape.files.items():
        (tmp_path / name).write_text(text)
    kw.setdefault("cluster_name", shape.cluster_name)
    return classify(State.from_dict(shape.state), read_root_module(tmp_path), **kw)


def _assert_sets(own: Ownership, shape: shapes.Shape) -> None:
    assert set(own.cluster) - shape.cluster == set(), "classed cluster-owned, but shared"
    assert shape.cluster - set(own.cluster) == set(), "classed shared, but cluster-owned"
    assert set(own.shared) == shape.shared
    assert set(own.categories) == set(own.cluster) | set(own.shared) == set(own.reasons)


@pytest.mark.parametrize("exclusive", [True, False], ids=["terraform", "api"])
def test_two_clusters_in_one_root_only_the_named_one(tmp_path: Path, exclusive: bool) -> None:
    shape = shapes.two_clusters()
    own = _classify(tmp_path, shape, exclusive=exclusive)
    _assert_sets(own, shape)
    assert own.roots == ("module.eks_al2023.aws_eks_cluster.this[0]",)
    assert own.cluster_module == "module.eks_al2023"
    assert own.categories["module.eks_al2023.aws_eks_cluster.this[0]"] == "cluster"
    assert own.categories["module.eks_al2023.aws_iam_role.this[0]"] == "cluster-module"
    assert "terraform-aws-modules/eks" in own.reasons["module.eks_al2023.aws_iam_role.this[0]"]
    assert not any(a.startswith("module.eks_bottlerocket") for a in own.cluster)
    assert {a: n for a, n in own.clusters_found} == {
        "module.eks_al2023.aws_eks_cluster.this[0]": "ex-eks-mng-al2023",
        "module.eks_bottlerocket.aws_eks_cluster.this[0]": "ex-eks-mng-bottlerocket"}
    # The other cluster is named the same way: it gets its own closure, and nothing of the first.
    other = classify(State.from_dict(shape.state), read_root_module(tmp_path), cluster_name="ex-eks-mng-bottlerocket")
    assert {a for a in other.cluster} == {a for a in shape.shared if a.startswith("module.eks_bottlerocket")}


def test_two_clusters_verbatim_example_source_the_graph_finds_the_same_sets(tmp_path: Path) -> None:
    # The example itself calls the module as "../..": no source is recognised, so the state's dependencies
    # and the exclusive-dependency rule alone must find exactly the module instance's contents.
    shape = shapes.two_clusters(source="../..")
    own = _classify(tmp_path, shape)
    _assert_sets(own, shape)
    assert own.cluster_module is None
    cats = own.categories
    assert cats["module.eks_al2023.aws_iam_role.this[0]"] == "exclusive"
    assert cats['module.eks_al2023.aws_iam_role_policy_attachment.this["AmazonEKSClusterPolicy"]'] == "exclusive"
    assert cats["module.eks_al2023.aws_security_group.node[0]"] == "exclusive"
    assert cats['module.eks_al2023.module.kms.aws_kms_alias.this["cluster"]'] == "exclusive"
    assert cats['module.eks_al2023.module.eks_managed_node_group["example"].aws_launch_template.this[0]'] in (
        "dependent", "exclusive")
    assert cats['module.eks_al2023.module.eks_managed_node_group["example"].aws_eks_node_group.this[0]'] == "dependent"
    assert cats["module.vpc.aws_subnet.private[0]"] == "shared"
    assert any("not a known cluster module" in w for w in own.warnings)


def test_api_provisioner_keeps_exclusive_dependencies_shared(tmp_path: Path) -> None:
    # The API provisioner builds the new cluster with the old one's roles and security groups.
    shape = shapes.two_clusters(source="../..")
    own = _classify(tmp_path, shape, exclusive=False)
    role = "module.eks_al2023.aws_iam_role.this[0]"
    assert role in own.shared and "provisioner api reuses it" in own.reasons[role]
    assert "module.eks_al2023.aws_eks_node_group" not in own.shared
    assert own.categories['module.eks_al2023.module.eks_managed_node_group["example"].aws_eks_node_group.this[0]'] \
        == "dependent"


def test_blueprints_nested_module_and_addons_through_providers(tmp_path: Path) -> None:
    shape = shapes.blueprints()
    own = _classify(tmp_path, shape)
    _assert_sets(own, shape)
    assert own.roots == ("module.eks_blueprints.module.aws_eks.aws_eks_cluster.this[0]",)
    assert own.cluster_module == "module.eks_blueprints"
    assert "aws-ia/eks-blueprints" in own.reasons["module.eks_blueprints.module.kms[0].aws_kms_key.this"]
    metrics = "module.eks_blueprints_kubernetes_addons.module.metrics_server[0].module.helm_addon.helm_release.addon[0]"
    assert own.categories[metrics] == "provider" and "helm" in own.reasons[metrics]
    assert own.categories["data.aws_eks_cluster_auth.this"] == "reads"
    assert own.categories["aws_route53_record.grafana"] == "shared"


def test_legacy_012_state_without_dependencies(tmp_path: Path) -> None:
    shape = shapes.legacy_012()
    own = _classify(tmp_path, shape)
    _assert_sets(own, shape)
    assert own.categories["k8s_manifest.crd"] == "provider"  # provider.k8s.eks, configured from the cluster
    assert "k8s.eks" in own.reasons["k8s_manifest.crd"]
    assert own.categories["data.aws_eks_cluster.cluster"] == "reads"
    assert own.categories["aws_security_group_rule.bastion_to_api"] == "dependent"
    assert own.categories["aws_route53_record.api"] == "dependent"
    assert own.categories["aws_security_group.bastion"] == "shared"
    assert any("records no dependencies" in d for d in own.disagreements)


def test_gke_node_service_account_and_its_bindings(tmp_path: Path) -> None:
    shape = shapes.gke()
    own = _classify(tmp_path, shape)
    _assert_sets(own, shape)
    cats = own.categories
    assert cats["google_service_account.default"] == "exclusive"
    assert cats['google_project_iam_member.nodes["roles/logging.logWriter"]'] in ("exclusive", "dependent")
    assert cats["kubernetes_namespace.apps"] == "provider"
    assert cats["data.google_client_config.default"] == "reads"
    # Used only by the cluster, but shared by nature: never recreated, never destroyed with the cluster.
    for a in ("google_compute_subnetwork.subnet", "google_project_service.container"):
        assert cats[a] == "shared", a


def test_cluster_name_errors_list_the_clusters_found(tmp_path: Path) -> None:
    shape = shapes.two_clusters()
    with pytest.raises(ConfigError, match="no cluster named 'nope'") as e:
        _classify(tmp_path, shape, cluster_name="nope", name_where="environments.dev.clusters.old.name")
    assert "module.eks_al2023.aws_eks_cluster.this[0] (name 'ex-eks-mng-al2023')" in e.value.what
    assert "module.eks_bottlerocket" in e.value.what
    assert e.value.where == "environments.dev.clusters.old.name"
    twin = shapes.two_clusters()
    for r in twin.state["resources"]:
        if r["type"] == "aws_eks_cluster":
            r["instances"][0]["attributes"]["name"] = "same"
    with pytest.raises(ConfigError, match="2 clusters in the state are named 'same'"):
        classify(State.from_dict(twin.state), cluster_name="same")


def test_overrides_win_and_are_categorised(tmp_path: Path) -> None:
    shape = shapes.gke()
    own = _classify(tmp_path, shape, cluster=["google_compute_router_nat.nat"],
                    shared=["kubernetes_namespace.apps"])
    assert own.categories["google_compute_router_nat.nat"] == "override"
    assert own.categories["kubernetes_namespace.apps"] == "override"
    assert "kubernetes_namespace.apps" in own.shared
    assert any("kubernetes_namespace.apps is listed as shared" in w for w in own.warnings)
    state = State.from_dict(shape.state)
    with pytest.raises(ConfigError, match="both"):
        classify(state, cluster_name="gke-primary", cluster=["google_compute_network.vpc"],
                 shared=["google_compute_network.vpc"])
    with pytest.raises(ConfigError, match=r"aws_nope\.x") as e:
        classify(state, cluster_name="gke-primary", cluster=["aws_nope.x"], where="environments.dev.terraform")
    assert e.value.where == "environments.dev.terraform"


def test_a_subnet_tag_naming_the_cluster_goes_with_it() -> None:
    shape = shapes.gke()
    shape.state["resources"].append({
        "mode": "managed", "type": "aws_ec2_tag", "name": "cluster", "provider": shapes.AWS, "each": "map",
        "instances": [{"index_key": k, "schema_version": 0, "attributes": {
            "id": f"subnet-1,{k}", "resource_id": "subnet-1", "key": f"kubernetes.io/cluster/{k}", "value": "shared"}}
            for k in ("gke-primary", "other")]})
    own = classify(State.from_dict(shape.state), cluster_name="gke-primary")
    assert 'aws_ec2_tag.cluster["gke-primary"]' in own.cluster
    assert 'aws_ec2_tag.cluster["other"]' in own.shared


def test_module_sources() -> None:
    for src in ("terraform-aws-modules/eks/aws", "registry.terraform.io/terraform-aws-modules/eks/aws",
                "git::https://github.com/terraform-aws-modules/terraform-aws-eks.git?ref=v20.8.4",
                "github.com/aws-ia/terraform-aws-eks-blueprints?ref=v4.32.1",
                "terraform-google-modules/kubernetes-engine/google//modules/private-cluster",
                "git::https://github.com/terraform-google-modules/terraform-google-kubernetes-engine.git//modules/"
                "beta-private-cluster?ref=v30.0.0", "../../eks-cluster", "./modules/gke"):
        assert cluster_module_kind(src), src
    for src in ("terraform-aws-modules/vpc/aws", "./modules/network", "terraform-google-modules/network/google",
                "hashicorp/consul/aws"):
        assert cluster_module_kind(src) is None, src
    assert cluster_module_kind("git::https://git.corp/platform/k8s-base.git", ["git::https://git.corp/platform/k8s-*"])


def test_provider_strings() -> None:
    assert provider_key('provider["registry.terraform.io/hashicorp/helm"].blue') == "helm.blue"
    assert provider_key('provider["registry.terraform.io/hashicorp/kubernetes"]') == "kubernetes"
    assert provider_key("provider.kubernetes") == "kubernetes"
    assert provider_key("provider.kubernetes.eks") == "kubernetes.eks"
    assert provider_key('module.addons.provider["registry.terraform.io/hashicorp/helm"]') is None


def test_sandbox_stack_with_its_seeded_shape(tmp_path: Path) -> None:
    # The shipped sandbox stack: a local eks-cluster module, the cluster roles used by it alone.
    root = Path(__file__).resolve().parents[2] / "terraform-modules/stacks/sandbox"
    facts = read_root_module(root)
    assert facts.module_sources["eks"] == "../../eks-cluster"
    assert set(facts.entities["module.eks"].refs) == {"aws_iam_role.cluster", "aws_iam_role.nodes",
                                                      "aws_subnet.private"}


def test_bad_hcl_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('resource "x" {')
    with pytest.raises(ConfigError, match="cannot parse HCL") as e:
        read_root_module(tmp_path)
    assert e.value.where and e.value.where.endswith("main.tf")
    with pytest.raises(ConfigError, match="no"):
        read_root_module(tmp_path / "empty")
