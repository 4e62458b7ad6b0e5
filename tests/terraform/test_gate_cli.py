"""Plan gates (synthetic and real plans) and the terraform CLI runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.errors import GateFailed, TerraformError
from migrate.terraform.backends.local import LocalBackend
from migrate.terraform.cli import TerraformCLI, TerraformCommandFailed, TerraformVersion
from migrate.terraform.gate import PlanGateFailed, only_deletes_of, protect, real_changes, summarize
from migrate.terraform.workspaces import duplicate_workspace, handover


def rc(address: str, *actions: str, before: Any = None, after: Any = None, **extra: Any) -> dict[str, Any]:
    return {"address": address, "change": {"actions": list(actions), "before": before, "after": after, **extra}}


PLAN = {
    "format_version": "1.2",
    "resource_changes": [
        rc("aws_vpc.main", "no-op"),
        rc("aws_subnet.a", "update", before={"tags_all": {"a": "1"}, "id": "s"},
           after={"tags_all": {"a": "1", "b": "2"}, "id": "s"}),
        rc("aws_subnet.b", "update", before={"cidr": "1"}, after={"cidr": "2"}),
        rc('module.eks["x"].aws_eks_cluster.this', "create"),
        rc("aws_route53_zone.z", "delete", "create"),
        rc("aws_iam_role.r", "create", "delete"),
        rc("data.aws_caller_identity.me", "read"),
        rc("aws_old.thing", "delete"),
    ],
}


def test_summarize_kinds_and_noise() -> None:
    changes = {c.address: c for c in summarize(PLAN)}
    assert changes["aws_route53_zone.z"].kind == "replace" and changes["aws_iam_role.r"].kind == "replace"
    assert changes["aws_subnet.a"].noise and not changes["aws_subnet.b"].noise
    assert [c.address for c in real_changes(changes.values())] == [
        "aws_subnet.b", 'module.eks["x"].aws_eks_cluster.this', "aws_route53_zone.z", "aws_iam_role.r",
        "aws_old.thing"]


def test_protect() -> None:
    protect(PLAN, ["aws_vpc.main", "aws_subnet.a", "module.eks"])  # creates and tags_all noise are fine
    with pytest.raises(PlanGateFailed) as e:
        protect(PLAN, ["aws_route53_zone.z", "aws_old.thing"], where="plans/dev-green.tfplan")
    assert e.value.violations == ["aws_route53_zone.z", "aws_old.thing"]
    assert "aws_route53_zone.z (replace)" in e.value.what and e.value.where == "plans/dev-green.tfplan"
    assert isinstance(e.value, GateFailed)


def test_protect_refuses_updates_of_owned_objects_unless_allowed() -> None:
    # The VPC module's `private_subnet_tags = {"kubernetes.io/cluster/${local.name}" = "shared"}`, planned in
    # the copy with the new cluster's name: an in-place update of subnets the old workspace still owns.
    tags = {"Name": "private-0", "kubernetes.io/cluster/ex-blue": "shared"}
    new_tags = {"Name": "private-0", "kubernetes.io/cluster/ex-green": "shared"}
    plan = {"format_version": "1.2", "resource_changes": [
        rc("module.vpc.aws_subnet.private[0]", "update", before={"id": "subnet-1", "tags": tags, "tags_all": tags},
           after={"id": "subnet-1", "tags": new_tags, "tags_all": new_tags}, after_unknown={}),
        rc("aws_subnet.a", "update", before={"tags_all": {"a": "1"}}, after={"tags_all": {"a": "2"}}),
        rc("module.eks.aws_eks_cluster.this[0]", "create"),
    ]}
    with pytest.raises(PlanGateFailed) as e:
        protect(plan, ["module.vpc", "aws_subnet.a"], where="terraform plan of workspace dev-green")
    assert e.value.violations == ["module.vpc.aws_subnet.private[0]"]  # the tags_all-only update is noise
    assert 'tags["kubernetes.io/cluster/ex-blue"]' in e.value.what
    assert 'tags["kubernetes.io/cluster/ex-green"]' in e.value.what
    assert "allow_update" in e.value.hint and "ignore_changes" in e.value.hint
    assert e.value.exit_code == 7
    for allowed in (["module.vpc.aws_subnet.private"], ["module.vpc.aws_subnet.*"], ["module.vpc"]):
        report = protect(plan, ["module.vpc", "aws_subnet.a"], allow_update=allowed)
        assert [c.address for c in report.allowed_updates] == ["module.vpc.aws_subnet.private[0]"]
        assert 'tags_all["kubernetes.io/cluster/ex-green"]' in report.allowed_updates[0].paths
    # An update of what the old workspace does not own (the new cluster's objects) is nobody's business.
    protect(plan, ["aws_subnet.a"])


def test_only_deletes_of() -> None:
    only_deletes_of(PLAN, ["aws_route53_zone.z", "aws_iam_role.r", "aws_old.thing"])
    with pytest.raises(PlanGateFailed, match=r"aws_old\.thing"):
        only_deletes_of(PLAN, ["aws_route53_zone.z", "aws_iam_role.r"])


@pytest.mark.parametrize("bad", [{}, {"resource_changes": []}, {"format_version": "1.2", "errored": True}])
def test_not_a_plan(bad: dict[str, Any]) -> None:
    with pytest.raises(GateFailed):
        protect(bad, [])


def test_gates_on_real_terraform_plans(tf_local: TerraformCLI, kit: Any, tmp_path: Path) -> None:
    cli = tf_local
    backend = LocalBackend(cli.workdir)
    state = backend.read("default").state
    assert state is not None
    closure = state.dependents(["terraform_data.cluster"])
    shared = [a for a in state.addresses() if a not in closure]
    duplicate_workspace(backend, "default", "green", exclude=closure)

    green = cli.in_workspace("green")
    assert green.plan(tmp_path / "copy.tfplan") is True  # the cluster is to be created
    report = protect(green.show_json(tmp_path / "copy.tfplan"), shared)
    assert report.counts() == {"create": len(closure), "no-op": len(shared)}

    # the pitfall: an argument built from terraform.workspace makes the copy replace a shared object
    main = cli.workdir / "main.tf"
    original = main.read_text()
    main.write_text(original.replace('input = "zone-1"', 'input = "zone-1"\n  triggers_replace = terraform.workspace'))
    green.plan(tmp_path / "copy2.tfplan")
    with pytest.raises(PlanGateFailed) as e:
        protect(green.show_json(tmp_path / "copy2.tfplan"), shared)
    assert e.value.violations == ["terraform_data.zone"]
    main.write_text(original)

    # decommission: the old workspace's destroy may only delete old-cluster addresses
    cli.plan(tmp_path / "destroy.tfplan", destroy=True)
    with pytest.raises(PlanGateFailed) as e:
        only_deletes_of(cli.show_json(tmp_path / "destroy.tfplan"), closure)
    assert sorted(e.value.violations) == sorted(kit.SHARED)
    handover(backend, "default", "green", shared)
    cli.plan(tmp_path / "destroy2.tfplan", destroy=True)
    only_deletes_of(cli.show_json(tmp_path / "destroy2.tfplan"), closure)
    cli.apply(tmp_path / "destroy2.tfplan")
    assert cli.state_list() == []
    assert sorted(green.state_list()) == sorted(kit.SHARED)


def test_cli_runner(tf_local: TerraformCLI, tf_version: TerraformVersion, tmp_path: Path) -> None:
    cli = tf_local
    assert tf_version.at_least(1, 0) and str(tf_version).count(".") == 2
    assert cli.workspace_show() == "default"
    cli.workspace_new("blue")
    assert cli.workspace_list() == ["default", "blue"]
    cli.workspace_select("default")
    pulled = cli.state_pull()
    assert b'"lineage"' in pulled
    with pytest.raises(TerraformCommandFailed) as e:
        cli.state_rm(["terraform_data.nope"])
    err = e.value
    assert err.returncode == 1 and err.command[:3] == ["terraform", "state", "rm"]
    assert "No matching objects" in err.stderr_tail and "exit code 1" in err.what and "state rm" in err.what
    assert not err.retryable
    with pytest.raises(TerraformError, match="not found"):
        TerraformCLI(tmp_path, binary="no-such-terraform-binary").version()
    cli.destroy()
    assert cli.state_list() == []
