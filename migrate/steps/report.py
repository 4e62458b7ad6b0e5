"""write-report: a Markdown account of the run, from its journal."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from migrate.errors import StepFailed
from migrate.plan.model import Step
from migrate.steps.base import Context


def _parse(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")


def report_path(ctx: Context) -> Any:
    return ctx.loaded.resolve(ctx.loaded.config.plans_dir) / f"{ctx.env_name}-{ctx.run_id}.report.md"


def render_report(ctx: Context) -> str:
    records = [r for r in ctx.records() if r.get("run") == ctx.run_id]
    started: dict[str, str] = {}
    rows = []
    for r in records:
        if r["type"] == "step.started":
            started[r["step"]] = r["ts"]
        elif r["type"] in ("step.done", "step.failed") and r["step"] in started:
            secs = (_parse(r["ts"]) - _parse(started[r["step"]])).total_seconds()
            rows.append(f"| `{r['step']}` | {r['type'].split('.')[1]} | {secs:.2f} s | {started[r['step']]} |")
    approvals = [r for r in records if r["type"] == "approval"]
    lines = [f"# Migration report: {ctx.env_name}", "", f"- Run: `{ctx.run_id}`"]
    for a in approvals:
        lines.append(f"- Approved plan `{a.get('plan_digest')}` by {a.get('by')} at {a['ts']}")
    lines += ["", "## Timeline", "", "| step | result | duration | started |", "|---|---|---|---|", *rows, ""]
    return "\n".join(lines)


class WriteReportStep:
    kind: ClassVar[str] = "write-report"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        path = report_path(ctx)
        return {"path": str(path)} if path.exists() else None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        path = report_path(ctx)
        tmp = path.with_suffix(".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(render_report(ctx), encoding="utf-8")
            tmp.replace(path)  # atomic: a reader never sees half a report
        except OSError as e:
            raise StepFailed(f"cannot write the report: {e.strerror}", where=str(path),
                             hint="make the plans directory writable, then resume") from e
        return {"path": str(path)}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        # The report is a record of what happened, including the rollback: keep it.
        return None
