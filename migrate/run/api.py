"""The operations behind the CLI: plan, migrate, status, rollback, decommission, force-unlock.

Each one loads what it needs, takes the environment's run lock for anything that
acts, and returns plain data; rendering is the caller's job.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migrate.config import Environment, LoadedConfig
from migrate.errors import NotAvailable, PlanError, PrerequisiteError, UsageError
from migrate.plan.builder import build_plan, target_of
from migrate.plan.compare import first_difference
from migrate.plan.model import Fingerprint, Plan
from migrate.run.events import Event, Reporter
from migrate.run.executor import Executor
from migrate.run.journal import FAILED, STARTED, Journal, RunState, latest, new_run_id, utcnow, who
from migrate.run.locks import LocalRunLock
from migrate.run.planfiles import read_plan, write_plan
from migrate.steps import facts as step_facts
from migrate.steps import registry, storage
from migrate.steps.base import Context


@dataclass
class EnvHandle:
    loaded: LoadedConfig
    name: str

    @property
    def env(self) -> Environment:
        return self.loaded.env(self.name)

    @property
    def workdir(self) -> Path:
        return self.loaded.resolve(self.loaded.config.state_dir) / self.name

    _remote: tuple[Any, Any] | None = None
    _resolved: bool = False
    # Decommission: NAMESPACE/PVC globs of claims whose data the operator accepts to lose.
    accept_data_loss: tuple[str, ...] = ()

    def _store(self) -> tuple[Any, Any] | None:
        if not self._resolved:
            self._remote = storage.remote_store(self.loaded, self.name, self.env, self.workdir)
            self._resolved = True
        return self._remote

    @property
    def journal(self) -> Any:
        remote = self._store()
        return remote[0] if remote else Journal(self.workdir / "journal.jsonl")

    @property
    def lock(self) -> Any:
        remote = self._store()
        return remote[1] if remote else LocalRunLock(self.workdir / "run.lock", self.name)

    def context(self, run_id: str = "") -> Context:
        return Context(loaded=self.loaded, env_name=self.name, env=self.env, workdir=self.workdir,
                       run_id=run_id, records=self.journal.records, accept_data_loss=self.accept_data_loss)


def open_env(loaded: LoadedConfig, name: str) -> EnvHandle:
    loaded.env(name)  # raises ConfigError for an unknown environment
    return EnvHandle(loaded, name)


@contextmanager
def _locked(h: EnvHandle, operation: str) -> Iterator[None]:
    lock = h.lock
    lock.acquire(operation, f"env={h.name}")
    try:
        yield
    finally:
        lock.release()


# -- planning ---------------------------------------------------------------


def planned_hook(h: EnvHandle, name: str) -> dict[str, Any] | None:
    """Hook ``name`` as planned by the run of ``h`` that is still active (its params), else None."""
    run = latest(h.journal, "migrate")
    if run is None or not run.active:
        return None
    steps = Plan.model_validate(run.plan).steps
    return next((s.params for s in steps if s.kind == "hook" and s.params.get("name") == name), None)


def _kinds_for(h: EnvHandle, operation: str) -> list[str]:
    draft = build_plan(h.name, h.env, config_digest="", facts={}, available=registry.available(),
                       now="", who="", operation=operation)
    return [s.kind for s in draft.steps]


def fingerprint(h: EnvHandle, operation: str = "migrate", ctx: Context | None = None) -> Fingerprint:
    facts = step_facts.gather(ctx or h.context(), _kinds_for(h, operation))
    return Fingerprint(config=h.loaded.env_digest(h.name), facts=facts)


def make_plan(h: EnvHandle, operation: str = "migrate", fp: Fingerprint | None = None,
              ctx: Context | None = None) -> Plan:
    """The plan the configuration and the facts produce now (``fp``: facts already gathered)."""
    fp = fingerprint(h, operation, ctx) if fp is None else fp
    return build_plan(h.name, h.env, config_digest=fp.config, facts=fp.facts,
                      available=registry.available(), now=utcnow(), who=who(), operation=operation)


def dry_run(h: EnvHandle, operation: str = "migrate") -> tuple[Plan, Path, Path]:
    """Plan and write plans/<env>-<ts>.plan.{json,md}. Changes nothing anywhere else."""
    ctx = h.context()  # one context: the review reuses the reads the facts made (ctx.reads)
    plan = make_plan(h, operation, ctx=ctx)
    json_path, md_path = write_plan(plan, h.loaded.resolve(h.loaded.config.plans_dir))
    # Step kinds with something to show a reviewer (the replay's manifests) write it beside the plan.
    review_dir = json_path.with_name(json_path.name.removesuffix(".plan.json"))
    for kind in dict.fromkeys(s.kind for s in plan.steps if s.available):
        impl = registry.get(kind)
        review = getattr(impl, "review", None)
        if review is not None:
            review(ctx, review_dir)
    return plan, json_path, md_path


def check_identity(h: EnvHandle, plan: Plan, source: Path, operation: str) -> None:
    """Refuse a plan made for another environment, operation or target."""
    if plan.env != h.name:
        raise PlanError(f"this plan was made for environment {plan.env!r}, not {h.name!r}", where=str(source),
                        hint=f"use a plan generated with `invoke plan --env {h.name}`")
    if plan.operation != operation:
        raise PlanError(f"this is a {plan.operation} plan, not a {operation} plan", where=str(source))
    if plan.target != target_of(h.env):
        raise PlanError(f"this plan targets {plan.target}, but the configuration now targets "
                        f"{target_of(h.env)}", where=str(source), hint="plan again and review")


def check_current(h: EnvHandle, plan: Plan, source: Path, operation: str) -> None:
    """Refuse a plan made for another environment, operation or target, one that is stale, or one
    that is not what the configuration produces now (an edited and re-sealed file, for instance:
    the digest alone cannot tell, it is unkeyed)."""
    check_identity(h, plan, source, operation)
    now = fingerprint(h, operation)
    stale = []
    if now.config != plan.fingerprint.config:
        stale.append(f"the configuration of environments.{h.name} changed")
    for key in sorted(set(now.facts) | set(plan.fingerprint.facts)):
        if now.facts.get(key) != plan.fingerprint.facts.get(key):
            stale.append(f"the facts of {key!r} changed")
    if stale:
        raise PlanError(
            "the plan is stale: " + "; ".join(stale),
            where=str(source),
            hint=f"generate a new plan with `invoke plan --env {h.name}` and review it",
        )
    # The same pure builder as the dry run, from the facts just gathered.
    difference = first_difference(plan, make_plan(h, operation, now))
    if difference is not None:
        again = f"invoke plan --env {h.name}" + (" --decommission" if operation == "decommission" else "")
        raise PlanError(
            f"the plan no longer matches what migrate.yaml produces ({difference})",
            where=str(source),
            hint=f"run `{again}` again and review it",
        )


def _take_acceptance(h: EnvHandle, plan: Plan, source: Path) -> None:
    """A reviewed decommission plan carries the claims whose data loss was accepted: the command line may
    repeat that list, not change it."""
    step = next((s for s in plan.steps if s.kind == "protect-volumes"), None)
    planned = tuple(sorted(set((step.params.get("accept_data_loss") or []) if step else [])))
    given = tuple(sorted(set(h.accept_data_loss)))
    if given and given != planned:
        raise PlanError(
            f"the plan accepts the data loss of {', '.join(planned) or 'no claim'}, but the command line names "
            f"{', '.join(given)}", where=str(source),
            hint=f"run it without --accept-data-loss, or plan again with `invoke plan --env {h.name} --decommission "
            + " ".join(f"--accept-data-loss {p}" for p in given) + "` and review that plan")
    h.accept_data_loss = planned


def check_requires(h: EnvHandle) -> None:
    for req in h.env.requires:
        run = latest(open_env(h.loaded, req).journal, "migrate")
        if run is None or run.status != "completed":
            state = "has never run" if run is None else f"is {run.status}"
            raise PrerequisiteError(
                f"environment {h.name!r} requires {req!r} to have completed first; {req} {state}",
                where=f"environments.{h.name}.requires",
                hint=f"run `invoke migrate --env {req}` to completion first",
            )


# -- execution --------------------------------------------------------------


def _emit(reporter: Reporter, h: EnvHandle, type_: str, message: str, **data: Any) -> None:
    reporter.emit(Event(type=type_, env=h.name, message=message, data=data))


def _check_step_ids(h: EnvHandle, plan: Plan, flag: str, ids: tuple[str, ...]) -> None:
    """Refuse step ids that are not in ``plan``, naming the valid ones."""
    valid = [s.id for s in plan.steps]
    bad = [i for i in ids if i not in valid]
    if bad:
        close = difflib.get_close_matches(bad[0], valid, n=1)
        raise UsageError(
            f"{flag}: no step {bad[0]!r} in the plan of {h.name}"
            + (f" (did you mean {close[0]!r}?)" if close else ""),
            where=f"environment {h.name}",
            hint="step ids are: " + ", ".join(valid),
        )


def _start_or_resume(
    h: EnvHandle, operation: str, plan_file: Path | None, fresh: bool, continue_: bool, reporter: Reporter,
    assume_done: tuple[str, ...] = (),
) -> tuple[Plan, str] | None:
    """Return (plan, run_id) to execute, or None when there is nothing to do.

    Every argument is checked before the first journal record is written: a refused command
    leaves the journal as it was.
    """
    journal = h.journal
    # A given plan is checked first, whatever the journal holds: its digest (read_plan) and what it is for.
    given = (read_plan(plan_file), plan_file) if plan_file is not None else None
    if given is not None:
        check_identity(h, *given, operation)
        _take_acceptance(h, *given)
    current = latest(journal, operation)
    if current is not None and current.active:
        plan = Plan.model_validate(current.plan)
        if given is not None and given[0].digest != current.plan_digest:
            raise PlanError(
                f"run {current.run_id} of {h.name} is still in progress with another plan",
                where=str(plan_file),
                hint=f"resume it without --plan, or roll it back with `invoke rollback --env {h.name}`",
            )
        if current.status == "paused" and not continue_:
            raise PrerequisiteError(
                f"run {current.run_id} is paused after step {current.paused_after} for an operator",
                where=f"environment {h.name}",
                hint=f"to go on: `invoke {operation} --env {h.name} --continue`; "
                f"to go back: `invoke rollback --env {h.name}`",
            )
        _check_step_ids(h, plan, "--assume-done", assume_done)
        not_interrupted = [i for i in assume_done if current.step(i).status not in (STARTED, FAILED)]
        if not_interrupted:
            raise UsageError(
                f"--assume-done: step {not_interrupted[0]!r} of run {current.run_id} is "
                f"{current.step(not_interrupted[0]).status}, not interrupted",
                where=f"environment {h.name}",
                hint="--assume-done only accepts a step an interrupted run left started or failed; "
                "see `invoke status --env " + h.name + "`",
            )
        if current.status == "paused":
            journal.append({"type": "run.continued", "run": current.run_id, "by": who()})
        _emit(reporter, h, "run.resumed", f"resuming run {current.run_id} of {h.name} ({current.status})")
        return plan, current.run_id
    if continue_:
        raise UsageError(f"there is no paused run of {h.name} to continue", where=f"environment {h.name}")
    if current is not None and current.status == "completed" and not fresh:
        if given is not None:
            check_current(h, *given, operation)  # a reviewed plan must still be current
        _emit(reporter, h, "info", f"{h.name}: run {current.run_id} already completed at "
              f"{current.completed_at}; nothing to do (use --fresh to start another)")
        return None
    if operation == "migrate":
        check_requires(h)
    if given is None:
        if h.env.review == "required":
            raise PrerequisiteError(
                f"environment {h.name!r} runs only from a reviewed plan file",
                where=f"environments.{h.name}.review",
                hint=f"run `invoke plan --env {h.name}"
                + (" --decommission" if operation == "decommission" else "")
                + f"`, review plans/…, then `invoke {operation} --env {h.name} --plan plans/<file>.plan.json`",
            )
        plan = make_plan(h, operation)
        approval = None
    else:
        plan, source = given
        check_current(h, plan, source, operation)
        approval = {"plan_file": str(source), "plan_digest": plan.digest, "by": who()}
    missing = [s for s in plan.steps if not s.available]
    if missing:
        raise NotAvailable(
            "this plan has steps whose kind is not available yet in this version of the toolkit: "
            + ", ".join(sorted({s.kind for s in missing})),
            where=f"environment {h.name}",
            hint="nothing was changed; add those kinds to 'skip:' in migrate.yaml to run without them",
        )
    _check_step_ids(h, plan, "--assume-done", assume_done)
    if assume_done:
        # A new run has no interrupted step: marking one done would skip it without it ever running.
        raise UsageError(f"--assume-done: there is no interrupted run of {h.name} to resume",
                         where=f"environment {h.name}",
                         hint="--assume-done only accepts a step an interrupted run left started or failed")
    run_id = new_run_id()
    journal.append({"type": "run.started", "run": run_id, "operation": operation,
                    "plan": plan.model_dump(mode="json"), "by": who()})
    if approval:
        journal.append({"type": "approval", "run": run_id, **approval})
    _emit(reporter, h, "run.started", f"{operation} {h.name}: run {run_id}, {len(plan.steps)} steps",
          run=run_id, plan_digest=plan.digest)
    return plan, run_id


def execute(
    h: EnvHandle,
    reporter: Reporter,
    *,
    operation: str = "migrate",
    plan_file: Path | None = None,
    fresh: bool = False,
    continue_: bool = False,
    assume_done: tuple[str, ...] = (),
) -> RunState | None:
    with _locked(h, operation):
        if operation == "decommission":
            check_bake(h)
        started = _start_or_resume(h, operation, plan_file, fresh, continue_, reporter, assume_done)
        if started is None:
            return latest(h.journal, operation)
        plan, run_id = started
        return Executor(plan, h.journal, h.context(run_id), reporter).run(assume_done=assume_done)


def rollback(h: EnvHandle, reporter: Reporter, *, to: str | None = None,
             operation: str = "migrate") -> RunState:
    with _locked(h, f"rollback-{operation}"):
        run = latest(h.journal, operation)
        if run is None:
            raise UsageError(f"{h.name} has no {operation} run to roll back", where=f"environment {h.name}")
        decom = latest(h.journal, "decommission")
        if operation == "migrate" and decom is not None and decom.status != "rolled_back":
            raise PrerequisiteError(
                f"the old cluster of {h.name} is being or has been decommissioned (run {decom.run_id}, "
                f"{decom.status}); traffic cannot go back to it",
                where=f"environment {h.name}",
                hint="roll back the decommission first (`invoke rollback --env ENV --decommission`) if it "
                "has not destroyed the old cluster yet",
            )
        if run.status == "rolled_back":
            raise UsageError(f"run {run.run_id} of {h.name} is already rolled back")
        plan = Plan.model_validate(run.plan)
        if to is not None:
            _check_step_ids(h, plan, "--to", (to,))
        return Executor(plan, h.journal, h.context(run.run_id), reporter).rollback(to=to)


def check_bake(h: EnvHandle) -> None:
    run = latest(h.journal, "migrate")
    if run is None or run.status != "completed" or run.completed_at is None:
        state = "has never run" if run is None else f"is {run.status}"
        raise PrerequisiteError(
            f"decommission needs a completed migration of {h.name}; its migration {state}",
            where=f"environment {h.name}", hint=f"finish `invoke migrate --env {h.name}` first")
    done = datetime.strptime(run.completed_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    left = done + h.env.bake - time.time()
    if left > 0:
        raise PrerequisiteError(
            f"the bake time of {h.env.bake:g}s has not passed since the cutover completed "
            f"({left:.0f}s left)", where=f"environments.{h.name}.bake",
            hint="wait, then run the same command again")


def status(h: EnvHandle) -> dict[str, Any]:
    out: dict[str, Any] = {"env": h.name, "lock": None, "runs": {}}
    holder = h.lock.holder()
    if holder:
        out["lock"] = holder.__dict__
    for operation in ("migrate", "decommission"):
        run = latest(h.journal, operation)
        if run is None:
            continue
        plan = Plan.model_validate(run.plan)
        out["runs"][operation] = {
            "run": run.run_id, "status": run.status, "started_at": run.started_at,
            "completed_at": run.completed_at, "paused_after": run.paused_after, "error": run.error,
            "approvals": run.approvals,
            "steps": [{"id": s.id, "title": s.title, "status": run.step(s.id).status} for s in plan.steps],
        }
    return out


def force_unlock(h: EnvHandle, lock_id: str) -> None:
    h.lock.force_unlock(lock_id)
