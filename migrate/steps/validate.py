"""validate: built-in checks and the team's suites against the new cluster; a failure stops the run before
any traffic moves. Results are kept in ``<workdir>/validate/results.json`` (0600) for the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from migrate.errors import GateFailed, MigrateError
from migrate.plan.model import Step
from migrate.steps.base import Context
from migrate.steps.traffic import entry_url, kube_clients, outputs_of, resolve_targets
from migrate.traffic.files import write_json
from migrate.validate.result import summary
from migrate.validate.runner import Targets, run_validation


def results_path(ctx: Context) -> Path:
    return ctx.workdir / "validate" / "results.json"


def new_url(ctx: Context) -> str:
    gw = outputs_of(ctx, "open-gateway")
    if gw.get("url"):
        return str(gw["url"])
    if ctx.env.gateway.url:
        return ctx.env.gateway.url
    return f"http://{resolve_targets(ctx)['new_host']}"  # no gateway: the new load balancer itself


class ValidateStep:
    kind: ClassVar[str] = "validate"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        # Read-only checks: running them again is the only honest answer after an interruption.
        return None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        from migrate.steps.traffic import kubeconfig

        cfg = ctx.env.validation
        try:
            path, _old, new_ctx = kubeconfig(ctx)
        except MigrateError:
            path, new_ctx = None, None
        targets = Targets(new_url=new_url(ctx), old_url=entry_url(ctx) if ctx.env.traffic else new_url(ctx),
                          kubeconfig=path, new_context=new_ctx)
        floor = ctx.env.traffic.thresholds.latency_floor_ms if ctx.env.traffic else 0.0
        kube_old = kube_new = None
        if cfg.health and path:
            kube_old, kube_new = kube_clients(ctx)
        try:
            results = run_validation(cfg, targets, root=ctx.loaded.root, out_dir=ctx.workdir / "validate" / "junit",
                                     latency_floor_ms=floor, kube_old=kube_old, kube_new=kube_new,
                                     replay_outputs=outputs_of(ctx, "replay-workloads"), log=ctx.log)
        finally:
            for k in (kube_old, kube_new):
                if k is not None:
                    k.close()
        out = {**summary(results), "new_url": targets.new_url, "old_url": targets.old_url}
        write_json(results_path(ctx), out)
        outputs = {"ok": out["ok"], "checks": out["checks"], "failed": out["failed"],
                   "results": str(results_path(ctx)), "new_url": targets.new_url}
        if not out["ok"]:
            error = GateFailed(f"validation failed: {', '.join(out['failed'])}", where=str(results_path(ctx)),
                               hint="no traffic has moved; fix the new cluster (or the checks), then run again")
            from migrate.steps.report import write_reports

            try:
                write_reports(ctx, failure=error.what)
            except Exception as e:  # the report must never hide the validation failure
                ctx.log(f"could not write the report: {e}")
            raise error
        return outputs

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        return None
