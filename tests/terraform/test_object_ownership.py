"""Ownership between the old workspace and its copy is decided by object, not by address.

After ``terraform apply`` in the copy, the new cluster sits at the old cluster's address; only the
``id`` in the state tells the two apart. These tests cover the library (``compare_objects``,
``detach(only_objects_of=)``) and the engine's steps that use it (duplicate-workspace, detach-cluster),
on the local backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.config import load_config
from migrate.errors import StateError, StepFailed
from migrate.plan.model import Plan, Step
from migrate.steps.base import Context
from migrate.steps.terraform import DetachClusterStep, DuplicateWorkspaceStep
from migrate.terraform.backends.local import LocalBackend
from migrate.terraform.state import State
from migrate.terraform.workspaces import compare_objects, detach, duplicate_workspace

AWS = 'provider["registry.terraform.io/hashicorp/aws"]'
CLOSURE = ["aws_eks_cluster.this", "aws_eks_node_group.ng"]
SHARED = ["aws_route53_zone.z", "aws_vpc.main"]


def _res(t: str, n: str, attrs: dict[str, Any], deps: list[str] | None = None, *, mode: str = "managed",
         extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    inst: dict[str, Any] = {"schema_version": 0, "attributes": attrs}
    if deps:
        inst["dependencies"] = deps
    return {"mode": mode, "type": t, "name": n, "provider": AWS, "instances": [inst, *(extra or [])]}


def _state(resources: list[dict[str, Any]], *, lineage: str = "lin-old", serial: int = 7) -> State:
    return State.from_dict({"version": 4, "terraform_version": "1.11.4", "serial": serial, "lineage": lineage,
                            "outputs": {}, "resources": resources, "check_results": None}).sorted()


def old_state() -> State:
    return _state([
        _res("aws_vpc", "main", {"id": "vpc-1"}),
        _res("aws_eks_cluster", "this", {"id": "blue"}, ["aws_vpc.main"]),
        _res("aws_eks_node_group", "ng", {"id": "blue:ng"}, ["aws_eks_cluster.this"]),
        _res("aws_route53_zone", "z", {"id": "Z1"}),
    ])


# ---- the library ------------------------------------------------------------------------------------


def test_compare_objects_by_identity_not_address() -> None:
    old = _state([
        _res("aws_vpc", "main", {"id": "vpc-1"}),
        _res("aws_eks_cluster", "this", {"id": "blue"}),
        _res("aws_thing", "noid", {"name": "a"}),
        _res("aws_thing", "noid_changed", {"name": "a"}),
        _res("aws_eks_cluster", "this", {"id": "blue"}, mode="data"),
    ])
    new = _state([
        _res("aws_vpc", "main", {"id": "vpc-1", "tags": {"x": "updated in place"}}),
        _res("aws_eks_cluster", "this", {"id": "green"}),  # same address, another object
        _res("aws_iam_role", "irsa", {"id": "role-green"}),  # not in the old state at all
        _res("aws_thing", "noid", {"name": "a"}),  # no id, same attributes: the same copy
        _res("aws_thing", "noid_changed", {"name": "b"}),  # no id, different attributes: cannot tell
        _res("aws_eks_cluster", "this", {"id": "green"}, mode="data"),  # data sources own nothing
        # a deposed object (create_before_destroy half done) is an object of its own
        _res("aws_route53_zone", "z", {"id": "Z1"}, extra=[{"schema_version": 0, "deposed": "abcd1234",
                                                            "attributes": {"id": "Z2"}}]),
    ])
    cmp = compare_objects(new, old)
    assert sorted(cmp.same) == ["aws_thing.noid", "aws_vpc.main"]
    assert sorted(cmp.own) == ["aws_eks_cluster.this", "aws_iam_role.irsa", "aws_route53_zone.z"]
    assert cmp.unsure == ("aws_thing.noid_changed",)
    # against no state at all, every managed object is this state's own
    assert sorted(compare_objects(new, None).own) == sorted(
        {"aws_vpc.main", "aws_eks_cluster.this", "aws_iam_role.irsa", "aws_thing.noid", "aws_thing.noid_changed",
         "aws_route53_zone.z"})


def test_detach_removes_copies_only_and_keeps_the_workspaces_own_object(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    old = old_state()
    # the copy holds a new cluster at the old cluster's address, and still a copy of the old node group
    copy = _state([
        _res("aws_vpc", "main", {"id": "vpc-1"}),
        _res("aws_eks_cluster", "this", {"id": "green"}, ["aws_vpc.main"]),
        _res("aws_eks_node_group", "ng", {"id": "blue:ng"}, ["aws_eks_cluster.this"]),
    ], lineage="lin-new", serial=9)
    with backend.locked("green", "seed", create=True) as lock:
        backend.write("green", copy, lock)
    r = detach(backend, "green", CLOSURE, missing_ok=True, only_objects_of=old)
    assert r.removed == ("aws_eks_node_group.ng",)
    assert r.kept == ("aws_eks_cluster.this",)
    after = backend.read("green").state
    assert after is not None and after.addresses() == ["aws_eks_cluster.this", "aws_vpc.main"]
    # again: nothing left to remove
    assert detach(backend, "green", CLOSURE, missing_ok=True, only_objects_of=old).already_done
    # the other state may be given as a reader: called only when a cluster-owned address is still there
    calls: list[int] = []

    def read_old() -> State:
        calls.append(1)
        return old

    assert detach(backend, "green", ["aws_eks_node_group.ng"], missing_ok=True,
                  only_objects_of=read_old).already_done
    assert calls == []
    r = detach(backend, "green", CLOSURE, missing_ok=True, only_objects_of=read_old)
    assert r.already_done and r.kept == ("aws_eks_cluster.this",) and calls == [1]
    assert detach(backend, "green", CLOSURE, missing_ok=True, only_objects_of=lambda: None).kept == (
        "aws_eks_cluster.this",)


def test_duplicate_exclude_missing_ok(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    with backend.locked("blue", "seed", create=True) as lock:
        backend.write("blue", old_state(), lock)
    with pytest.raises(StateError, match=r"aws_gone\.x"):
        duplicate_workspace(backend, "blue", "green", exclude=[*CLOSURE, "aws_gone.x"])
    assert not backend.exists("green") or backend.read("green").state is None
    r = duplicate_workspace(backend, "blue", "green", exclude=[*CLOSURE, "aws_gone.x"], missing_ok=True)
    copied = backend.read("green").state
    assert list(r.excluded) == CLOSURE and copied is not None and sorted(copied.addresses()) == SHARED
    assert r.count == len(SHARED)


# ---- the steps --------------------------------------------------------------------------------------

MAIN_TF = """
resource "aws_vpc" "main" {}
resource "aws_route53_zone" "z" {}
resource "aws_eks_cluster" "this" {}
resource "aws_eks_node_group" "ng" {}
"""


@pytest.fixture
def place(tmp_path: Path) -> tuple[LocalBackend, Context]:
    root = tmp_path / "stack"
    root.mkdir()
    (root / "main.tf").write_text(MAIN_TF)
    (tmp_path / "migrate.yaml").write_text("""
version: 1
environments:
  dev:
    cloud: aws
    aws: {region: us-east-1}
    provisioner: terraform
    terraform:
      root: stack
      backend: {type: local, path: stack}
      workspace: blue
      new_workspace: green
    clusters: {old: {name: blue}, new: {name: green}}
    skip: [replay-workloads, wait-workloads-ready, open-gateway, validate, shift-traffic, wait-cluster-ready,
           write-kubeconfig]
""")
    backend = LocalBackend(root)
    with backend.locked("blue", "seed", create=True) as lock:
        backend.write("blue", old_state(), lock)
    loaded = load_config(tmp_path / "migrate.yaml")
    records: list[dict[str, Any]] = []
    ctx = Context(loaded=loaded, env_name="dev", env=loaded.env("dev"), workdir=tmp_path / ".migrate/dev",
                  run_id="run-1", records=lambda: records)
    return backend, ctx


def _step(kind: str, params: dict[str, Any]) -> Step:
    return Step(id=f"01-{kind}", kind=kind, title=kind, params=params, effect="-", undo="-")


def _planned(ctx: Context) -> Step:
    facts = DuplicateWorkspaceStep().facts(ctx)
    return _step("duplicate-workspace", {"workspace": "blue", "new_workspace": "green", **facts["params"]})


def test_duplicate_step_writes_the_copy_without_the_cluster(place: tuple[LocalBackend, Context]) -> None:
    backend, ctx = place
    step = _planned(ctx)
    assert step.params["exclude"] == CLOSURE
    out = DuplicateWorkspaceStep().apply(step, ctx)
    assert out["excluded"] == CLOSURE
    blob = backend.read("green")
    copy, copy_md5 = blob.state, blob.md5
    assert copy is not None and sorted(copy.addresses()) == SHARED
    # one write: the copy's first serial is the source's, with no second bump from a detach
    assert copy.serial == 7 and not list(backend.root.glob("terraform.tfstate.d/green.terraform.tfstate.*.backup"))
    assert DuplicateWorkspaceStep().is_done(step, ctx) == {
        "new_lineage": copy.lineage, "source_lineage": "lin-old", "serial": 7, "excluded": CLOSURE}
    # detach-cluster is now a check: nothing to remove, nothing written
    detach_step = _step("detach-cluster", {"addresses": CLOSURE})
    assert DetachClusterStep().left(detach_step, ctx) == []
    assert DetachClusterStep().apply(detach_step, ctx) == {"removed": 0, "serial": 7, "already_done": True}
    assert backend.read("green").md5 == copy_md5
    # With duplicate-workspace's outputs at hand, an unchanged copy is verified by its digest alone...
    ctx.plan = Plan.model_construct(steps=[step, detach_step])  # only its steps matter here
    ctx.outputs[step.id] = out
    assert out["md5"] == copy_md5
    assert DetachClusterStep().apply(detach_step, ctx) == {"removed": 0, "serial": 7, "already_done": True,
                                                           "verified_by_digest": True}
    # ... and a copy changed since (say, by hand) is checked in full again.
    with backend.locked("green", "someone") as lock:
        backend.write("green", backend.read("green", lock).state.bumped(), lock)  # type: ignore[union-attr]
    assert "verified_by_digest" not in DetachClusterStep().apply(detach_step, ctx)


def test_detach_step_cleans_up_a_full_copy_from_an_older_plan(place: tuple[LocalBackend, Context]) -> None:
    backend, ctx = place
    # a plan made before the copy left the cluster out: no `exclude`, so the copy is full
    old_plan = _step("duplicate-workspace", {"workspace": "blue", "new_workspace": "green"})
    DuplicateWorkspaceStep().apply(old_plan, ctx)
    copy = backend.read("green").state
    assert copy is not None and len(copy.addresses()) == 4
    detach_step = _step("detach-cluster", {"addresses": CLOSURE})
    assert DetachClusterStep().left(detach_step, ctx) == CLOSURE
    assert DetachClusterStep().apply(detach_step, ctx)["removed"] == 2
    after = backend.read("green").state
    assert after is not None and sorted(after.addresses()) == SHARED
    assert DetachClusterStep().left(detach_step, ctx) == []
    assert DetachClusterStep().apply(detach_step, ctx)["already_done"]


def test_fingerprint_facts_carry_the_target_lineage_and_serial(place: tuple[LocalBackend, Context]) -> None:
    backend, ctx = place
    before = DuplicateWorkspaceStep().facts(ctx)
    assert before["target_exists"] is False and "target" not in before
    DuplicateWorkspaceStep().apply(_planned(ctx), ctx)
    copy = backend.read("green").state
    assert copy is not None
    facts = DuplicateWorkspaceStep().facts(ctx)
    assert facts["target"] == {"workspace": "green", "lineage": copy.lineage, "serial": 7}
    with backend.locked("green", "someone else") as lock:
        backend.write("green", copy.bumped(), lock)
    assert DuplicateWorkspaceStep().facts(ctx)["target"]["serial"] == 8  # a plan made before is now stale


def test_resume_recognises_the_copy_by_its_journaled_lineage(place: tuple[LocalBackend, Context]) -> None:
    backend, ctx = place
    step = _planned(ctx)
    out = DuplicateWorkspaceStep().apply(step, ctx)
    # terraform wrote the copy since: it drops the migrate_origin marker
    copy = backend.read("green").state
    assert copy is not None
    with backend.locked("green", "terraform apply") as lock:
        backend.write("green", copy.without_origin().bumped(), lock)
    assert DuplicateWorkspaceStep().is_done(step, ctx) is None  # nothing journaled: not recognisable
    with pytest.raises(StateError, match="not a copy"):
        DuplicateWorkspaceStep().apply(step, ctx)
    # with this run's journal record of the step, both recognise the copy and write nothing
    records = ctx.records()
    records.append({"type": "step.done", "run": ctx.run_id, "step": step.id, "outputs": out})
    done = DuplicateWorkspaceStep().is_done(step, ctx)
    assert done is not None and done["new_lineage"] == out["new_lineage"]
    again = DuplicateWorkspaceStep().apply(step, ctx)
    assert again["found_done"] and again["new_lineage"] == out["new_lineage"]
    after = backend.read("green").state
    assert after is not None and after.serial == 8


def test_duplicate_rollback_refuses_while_the_copy_manages_objects_of_its_own(
        place: tuple[LocalBackend, Context]) -> None:
    backend, ctx = place
    step = _planned(ctx)
    out = DuplicateWorkspaceStep().apply(step, ctx)
    copy = backend.read("green").state
    assert copy is not None
    # the apply created the new cluster at the old cluster's address
    created = _state([*copy.resources, _res("aws_eks_cluster", "this", {"id": "green"}, ["aws_vpc.main"])],
                     lineage=copy.lineage, serial=copy.serial + 1)
    with backend.locked("green", "terraform apply") as lock:
        backend.write("green", created, lock)
    with pytest.raises(StepFailed, match=r"aws_eks_cluster\.this"):
        DuplicateWorkspaceStep().rollback(step, ctx, out)
    assert backend.exists("green")
    # once that object is gone (destroyed), the copy holds only copies of shared objects and may go
    with backend.locked("green", "terraform destroy") as lock:
        backend.write("green", created.rm(["aws_eks_cluster.this"])[0].bumped(), lock)
    DuplicateWorkspaceStep().rollback(step, ctx, out)
    assert not backend.exists("green")
