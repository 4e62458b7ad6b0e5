"""Terraform workspace steps: duplicate-workspace and detach-cluster (migration); handover-shared,
destroy-old-cluster and retire-workspace (decommission).

State is only touched through the native backends (migrate.terraform), each write under the backend's
own lock, with a backup before and a read-back after.
"""

from __future__ import annotations

from typing import Any, ClassVar

from migrate.config import Terraform
from migrate.errors import ConfigError, StepFailed
from migrate.plan.model import Step
from migrate.steps.base import Context
from migrate.terraform import State, detach, duplicate_workspace, handover, retire
from migrate.terraform.address import parse_address
from migrate.terraform.backends import make_backend
from migrate.terraform.backends.base import Backend


def _tf(ctx: Context) -> Terraform:
    if ctx.env.terraform is None:
        raise ConfigError("this step needs a terraform section", where=f"environments.{ctx.env_name}",
                          hint="add terraform: {root, backend, workspace, new_workspace}, or skip the step")
    return ctx.env.terraform


def backend_for(ctx: Context) -> Backend:
    b = _tf(ctx).backend
    backups = ctx.workdir / "backups"
    if b.type == "local":
        return make_backend("local", root=ctx.loaded.resolve(b.path or _tf(ctx).root))
    if b.type == "s3":
        region = b.region or (ctx.env.aws.region if ctx.env.aws else "us-east-1")
        return make_backend("s3", bucket=b.bucket, key=b.key, region=region,
                            workspace_key_prefix=b.workspace_key_prefix, dynamodb_table=b.dynamodb_table,
                            use_lockfile=b.use_lockfile, endpoint_url=b.endpoint_url, backup_dir=backups)
    return make_backend("gcs", bucket=b.bucket, prefix=b.prefix or "", backup_dir=backups)


def _read(backend: Backend, ws: str) -> State:
    blob = backend.read(ws, keep_raw=False)
    if blob.state is None:
        raise StepFailed(f"workspace {ws!r} has no state", where=blob.where, hint="check terraform.workspace")
    return blob.state


def ownership(ctx: Context, state: State) -> dict[str, Any]:
    """Cluster-owned vs shared addresses, from the root module's HCL and the state, with config overrides."""
    from migrate.terraform.ownership import classify, read_root_module

    tf = _tf(ctx)
    facts = read_root_module(ctx.loaded.resolve(tf.root))
    return classify(state, facts, cluster=tf.ownership.cluster, shared=tf.ownership.shared,
                    where=f"environments.{ctx.env_name}.terraform.ownership").to_dict()


class DuplicateWorkspaceStep:
    kind: ClassVar[str] = "duplicate-workspace"

    def facts(self, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        src = _read(backend, tf.workspace)
        return {"source": {"workspace": tf.workspace, "lineage": src.lineage, "serial": src.serial},
                "target_exists": backend.exists(tf.new_workspace)}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        if not backend.exists(tf.new_workspace):
            return None
        target = backend.read(tf.new_workspace, keep_raw=False).state
        src = _read(backend, tf.workspace)
        origin = (target.origin if target else None) or {}
        if origin.get("workspace") == tf.workspace and origin.get("lineage") == src.lineage and target:
            return {"new_lineage": target.lineage, "source_lineage": src.lineage, "serial": target.serial}
        return None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        r = duplicate_workspace(backend_for(ctx), tf.workspace, tf.new_workspace, info=f"run {ctx.run_id}")
        ctx.log(f"{tf.new_workspace}: {len(r.addresses)} addresses, lineage {r.new_lineage}")
        return {"new_lineage": r.new_lineage, "source_lineage": r.source_lineage, "source_serial": r.source_serial,
                "serial": r.serial, "addresses": len(r.addresses)}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        if not backend.exists(tf.new_workspace):
            return
        target = backend.read(tf.new_workspace, keep_raw=False).state
        ours = target is not None and (target.lineage == outputs.get("new_lineage")
                                       or (target.origin or {}).get("workspace") == tf.workspace)
        if not ours:
            raise StepFailed(f"workspace {tf.new_workspace!r} does not hold the copy this run made; not deleting it",
                             where=backend.where(tf.new_workspace), hint="inspect it and delete it by hand if stale")
        managed = [a for a in (target.addresses() if target else []) if not a.startswith("data.")
                   and ".data." not in a]
        copied = set(_read(backend, tf.workspace).addresses())
        created = [a for a in managed if a not in copied]
        if created:
            raise StepFailed(f"workspace {tf.new_workspace!r} manages resources the copy did not bring "
                             f"({', '.join(created[:5])}); destroy them first",
                             where=backend.where(tf.new_workspace),
                             hint="roll back provision-cluster first, which destroys the new cluster")
        with backend.locked(tf.new_workspace, "migrate: rollback duplicate") as lock:
            backend.delete_workspace(tf.new_workspace, lock)


class DetachClusterStep:
    kind: ClassVar[str] = "detach-cluster"

    def facts(self, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        src = _read(backend_for(ctx), tf.workspace)
        owned = ownership(ctx, src)
        return {"ownership": owned, "params": {"addresses": owned["cluster"]}}

    def _addresses(self, step: Step) -> list[str]:
        return list(step.params.get("addresses") or [])

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        if not backend.exists(tf.new_workspace):
            return None
        left = _read(backend, tf.new_workspace).select(self._addresses(step))
        return None if left else {"removed": len(self._addresses(step)), "found_detached": True}

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        r = detach(backend_for(ctx), tf.new_workspace, self._addresses(step), missing_ok=True)
        ctx.log(f"{tf.new_workspace}: removed {len(r.removed)} cluster-owned addresses")
        return {"removed": len(r.removed), "serial": r.serial}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        # Putting the old cluster back into the copy would make two states own it: the detached copy
        # is the safe state. Undoing duplicate-workspace deletes the copy altogether.
        return None


class HandoverSharedStep:
    kind: ClassVar[str] = "handover-shared"

    def facts(self, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        old, new = _read(backend, tf.workspace), _read(backend, tf.new_workspace)
        owned = ownership(ctx, old)
        in_new = set(new.addresses())
        shared = [a for a in owned["shared"] if a in in_new and not a.startswith("data.") and ".data." not in a]
        return {"ownership": owned, "old": {"lineage": old.lineage, "serial": old.serial},
                "new": {"lineage": new.lineage, "serial": new.serial}, "params": {"addresses": shared}}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        if not backend.exists(tf.workspace):
            return {"handed_over": 0, "old_workspace_gone": True}
        left = _read(backend, tf.workspace).select(step.params.get("addresses") or [])
        return None if left else {"handed_over": len(step.params.get("addresses") or [])}

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        r = handover(backend_for(ctx), tf.workspace, tf.new_workspace, step.params.get("addresses") or [])
        return {"handed_over": len(r.handed_over), "old_serial": r.from_serial}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        raise StepFailed("a handover is not undone automatically",
                         where=f"workspace {_tf(ctx).workspace}",
                         hint=f"the state before it is backed up under {ctx.workdir / 'backups'}; restore it with "
                         "`terraform state push` if the old cluster must live on")


# Resource types that delete_old() removes through the cloud API (the cluster and what dies with it).
API_DELETED_TYPES = frozenset({"aws_eks_cluster", "aws_eks_node_group", "aws_eks_addon",
                               "aws_iam_openid_connect_provider", "google_container_cluster",
                               "google_container_node_pool"})


class DestroyOldClusterStep:
    """Delete the old cluster. `terraform`: a gated, targeted destroy in the old workspace. `api`: through
    the cloud API, then its addresses leave the old state."""

    kind: ClassVar[str] = "destroy-old-cluster"

    def facts(self, ctx: Context) -> dict[str, Any]:
        if ctx.env.terraform is None:
            return {}
        owned = ownership(ctx, _read(backend_for(ctx), ctx.env.terraform.workspace))
        return {"params": {"addresses": owned["cluster"]}}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        from migrate.cloud.clusters import provider_for
        from migrate.steps.tfprovision import old_cluster_left

        addresses = list(step.params.get("addresses") or [])
        if ctx.env.terraform is not None and old_cluster_left(ctx, addresses):
            return None
        # Through terraform the state is the record of what exists; through the API, ask the cloud.
        if ctx.env.provisioner == "api" and provider_for(ctx.env).exists(ctx.env.clusters.old.name):
            return None
        return {"destroyed": ctx.env.clusters.old.name}

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        from migrate.cloud.clusters import provider_for
        from migrate.cloud.poll import poll
        from migrate.steps.tfprovision import destroy_old

        old = ctx.env.clusters.old.name
        addresses = list(step.params.get("addresses") or [])
        if ctx.env.provisioner == "terraform":
            return {"destroyed": old, **destroy_old(ctx, addresses)}
        p = provider_for(ctx.env)
        outputs = p.delete_old()
        poll(lambda: (not p.exists(old), old), timeout=ctx.env.clusters.old.ready_timeout,
             what=f"cluster {old} to be deleted", where=f"cluster {old}")
        removed: tuple[str, ...] = ()
        if ctx.env.terraform is not None:
            removed = detach(backend_for(ctx), ctx.env.terraform.workspace, addresses, missing_ok=True).removed
        # The API deleted only the cluster and what lives inside it; the rest still exists, unmanaged now.
        parsed = [(a, parse_address(a)) for a in removed]
        unmanaged = [a for a, addr in parsed if addr.mode == "managed" and addr.type not in API_DELETED_TYPES]
        if unmanaged:
            ctx.log(f"{len(unmanaged)} object(s) left {ctx.env.terraform.workspace if ctx.env.terraform else ''}'s "
                    f"state but were not deleted by the cloud API; delete them by hand if nothing uses them: "
                    + ", ".join(unmanaged[:10]) + (" …" if len(unmanaged) > 10 else ""))
        return {"destroyed": old, "state_removed": len(removed), "left_unmanaged": unmanaged, **outputs}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        raise StepFailed("a destroyed cluster cannot be brought back by a rollback",
                         where=f"cluster {ctx.env.clusters.old.name}")


class RetireWorkspaceStep:
    kind: ClassVar[str] = "retire-workspace"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        return None if backend_for(ctx).exists(_tf(ctx).workspace) else {"retired": _tf(ctx).workspace}

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        r = retire(backend_for(ctx), _tf(ctx).workspace)
        return {"retired": r.workspace, "last_lineage": r.last_lineage}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        raise StepFailed("a retired workspace is not re-created automatically",
                         where=f"workspace {_tf(ctx).workspace}",
                         hint=f"its last state is backed up under {ctx.workdir / 'backups'}")
