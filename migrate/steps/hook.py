"""Operator hooks: commands run at chosen points of the migration."""

from __future__ import annotations

import os
import subprocess
from typing import Any, ClassVar

from migrate.config import Hook
from migrate.errors import StepFailed
from migrate.plan.model import Step
from migrate.steps.base import Context


def _hook(step: Step, ctx: Context) -> Hook:
    name = step.params["name"]
    for h in ctx.env.hooks:
        if h.name == name:
            return h
    raise StepFailed(
        f"hook {name!r} is in the plan but no longer in the configuration",
        where=f"{ctx.loaded.path.name}: environments.{ctx.env_name}.hooks",
        hint="restore the hook, or roll back and plan again",
    )


def _run(cmd: list[str], h: Hook, ctx: Context, what: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **h.env, "MIGRATE_ENV": ctx.env_name, "MIGRATE_RUN_ID": ctx.run_id,
           "MIGRATE_WORKDIR": str(ctx.workdir)}
    try:
        return subprocess.run(cmd, cwd=ctx.loaded.root, env=env, capture_output=True, text=True,
                              timeout=h.timeout, check=False)
    except FileNotFoundError:
        raise StepFailed(f"hook {h.name}: {what} command {cmd[0]!r} not found",
                         where=f"environments.{ctx.env_name}.hooks.{h.name}",
                         hint="install it or fix the path") from None
    except subprocess.TimeoutExpired:
        raise StepFailed(f"hook {h.name}: {what} command timed out after {h.timeout:g}s",
                         where=f"environments.{ctx.env_name}.hooks.{h.name}") from None


def _tail(text: str, n: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


class HookStep:
    kind: ClassVar[str] = "hook"

    def facts(self, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for h in ctx.env.hooks:
            if h.check:
                out[h.name] = "done" if _run(h.check, h, ctx, "check").returncode == 0 else "pending"
        return out

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        h = _hook(step, ctx)
        if h.check is None:
            return None
        return {"checked": True} if _run(h.check, h, ctx, "check").returncode == 0 else None

    def can_retry(self, step: Step, ctx: Context) -> bool:
        h = _hook(step, ctx)
        return h.idempotent or h.check is not None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        h = _hook(step, ctx)
        proc = _run(h.run, h, ctx, "run")
        if proc.returncode != 0:
            raise StepFailed(f"hook {h.name} exited with {proc.returncode}: {_tail(proc.stderr) or '(no stderr)'}",
                             where=f"environments.{ctx.env_name}.hooks.{h.name}",
                             hint="fix the cause, then run the same command again to resume")
        return {"exit_code": 0, "stdout_tail": _tail(proc.stdout)}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        h = _hook(step, ctx)
        if h.undo is None:
            return
        proc = _run(h.undo, h, ctx, "undo")
        if proc.returncode != 0:
            raise StepFailed(f"hook {h.name} undo exited with {proc.returncode}: {_tail(proc.stderr)}",
                             where=f"environments.{ctx.env_name}.hooks.{h.name}")
