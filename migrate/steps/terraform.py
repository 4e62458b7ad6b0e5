"""Terraform workspace steps: duplicate-workspace and detach-cluster (migration); handover-shared,
destroy-old-cluster and retire-workspace (decommission).

Ownership between the two workspaces is decided by object (the ``id`` in the state), never by address
alone: after the apply the new cluster has the old cluster's address.

State is only touched through the native backends (migrate.terraform), each write under the backend's
own lock, with a backup before and a read-back after.
"""

from __future__ import annotations

from typing import Any, ClassVar

from migrate.config import Terraform
from migrate.errors import ConfigError, StateError, StepFailed
from migrate.plan.model import Step
from migrate.steps.base import Context
from migrate.terraform import (
    State,
    compare_objects,
    detach,
    duplicate_workspace,
    handover,
    removable_copies,
    retire,
)
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
        raise StateError(f"the state of workspace {ws!r} is empty", where=blob.where,
                         hint="restore it from a backup (a *.backup file, or the bucket's object versions), or "
                         "check terraform.workspace")
    return blob.state


def _planned_old_state(ctx: Context) -> tuple[State, dict[str, Any]]:
    """The old workspace's state and its ownership, read once per planning pass (``ctx.reads``): the copy's
    and the detach's facts then describe the very same state, and a 5,000-resource state is parsed once."""
    key = "terraform:old-state"
    if key not in ctx.reads:
        state = _read(backend_for(ctx), _tf(ctx).workspace)
        ctx.reads[key] = (state, ownership(ctx, state))
    got: tuple[State, dict[str, Any]] = ctx.reads[key]
    return got


def ownership(ctx: Context, state: State) -> dict[str, Any]:
    """Cluster-owned vs shared addresses, from the root module's HCL and the state, with config overrides."""
    from migrate.terraform.ownership import classify, read_root_module

    tf = _tf(ctx)
    facts = read_root_module(ctx.loaded.resolve(tf.root))
    # The API provisioner builds the new cluster on the old one's roles, subnets and security groups, so
    # what only the old cluster uses stays shared there; the copy's terraform apply recreates it.
    return classify(state, facts, cluster_name=ctx.env.clusters.old.name, cluster=tf.ownership.cluster,
                    shared=tf.ownership.shared, exclusive=ctx.env.provisioner == "terraform",
                    cluster_modules=tf.ownership.cluster_modules,
                    where=f"environments.{ctx.env_name}.terraform.ownership",
                    name_where=f"environments.{ctx.env_name}.clusters.old.name").to_dict()


def version_warning(ctx: Context, state: State, ws: str) -> str | None:
    """A warning when ``state`` was written by a newer Terraform than the binary on PATH (which plans the
    copy and, before 1.0, refuses states from newer versions); None without a binary to compare with."""
    import shutil

    from migrate.errors import TerraformError
    from migrate.terraform.cli import TerraformCLI, TerraformVersion

    if not state.terraform_version or shutil.which("terraform") is None:
        return None
    try:
        binary = TerraformCLI(ctx.loaded.resolve(_tf(ctx).root)).version()
        written = TerraformVersion.parse(state.terraform_version)
    except TerraformError:
        return None
    if binary.at_least(written.major, written.minor, written.patch):
        return None
    return (f"the state of workspace {ws!r} was written by Terraform {written}, newer than the terraform binary on "
            f"PATH ({binary}); upgrade the binary before it plans or applies the copy")


def _read_if_exists(backend: Backend, ws: str) -> State | None:
    return backend.read(ws, keep_raw=False).state if backend.exists(ws) else None


def _journaled_lineage(step: Step, ctx: Context) -> str | None:
    """The copy's lineage this run journaled for ``step``, if it ever completed (Terraform drops the
    ``migrate_origin`` marker on its first write, so the journal is what recognises the copy then)."""
    lineage = (ctx.outputs.get(step.id) or {}).get("new_lineage")
    if lineage:
        return str(lineage)
    for rec in reversed(ctx.records()):
        if rec.get("type") == "step.done" and rec.get("run") == ctx.run_id and rec.get("step") == step.id:
            lineage = (rec.get("outputs") or {}).get("new_lineage")
            if lineage:
                return str(lineage)
    return None


def cluster_addresses(ctx: Context, step: Step | None = None) -> list[str]:
    """The cluster-owned addresses the plan reviewed: duplicate-workspace's ``exclude``, or (plans made
    before the copy left the cluster out itself) detach-cluster's ``addresses``."""
    dup = step if step is not None and step.kind == DuplicateWorkspaceStep.kind else \
        ctx.step_of_kind(DuplicateWorkspaceStep.kind)
    if dup is not None and "exclude" in dup.params:
        return list(dup.params.get("exclude") or [])
    det = ctx.step_of_kind(DetachClusterStep.kind)
    return list(det.params.get("addresses") or []) if det is not None else []


class DuplicateWorkspaceStep:
    """Copy the old workspace into the new one, already without the cluster-owned closure: one locked
    write, so at no moment do both states own the old cluster."""

    kind: ClassVar[str] = "duplicate-workspace"

    def facts(self, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        src, owned = _planned_old_state(ctx)
        facts: dict[str, Any] = {"source": {"workspace": tf.workspace, "lineage": src.lineage, "serial": src.serial},
                                 "target_exists": backend.exists(tf.new_workspace)}
        if facts["target_exists"]:
            tgt = _read_if_exists(backend, tf.new_workspace)
            facts["target"] = {"workspace": tf.new_workspace, "lineage": tgt.lineage if tgt else None,
                               "serial": tgt.serial if tgt else None}
        facts["params"] = {"exclude": list(owned["cluster"])}
        warning = version_warning(ctx, src, tf.workspace)
        if warning:
            facts["warnings"] = [warning]
        return facts

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        target = _read_if_exists(backend, tf.new_workspace)
        if target is None:
            return None
        src = _read(backend, tf.workspace)
        origin = target.origin or {}
        journaled = _journaled_lineage(step, ctx)
        if (origin.get("workspace") == tf.workspace and origin.get("lineage") == src.lineage) or \
                (journaled is not None and target.lineage == journaled):
            out: dict[str, Any] = {"new_lineage": target.lineage, "source_lineage": src.lineage,
                                   "serial": target.serial}
            if "excluded" in origin:
                out["excluded"] = list(origin["excluded"])
            return out
        return None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        facts = ctx.plan.fingerprint.facts.get(self.kind) if ctx.plan else None
        for warning in (facts or {}).get("warnings") or []:
            ctx.log(f"warning: {warning}")
        r = duplicate_workspace(backend_for(ctx), tf.workspace, tf.new_workspace,
                                exclude=cluster_addresses(ctx, step), missing_ok=True,
                                expected_lineage=_journaled_lineage(step, ctx), info=f"run {ctx.run_id}")
        ctx.log(f"{tf.new_workspace}: {r.count} addresses, {len(r.excluded)} cluster-owned left out, "
                f"lineage {r.new_lineage}")
        return {"new_lineage": r.new_lineage, "source_lineage": r.source_lineage, "source_serial": r.source_serial,
                "serial": r.serial, "addresses": r.count, "excluded": list(r.excluded),
                **({"md5": r.write.md5} if r.write is not None else {}),
                **({"found_done": True} if r.already_done else {})}

    def guard_later(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        """Before any later step of a run: the copy is still the one this run made (its lineage as journaled,
        a serial that only grew). Raises StateError, and writes nothing, when it is not."""
        lineage = outputs.get("new_lineage")
        if not lineage:
            return  # marked done by the operator: nothing journaled to compare with
        tf = _tf(ctx)
        backend = backend_for(ctx)
        where = backend.where(tf.new_workspace)
        hint = (f"restore the copy from the backups under {ctx.workdir / 'backups'} (or the bucket's object "
                f"versions), or roll this run back with `invoke rollback --env {ctx.env_name}` and start again")
        head = backend.head(tf.new_workspace)
        if head is None:
            raise StateError(f"workspace {tf.new_workspace!r} no longer holds the copy this run made at step "
                             f"{step.id} (lineage {lineage}): it is gone or empty", where=where, hint=hint)
        now, serial = head
        if now != lineage:
            same = " (the lineage of the original: its state was pushed over the copy)" \
                if now == outputs.get("source_lineage") else ""
            raise StateError(f"workspace {tf.new_workspace!r} holds a state of lineage {now}{same}, not the copy "
                             f"this run made at step {step.id} (lineage {lineage})", where=where, hint=hint)
        # The copy's serials this run journaled (the duplicate's write, a detach cleanup's).
        serials = [o.get("serial") for o in (outputs, ctx.outputs_of_kind(DetachClusterStep.kind))]
        known = max([v for v in serials if isinstance(v, int) and not isinstance(v, bool)] or [0])
        if serial < known:
            raise StateError(f"the serial of workspace {tf.new_workspace!r} went back from {known} to {serial}: "
                             "an older state of the copy was restored over a newer one", where=where, hint=hint)

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        if not backend.exists(tf.new_workspace):
            return
        old = _read_if_exists(backend, tf.workspace)
        # Checked under the copy's lock, so no apply can slip in between the check and the delete.
        with backend.locked(tf.new_workspace, "migrate: rollback duplicate") as lock:
            target = backend.read(tf.new_workspace, lock, keep_raw=False).state
            if target is None or not (target.lineage == outputs.get("new_lineage")
                                      or (target.origin or {}).get("workspace") == tf.workspace):
                raise StepFailed(f"workspace {tf.new_workspace!r} does not hold the copy this run made; "
                                 "not deleting it", where=backend.where(tf.new_workspace),
                                 hint="inspect it and delete it by hand if stale")
            # By object, not by address: the new cluster sits at the old cluster's address.
            cmp = compare_objects(target, old)
            held = [*cmp.own, *cmp.unsure]
            if held:
                raise StepFailed(
                    f"workspace {tf.new_workspace!r} still manages {len(held)} object(s) that {tf.workspace!r} "
                    f"does not ({', '.join(held[:5])}{' …' if len(held) > 5 else ''}); deleting the workspace "
                    "would leave them running with no state",
                    where=backend.where(tf.new_workspace),
                    hint="roll back provision-cluster first (a gated terraform destroy of the new cluster), or "
                    f"destroy them with terraform in workspace {tf.new_workspace}, then run the rollback again")
            backend.delete_workspace(tf.new_workspace, lock)


class DetachClusterStep:
    """Verification and cleanup after duplicate-workspace, which already leaves the cluster out.

    Under the copy's lock it removes any copy of an old-cluster object still in the new workspace (a copy
    made by an older version or by hand, or a journal from before), and writes nothing otherwise ("already
    done"). It never removes an object the new workspace alone manages, even at a cluster-owned address.
    Being a locked check, it always runs rather than being skipped by ``is_done``.
    """

    kind: ClassVar[str] = "detach-cluster"

    def facts(self, ctx: Context) -> dict[str, Any]:
        _src, owned = _planned_old_state(ctx)
        return {"ownership": owned, "params": {"addresses": owned["cluster"]}}

    def _addresses(self, step: Step) -> list[str]:
        return list(step.params.get("addresses") or [])

    def left(self, step: Step, ctx: Context) -> list[str]:
        """Copies of old-cluster objects still in the new workspace (read-only)."""
        tf = _tf(ctx)
        backend = backend_for(ctx)
        copy, old = _read_if_exists(backend, tf.new_workspace), _read_if_exists(backend, tf.workspace)
        return removable_copies(copy, self._addresses(step), old) if copy is not None and old is not None else []

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        return None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        tf = _tf(ctx)
        backend = backend_for(ctx)
        dup = ctx.outputs_of_kind(DuplicateWorkspaceStep.kind)
        # The copy still holds exactly the bytes duplicate-workspace wrote (and verified) without the
        # cluster: nothing to remove, and a digest is far cheaper than parsing a large state again.
        # A read-only look needs no lock: an object is replaced whole, and nothing is written here.
        if dup.get("md5") and "excluded" in dup and backend.stored_md5(tf.new_workspace) == dup["md5"]:
            ctx.log(f"{tf.new_workspace}: already done, unchanged since it was copied without the "
                    f"{len(dup['excluded'])} cluster-owned addresses")
            return {"removed": 0, "serial": dup.get("serial"), "already_done": True, "verified_by_digest": True}
        # The old state is read only if the copy still holds a cluster-owned address (the cleanup case).
        r = detach(backend, tf.new_workspace, self._addresses(step), missing_ok=True,
                   only_objects_of=lambda: _read(backend, tf.workspace))
        kept = f"; kept {len(r.kept)} that {tf.new_workspace} alone manages" if r.kept else ""
        if r.already_done:
            ctx.log(f"{tf.new_workspace}: already done, it holds none of the old cluster's objects{kept}")
        else:
            ctx.log(f"{tf.new_workspace}: removed {len(r.removed)} cluster-owned addresses{kept}")
        return {"removed": len(r.removed), "serial": r.serial, "already_done": r.already_done,
                **({"kept": list(r.kept)} if r.kept else {})}

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
