"""provision-cluster, wait-cluster-ready and write-kubeconfig (the `api` provisioner: boto3 / GKE API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from migrate.cloud.clusters import ClusterProvider, api_missing, kube_client, provider_for
from migrate.cloud.kubeconfig import read_contexts, write_kubeconfig
from migrate.cloud.poll import poll
from migrate.errors import StepFailed
from migrate.plan.model import Step
from migrate.steps import tfprovision
from migrate.steps.base import Context


def _provider(ctx: Context) -> ClusterProvider:
    return provider_for(ctx.env)


def _spec(ctx: Context, provider: ClusterProvider) -> dict[str, Any]:
    """The reviewed spec from the plan's provision step; computed afresh when provisioning is skipped."""
    step = ctx.step_of_kind("provision-cluster")
    if step is not None and isinstance(step.params.get("spec"), dict):
        return dict(step.params["spec"])
    return provider.new_spec()


def expected_nodes(spec: dict[str, Any]) -> int:
    return sum(int(g.get("desired_size", 0)) for g in spec.get("nodegroups", [])) + sum(
        int(p.get("node_count", 0)) for p in spec.get("node_pools", []))


class ProvisionClusterStep:
    kind: ClassVar[str] = "provision-cluster"

    def facts(self, ctx: Context) -> dict[str, Any]:
        if ctx.env.provisioner != "api":
            return {}
        p = _provider(ctx)
        facts = p.old_facts()
        if facts.get("old") is None:
            raise StepFailed(f"the old cluster {ctx.env.clusters.old.name} was not found",
                             where=f"environments.{ctx.env_name}.clusters.old.name",
                             hint="check the name, the region or project, and the credentials")
        return {**facts, "params": {"spec": p.new_spec()}}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        if ctx.env.provisioner == "terraform":
            return tfprovision.is_provisioned(ctx)
        p = _provider(ctx)
        spec = _spec(ctx, p)
        if not p.exists(spec["name"]):
            return None
        ready = p.readiness(spec)
        return {"cluster": spec["name"], **p.after_active(spec, ready)} if ready.active else None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        if ctx.env.provisioner == "terraform":
            return tfprovision.provision(step, ctx)
        p = _provider(ctx)
        spec = _spec(ctx, p)
        started = p.create(spec)
        ctx.log(f"creating cluster {spec['name']}")
        ready = poll(lambda: ((r := p.readiness(spec)).active, r), timeout=ctx.env.clusters.new.ready_timeout,
                     what=f"cluster {spec['name']} to become active", where=f"cluster {spec['name']}",
                     describe=lambda r: "; ".join(r.cloud_missing),
                     on_wait=lambda r, left: ctx.log(f"waiting ({left:.0f}s left): {'; '.join(r.cloud_missing)}"))
        return {"cluster": spec["name"], **started, **p.after_active(spec, ready)}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        if ctx.env.provisioner == "terraform":
            tfprovision.destroy_new(ctx)
            return
        p = _provider(ctx)
        spec = _spec(ctx, p)
        p.delete(spec, outputs)
        poll(lambda: (not p.exists(spec["name"]), spec["name"]), timeout=ctx.env.clusters.new.ready_timeout,
             what=f"cluster {spec['name']} to be deleted", where=f"cluster {spec['name']}")


class WaitClusterReadyStep:
    kind: ClassVar[str] = "wait-cluster-ready"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def _missing(self, ctx: Context, p: ClusterProvider, spec: dict[str, Any]) -> list[str]:
        ready = p.readiness(spec)
        if not ready.active:
            return ready.cloud_missing
        access = p.access(spec["name"], spec["name"])
        return api_missing(kube_client(access, p.token(spec["name"])), expected_nodes(spec), p.core_addons(spec))

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        p = _provider(ctx)
        spec = _spec(ctx, p)
        return {"cluster": spec["name"], "ready": True} if not self._missing(ctx, p, spec) else None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        p = _provider(ctx)
        spec = _spec(ctx, p)
        poll(lambda: (not (m := self._missing(ctx, p, spec)), m), timeout=ctx.env.clusters.new.ready_timeout,
             what=f"cluster {spec['name']} and its Kubernetes API to be ready", where=f"cluster {spec['name']}",
             describe="; ".join, on_wait=lambda m, left: ctx.log(f"not ready yet ({left:.0f}s left): {'; '.join(m)}"))
        return {"cluster": spec["name"], "ready": True}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        return None


class WriteKubeconfigStep:
    kind: ClassVar[str] = "write-kubeconfig"
    local_effect: ClassVar[bool] = True

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def _path(self, ctx: Context) -> Path:
        return ctx.workdir / "kubeconfig"

    def _contexts(self, ctx: Context) -> dict[str, str]:
        return {"old": ctx.env.clusters.old.name, "new": ctx.env.clusters.new.name}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        path = self._path(ctx)
        have = read_contexts(path)
        p = _provider(ctx)
        for name in self._contexts(ctx).values():
            if have.get(name) != p.access(name, name).server:
                return None
        return {"kubeconfig": str(path), "contexts": self._contexts(ctx)}

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        p = _provider(ctx)
        names = self._contexts(ctx)
        path = write_kubeconfig(self._path(ctx), [p.access(names["new"], names["new"]),
                                                  p.access(names["old"], names["old"])], current=names["new"])
        return {"kubeconfig": str(path), "contexts": names}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        self._path(ctx).unlink(missing_ok=True)
