"""The Invoke tasks, shared by the repo's tasks.py and the installed ``migrate`` command.

Tasks stay thin: parse arguments, call ``migrate.run.api``, render the result,
and turn MigrateError into a short message and a documented exit code.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from invoke.collection import Collection
from invoke.context import Context as InvokeContext
from invoke.exceptions import Exit, ParseError
from invoke.program import Program
from invoke.tasks import task
from rich.console import Console

from migrate import __version__
from migrate.config import DEFAULT_CONFIG, LoadedConfig, load_config
from migrate.errors import MigrateError, ProviderError, UsageError
from migrate.run import api
from migrate.run.events import Reporter
from migrate.run.journal import RunState
from migrate.run.progress import JsonReporter, RichReporter
from migrate.traffic.gates import fmt_ms

F = TypeVar("F", bound=Callable[..., Any])
_err = Console(stderr=True, highlight=False)

CONFIG_HELP = f"path to the configuration (default: {DEFAULT_CONFIG})"
JSON_HELP = "print one JSON event per line instead of progress (for CI logs)"
ACCEPT_HELP = ("decommission: accept that destroying the old cluster deletes this claim's data (NAMESPACE/PVC, "
               "globs allowed, repeatable); it is recorded in the plan")


def _operator_errors(fn: F) -> F:
    """MigrateError -> one short paragraph on stderr and its exit code; anything else is a bug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MigrateError as e:
            if kwargs.get("json_"):
                print(json.dumps({"type": "error", **e.to_dict()}), flush=True)
            _err.print(f"[bold red]error:[/bold red] {_escape(str(e))}", soft_wrap=True)
            raise Exit(code=e.exit_code) from None
        except KeyboardInterrupt:
            _err.print("[yellow]interrupted[/yellow]: the journal is up to date; run the same command to resume")
            raise Exit(code=130) from None
        except Exit:
            raise
        except Exception as e:  # a bug: keep the traceback out of the operator's face but on disk
            log = Path(".migrate") / "last-error.log"
            try:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(traceback.format_exc())
                where = f"; details in {log}"
            except OSError:
                where = ""
            _err.print(f"[bold red]internal error[/bold red] ({type(e).__name__}): {_escape(str(e))}{where}")
            raise Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def _reporter(json_: bool) -> Reporter:
    return JsonReporter() if json_ else RichReporter()


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _handle(config: str, env: str | None, inject_fault: str | None = None) -> api.EnvHandle:
    if not env:
        raise UsageError("--env is required", hint="e.g. --env dev; `invoke status` lists the environments")
    loaded = load_config(config)
    h = api.open_env(loaded, env)  # an unknown environment is refused before anything else
    _sandbox(loaded)
    if inject_fault is not None:
        return api.open_env(_with_fault(loaded, env, inject_fault), env)
    if loaded.config.sandbox.enabled and all(k.name != FAULT_HOOK for k in h.env.hooks):
        # The fault hook lives only in the active run's plan: resume and rollback need it too.
        planned = api.planned_hook(h, FAULT_HOOK)
        if planned is not None:
            return api.open_env(loaded.with_hook(env, {
                "name": FAULT_HOOK, "before": "shift-traffic", "idempotent": True,
                "run": planned["run"], "undo": planned["undo"]}), env)
    return h


FAULT_HOOK = "inject-fault"


def _with_fault(loaded: LoadedConfig, env: str, status_text: str) -> LoadedConfig:
    """Add a hook that makes the new cluster answer ``status`` just before the first traffic shift.

    A hook, not a hidden switch: the fault shows in the plan and the journal; resume and rollback
    rebuild it from the active run's plan (see _handle).
    """
    if not loaded.config.sandbox.enabled:
        raise UsageError("--inject-fault works only on the embedded sandbox", where=str(loaded.path.name),
                         hint="on a real cloud, break the new cluster yourself, or use a hook (docs/configuration.md)")
    status = int(status_text) if status_text.isdigit() else 0
    if not 500 <= status <= 599:
        raise UsageError(f"--inject-fault {status_text}: give an HTTP 5xx status, e.g. 503")
    fault = [sys.executable, "-m", "migrate.sandbox", "--state-dir",
             str(loaded.resolve(loaded.config.sandbox.state_dir)), "fault"]
    return loaded.with_hook(env, {
        "name": FAULT_HOOK, "before": "shift-traffic", "idempotent": True,
        "run": [*fault, "http", "--cluster", loaded.env(env).clusters.new.name, "--status", str(status)],
        "undo": [*fault, "--clear"]})


def _sandbox(loaded: LoadedConfig) -> None:
    """When the config points at the embedded sandbox, start it if needed and point the SDKs at it.

    Only the standard SDK variables are set (AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST, HTTP_PROXY, ...):
    past this point nothing treats the sandbox as a special case.
    """
    if not loaded.config.sandbox.enabled:
        return
    from migrate.sandbox import SandboxError, ensure_running, env_vars, running

    state_dir = loaded.resolve(loaded.config.sandbox.state_dir)
    try:
        if running(state_dir) is None:
            _err.print(f"[dim]starting the embedded sandbox ({state_dir})…[/dim]")
        endpoints = ensure_running(state_dir)
    except SandboxError as e:
        raise ProviderError(f"the embedded sandbox could not be started: {e}", where=str(state_dir),
                            hint="see its log there; `invoke sandbox.down` then retry", retryable=True) from e
    os.environ.update(env_vars(endpoints))


def _finish(run: RunState | None, json_: bool) -> None:
    if run is None or json_:
        return
    out = Console(highlight=False)
    if run.status == "completed":
        report = [st.outputs for st in run.steps.values() if st.outputs.get("path")]
        out.print(f"[bold green]{run.operation} completed[/bold green] (run {run.run_id})")
        if report:
            last = report[-1]
            out.print(f"report: {_show(Path(last['path']))}" + (f" (and {_show(Path(last['html']))})"
                                                                  if last.get("html") else ""))
            probe = last.get("probe")
            if probe and probe.get("requests"):
                out.print(f"probe: {probe['requests']} requests, {probe['failures']} failed, "
                          f"p50 {fmt_ms(probe['p50_ms'])} ms, p95 {fmt_ms(probe['p95_ms'])} ms")
            writes = last.get("writes")
            if writes:
                style = "red" if writes["lost"] or writes["unreadable"] else "green"
                out.print(f"[{style}]writes: {writes['acknowledged']} acknowledged, {writes['lost']} lost"
                          + (f", {writes['unreadable']} unreadable" if writes["unreadable"] else "")
                          + f"[/{style}]")
            if last.get("final_snapshots"):
                out.print(f"final snapshots of the old volumes: {last['final_snapshots']} (listed in the report)")
            for ref, secs in (last.get("freeze_windows_s") or {}).items():
                if secs is not None:
                    out.print(f"freeze window {ref}: {secs:.1f} s")
    elif run.status == "paused":
        out.print(f"[yellow]paused[/yellow] after {run.paused_after}")


@task(positional=[], help={
    "env": "environment to plan (from migrate.yaml)",
    "config": CONFIG_HELP,
    "json": JSON_HELP,
    "decommission": "plan the decommission of the old cluster instead of the migration",
    "accept-data-loss": ACCEPT_HELP,
}, iterable=["accept_data_loss"])
@_operator_errors
def plan(c: InvokeContext, env: str | None = None, config: str = DEFAULT_CONFIG, json_: bool = False,
         decommission: bool = False, accept_data_loss: list[str] | None = None) -> None:
    """Write a reviewable plan (plans/<env>-<UTC time>.plan.json and .plan.md). Changes nothing else.

    The same as `migrate --env ENV --dry-run`. Review the Markdown, then execute
    exactly that plan with `invoke migrate --env ENV --plan plans/<file>.plan.json`.
    """
    if accept_data_loss and not decommission:
        raise UsageError("--accept-data-loss only applies to a decommission", hint="add --decommission")
    h = _handle(config, env)
    h.accept_data_loss = tuple(accept_data_loss or ())
    p, json_path, md_path = api.dry_run(h, "decommission" if decommission else "migrate")
    if json_:
        print(json.dumps({"type": "plan.written", "env": env, "json": str(json_path), "markdown": str(md_path),
                          "digest": p.digest, "steps": [s.id for s in p.steps]}))
        return
    out = Console(highlight=False)
    for i, s in enumerate(p.steps, start=1):
        mark = "" if s.available else "  [yellow](not available yet)[/yellow]"
        out.print(f"  {i:2d}. {s.title}{mark}")
    out.print(f"plan written: {_show(json_path)}\n              {_show(md_path)}\ndigest: {p.digest}")


@task(
    positional=[],
    help={
        "env": "environment to migrate (from migrate.yaml)",
        "plan": "execute this reviewed plan file (required where review: required)",
        "dry-run": "only plan: write plans/<env>-<ts>.plan.{json,md} and change nothing",
        "continue": "go on with a run that paused for an operator (pause_after)",
        "fresh": "start a new run even though the last one completed",
        "assume-done": "mark an interrupted step as done after checking it by hand (repeatable)",
        "inject-fault": "sandbox only: make the new cluster answer this 5xx status from just before the first "
        "traffic shift, to watch the gate roll traffic back (the fault is a hook step in the plan)",
        "force-unlock": "release the environment's run lock with this lock ID, then exit",
        "config": CONFIG_HELP,
        "json": JSON_HELP,
    },
    iterable=["assume_done"],
)
@_operator_errors
def migrate(
    c: InvokeContext,
    env: str | None = None,
    plan: str | None = None,
    dry_run: bool = False,
    continue_: bool = False,
    fresh: bool = False,
    assume_done: list[str] | None = None,
    force_unlock: str | None = None,
    inject_fault: str | None = None,
    config: str = DEFAULT_CONFIG,
    json_: bool = False,
) -> None:
    """Migrate an environment to its new cluster, or resume the run that was interrupted.

    Runs every step of the plan in order and journals each one, so running the
    same command again after a crash resumes where it stopped without repeating
    any side effect. Exit codes: 0 done or paused, 2 usage/config, 3 plan refused
    or prerequisite missing, 4 state/journal, 5 lock held, 6 cloud/provider,
    7 validation or gate failed, 8 step failed, 9 step not available yet.
    """
    if inject_fault is not None and plan:
        raise UsageError("--inject-fault cannot change a reviewed plan", hint="run it without --plan")
    h = _handle(config, env, inject_fault)
    if force_unlock:
        api.force_unlock(h, force_unlock)
        Console().print(f"released the run lock of {env}")
        return
    if dry_run:
        _, json_path, md_path = api.dry_run(h)
        Console(highlight=False).print(f"dry run: nothing changed. plan: {_show(json_path)}\n"
                                       f"                           {_show(md_path)}")
        return
    run = api.execute(h, _reporter(json_), plan_file=Path(plan) if plan else None, fresh=fresh,
                      continue_=continue_, assume_done=tuple(assume_done or ()))
    _finish(run, json_)


@task(positional=[], help={"env": "one environment (default: all)", "config": CONFIG_HELP, "json": "print JSON"})
@_operator_errors
def status(c: InvokeContext, env: str | None = None, config: str = DEFAULT_CONFIG, json_: bool = False) -> None:
    """Show each environment's lock holder and the state of its latest runs, step by step."""
    loaded = load_config(config)
    names = [env] if env else list(loaded.config.environments)
    result = [api.status(api.open_env(loaded, n)) for n in names]
    if json_:
        print(json.dumps(result, indent=2, default=str))
        return
    out = Console(highlight=False)
    for s in result:
        runs = s["runs"]
        line = f"[bold]{s['env']}[/bold]: " + (", ".join(f"{op} {r['status']} (run {r['run']})"
                                                         for op, r in runs.items()) or "never run")
        out.print(line)
        if s["lock"]:
            out.print(f"  locked by {s['lock']['Who']} since {s['lock']['Created']} (ID {s['lock']['ID']})")
        for op, r in runs.items():
            if env:
                for st in r["steps"]:
                    out.print(f"  {op:>12} {st['status']:<11} {st['id']}  {st['title']}")
            if r["error"]:
                out.print(f"  last error: {_escape(r['error'])}")


@task(positional=[], help={
    "env": "environment to roll back",
    "to": "undo completed steps down to and including this step id (default: all)",
    "decommission": "roll back the decommission run instead of the migration",
    "config": CONFIG_HELP,
    "json": JSON_HELP,
})
@_operator_errors
def rollback(c: InvokeContext, env: str | None = None, to: str | None = None, decommission: bool = False,
             config: str = DEFAULT_CONFIG, json_: bool = False) -> None:
    """Undo the completed steps of the latest run, newest first (traffic back to the old cluster first)."""
    h = _handle(config, env)
    api.rollback(h, _reporter(json_), to=to, operation="decommission" if decommission else "migrate")


@task(positional=[], help={
    "env": "environment whose old cluster to decommission",
    "plan": "execute this reviewed decommission plan file",
    "dry-run": "only plan the decommission",
    "accept-data-loss": ACCEPT_HELP,
    "config": CONFIG_HELP,
    "json": JSON_HELP,
}, iterable=["accept_data_loss"])
@_operator_errors
def decommission(c: InvokeContext, env: str | None = None, plan: str | None = None, dry_run: bool = False,
                 accept_data_loss: list[str] | None = None, config: str = DEFAULT_CONFIG,
                 json_: bool = False) -> None:
    """After the cutover and its bake time: snapshot the old volumes whose data was not carried, remove the
    gateway, hand over shared state, destroy the old cluster.

    Refused while a Delete volume of the old cluster holds data the new cluster lacks (a `fresh` claim, or one
    no rule matches), unless --accept-data-loss names it (NAMESPACE/PVC, globs allowed, repeatable). A final
    snapshot of each such volume is kept and listed in the report either way.
    """
    h = _handle(config, env)
    h.accept_data_loss = tuple(accept_data_loss or ())
    if dry_run:
        _, json_path, md_path = api.dry_run(h, "decommission")
        Console(highlight=False).print(f"dry run: nothing changed. plan: {_show(json_path)}\n"
                                       f"                           {_show(md_path)}")
        return
    run = api.execute(h, _reporter(json_), operation="decommission", plan_file=Path(plan) if plan else None)
    _finish(run, json_)


def _namespace() -> Collection:
    from migrate.sandbox.tasks import namespace as sandbox_tasks

    return Collection(plan, migrate, status, rollback, decommission, sandbox_tasks)


ns = _namespace()


@contextmanager
def _argument_errors() -> Iterator[None]:
    """invoke's parser errors -> exit 2 (bad arguments) with invoke's message, not 1 (a bug)."""
    try:
        yield
    except ParseError as e:
        task_name = getattr(e.context, "name", None)
        hint = f"`migrate --help {task_name}` lists its flags" if task_name else "`migrate --list` lists the tasks"
        raise Exit(f"error: {e}\n  -> {hint}", code=UsageError.exit_code) from None


class MigrateProgram(Program):
    """The installed ``migrate`` command: invoke's Program with argument errors exiting 2.

    The ``invoke`` binary itself (``invoke migrate ...`` with tasks.py) is invoke's own Program, which
    exits 1 on an argument it cannot parse; only this one can be changed (docs/operator-guide.md).
    """

    def parse_core(self, argv: list[str] | None) -> None:
        with _argument_errors():
            super().parse_core(argv)

    def parse_tasks(self) -> None:
        with _argument_errors():
            super().parse_tasks()

    def parse_cleanup(self) -> None:
        with _argument_errors():
            super().parse_cleanup()


program = MigrateProgram(namespace=ns, version=__version__, name="migrate", binary="migrate")


def main() -> None:
    program.run(sys.argv)
