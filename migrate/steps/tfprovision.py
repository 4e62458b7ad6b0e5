"""The `terraform` provisioner: apply the duplicated workspace behind the plan gate; undo by a gated destroy
of what the new workspace alone manages (by object identity: the new cluster has the old one's address);
at decommission, a gated destroy of the old cluster in the old workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.config import Terraform
from migrate.errors import StepFailed
from migrate.plan.model import Step
from migrate.steps.base import Context
from migrate.steps.terraform import backend_for, cluster_addresses
from migrate.terraform import ObjectComparison, State, compare_objects
from migrate.terraform.address import parse_address
from migrate.terraform.cli import TerraformCLI
from migrate.terraform.gate import only_deletes_of, protect


def _tf(ctx: Context) -> Terraform:
    if ctx.env.terraform is None:
        raise StepFailed("the terraform provisioner needs a terraform section", where=f"environments.{ctx.env_name}")
    return ctx.env.terraform


def backend_config(ctx: Context) -> dict[str, str]:
    """-backend-config settings equivalent to the configured backend (partial backend blocks in the root)."""
    b = _tf(ctx).backend
    if b.type == "local":
        base = ctx.loaded.resolve(b.path or _tf(ctx).root)
        return {"path": str(base / "terraform.tfstate"), "workspace_dir": str(base / "terraform.tfstate.d")}
    if b.type == "s3":
        out = {"bucket": str(b.bucket), "key": str(b.key), "workspace_key_prefix": b.workspace_key_prefix,
               "region": b.region or (ctx.env.aws.region if ctx.env.aws else "us-east-1")}
        if b.dynamodb_table:
            out["dynamodb_table"] = b.dynamodb_table
        if b.use_lockfile:
            out["use_lockfile"] = "true"
        return out
    return {"bucket": str(b.bucket), "prefix": b.prefix or ""}


def _cli(ctx: Context, workspace: str | None = None) -> TerraformCLI:
    tf = _tf(ctx)
    # A data dir per environment keeps .terraform/ out of the shared root module.
    root = ctx.loaded.resolve(tf.root)
    cli = TerraformCLI(root, env={"TF_DATA_DIR": str(ctx.workdir / "tfdata")}, workspace=workspace or tf.new_workspace)
    if tf.backend.type == "local" and ctx.loaded.resolve(tf.backend.path or tf.root).resolve() == root.resolve():
        # A local backend in the root's own directory: with a fresh data dir terraform sees the same files
        # as an "implicit" local backend and asks to copy them onto themselves. Say yes (a byte-identical
        # self-copy) instead of letting it fail on the prompt.
        cli.init(extra=["-force-copy"])
    else:
        cli.init(backend_config=backend_config(ctx))
    return cli


def _vars(ctx: Context, *, old: bool = False) -> dict[str, str]:
    tf = _tf(ctx)
    merged = {**tf.variables, **tf.old_variables} if old else tf.variables
    return {k: v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in merged.items()}


def _old_addresses(ctx: Context) -> list[str]:
    state = backend_for(ctx).read(_tf(ctx).workspace, keep_raw=False).state
    return state.addresses() if state else []


def provision(step: Step, ctx: Context) -> dict[str, Any]:
    cli = _cli(ctx)
    planfile = Path(ctx.workdir) / "provision.tfplan"
    changed = cli.plan(planfile, variables=_vars(ctx))
    report = protect(cli.show_json(planfile), _old_addresses(ctx), allow_update=_tf(ctx).gate.allow_update,
                     where=f"terraform plan of workspace {_tf(ctx).new_workspace}")
    ctx.log(f"plan gate passed: {report.counts()}")
    updates = [{"address": c.address, "paths": list(c.paths)} for c in report.allowed_updates]
    for u in updates:
        ctx.log(f"  allowed update of {u['address']} (terraform.gate.allow_update): {', '.join(u['paths'])}")
    if changed:
        cli.apply(planfile)
    planfile.unlink(missing_ok=True)
    return {"workspace": _tf(ctx).new_workspace, "changes": report.counts(),
            **({"allowed_updates": updates} if updates else {})}


def _states(ctx: Context) -> tuple[State | None, State | None]:
    """(old workspace's state, new workspace's state); None where the workspace does not exist."""
    tf = _tf(ctx)
    backend = backend_for(ctx)

    def read(ws: str) -> State | None:
        return backend.read(ws, keep_raw=False).state if backend.exists(ws) else None

    return read(tf.workspace), read(tf.new_workspace)


def new_cluster_objects(ctx: Context) -> ObjectComparison | None:
    """The new workspace's managed objects, by identity against the old workspace: ``own`` is what the
    apply created (the new cluster, at the old cluster's addresses), ``same`` the copies of shared ones."""
    old, new = _states(ctx)
    return None if new is None else compare_objects(new, old)


def is_provisioned(ctx: Context) -> dict[str, Any] | None:
    wanted = [a for a in cluster_addresses(ctx) if parse_address(a).mode == "managed"]
    objects = new_cluster_objects(ctx) if wanted else None
    if objects is None:
        return None
    # The cluster's addresses hold objects of the new workspace's own (not copies of the old cluster).
    return {"workspace": _tf(ctx).new_workspace} if set(wanted) <= set(objects.own) else None


def _targeted_destroy(ctx: Context, workspace: str, targets: list[str], variables: dict[str, str]) -> None:
    """plan -destroy of ``targets`` only, the gate (deletes of those and nothing else), then apply that plan."""
    cli = _cli(ctx, workspace)
    planfile = Path(ctx.workdir) / f"destroy-{workspace}.tfplan"
    cli.run("plan", "-input=false", "-no-color", f"-out={planfile}", "-destroy", "-lock-timeout=0s",
            *[f"-target={a}" for a in targets], *[f"-var={k}={v}" for k, v in variables.items()])
    report = only_deletes_of(cli.show_json(planfile), targets, where=f"destroy plan of workspace {workspace}")
    ctx.log(f"destroy gate passed for {workspace}: {report.counts()}")
    cli.apply(planfile)
    planfile.unlink(missing_ok=True)


def destroy_new(ctx: Context) -> None:
    """Destroy what the new workspace alone manages (the new cluster), through a gated, targeted destroy.

    Decided by object, not by address: the new cluster has the old cluster's address. The gate allows
    deletes of those addresses only, so a copied shared object (the same object as the old workspace's)
    cannot go. Refuses to report success while any such object is left in the state.
    """
    tf = _tf(ctx)
    objects = new_cluster_objects(ctx)
    if objects is None:
        return
    if objects.unsure:
        ctx.log(f"{tf.new_workspace}: cannot tell whether {', '.join(objects.unsure[:5])} is the same object as "
                f"in {tf.workspace} (no id, attributes differ); not destroyed")
    if objects.own:
        _targeted_destroy(ctx, tf.new_workspace, list(objects.own), _vars(ctx))
    after = new_cluster_objects(ctx)
    left = list(after.own) if after is not None else []
    if left:
        raise StepFailed(f"terraform destroy left {len(left)} new-cluster object(s) in the state of "
                         f"{tf.new_workspace}: {', '.join(left[:5])}", where=f"workspace {tf.new_workspace}",
                         hint="read terraform's output above, fix the cause, then run the rollback again")


def old_cluster_left(ctx: Context, addresses: list[str]) -> list[str]:
    """The old cluster's instances still in the old workspace's state."""
    tf = _tf(ctx)
    backend = backend_for(ctx)
    if not backend.exists(tf.workspace):
        return []
    state = backend.read(tf.workspace, keep_raw=False).state
    return state.select(addresses) if state else []


def destroy_old(ctx: Context, addresses: list[str]) -> dict[str, Any]:
    """Decommission through terraform: destroy the old cluster's instances in the old workspace.

    After the handover the old state holds only the old cluster; the gate still refuses any delete
    outside its addresses, in case it does not.
    """
    left = old_cluster_left(ctx, addresses)
    if left:
        _targeted_destroy(ctx, _tf(ctx).workspace, left, _vars(ctx, old=True))
    remaining = old_cluster_left(ctx, addresses)
    if remaining:
        raise StepFailed(f"terraform destroy left {len(remaining)} old-cluster object(s) in the state: "
                         f"{', '.join(remaining[:5])}", where=f"workspace {_tf(ctx).workspace}",
                         hint="read terraform's output above, fix the cause, then run the same command again")
    return {"destroyed_addresses": len(left)}


__all__ = ["backend_config", "destroy_new", "destroy_old", "is_provisioned", "new_cluster_objects", "old_cluster_left",
           "provision"]
