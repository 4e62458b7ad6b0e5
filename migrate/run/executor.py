"""Runs a plan's steps in order, journaling each transition; resumes and rolls back."""

from __future__ import annotations

import time
from collections.abc import Callable

from migrate.errors import MigrateError, NotAvailable, StepFailed
from migrate.plan.model import Plan, Step
from migrate.run import failpoints
from migrate.run.events import Event, Reporter
from migrate.run.journal import DONE, FAILED, ROLLED_BACK, STARTED, Journal, RunState, fold
from migrate.steps import registry
from migrate.steps.base import Context, StepKind


class Executor:
    def __init__(self, plan: Plan, journal: Journal, ctx: Context, reporter: Reporter) -> None:
        self.plan = plan
        self.journal = journal
        self.ctx = ctx
        self.reporter = reporter
        self.run_id = ctx.run_id
        ctx.plan = plan
        # Long steps report sub-step progress through the same reporter.
        ctx.log = lambda msg: self._emit("step.progress", msg)

    # -- helpers -----------------------------------------------------------

    def state(self) -> RunState:
        return fold(self.journal.records())[self.run_id]

    def _record(self, type_: str, step: Step | None = None, **data: object) -> None:
        rec = {"type": type_, "run": self.run_id, **({"step": step.id} if step else {}), **data}
        self.journal.append(rec)

    def _emit(self, type_: str, message: str, step: Step | None = None, **data: object) -> None:
        self.reporter.emit(Event(type=type_, env=self.plan.env, message=message,
                                 step=step.id if step else None, data=dict(data)))

    def _impl(self, step: Step) -> StepKind:
        impl = registry.get(step.kind)
        if impl is None or not step.available:
            raise NotAvailable(
                f"step kind {step.kind!r} is not available yet in this version of the toolkit",
                where=f"step {step.id}",
                hint="nothing after this step has run; add the kind to 'skip:' to plan without it",
            )
        return impl

    def _refresh_outputs(self, state: RunState) -> None:
        self.ctx.outputs = {sid: st.outputs for sid, st in state.steps.items() if st.status == DONE}
        self.ctx.records = self.journal.records

    # -- forward -----------------------------------------------------------

    def run(self, *, assume_done: tuple[str, ...] = ()) -> RunState:
        try:
            return self._run(assume_done)
        finally:
            registry.run_ended(self.ctx)  # background work of the steps (the write probe) ends with the run

    def _run(self, assume_done: tuple[str, ...]) -> RunState:
        state = self.state()
        total = len(self.plan.steps)
        for i, step in enumerate(self.plan.steps, start=1):
            st = state.step(step.id)
            label = f"[{i}/{total}] {step.title}"
            if st.status == DONE:
                impl_done = registry.get(step.kind)
                if getattr(impl_done, "local_effect", False) and impl_done is not None:
                    # Its effect is a file on the machine that ran it; a resume elsewhere re-creates it.
                    self._refresh_outputs(state)
                    if impl_done.is_done(step, self.ctx) is None:
                        impl_done.apply(step, self.ctx)
                        self._emit("step.progress", f"{label}: re-created on this machine", step)
                self._emit("step.skipped", f"{label}: done in an earlier attempt", step)
                continue
            if step.id in assume_done:
                self._record("step.done", step, outputs={"assumed_done_by_operator": True})
                self._emit("step.done", f"{label}: marked done by the operator", step)
                continue
            self._refresh_outputs(state)
            # Outside the try: a guard that refuses writes nothing, not even a failure record.
            self._guard(step, state)
            try:
                impl = self._impl(step)
                interrupted = st.status in (STARTED, FAILED)
                existing = impl.is_done(step, self.ctx)
                if existing is not None:
                    self._record("step.done", step, outputs={**existing, "found_done": True})
                    self._emit("step.done", f"{label}: already in place", step, found_done=True)
                    failpoints.hit("after-done", step)
                    continue
                if interrupted and st.status == STARTED and not _can_retry(impl, step, self.ctx):
                    raise StepFailed(
                        f"step {step.id} was interrupted and its effect cannot be verified",
                        where=f"step {step.id}",
                        hint=f"check by hand; then resume with --assume-done {step.id} if it took effect, "
                        "or give the hook a 'check' command (or 'idempotent: true') to let it re-run",
                    )
                self._record("step.started", step)
                self._emit("step.started", label, step, index=i, total=total)
                failpoints.hit("after-start", step)
                registry.before_step(step, self.ctx)
                t0 = time.monotonic()
                outputs = impl.apply(step, self.ctx)
                self._record("step.done", step, outputs=outputs)
                self._emit("step.done", label, step, seconds=round(time.monotonic() - t0, 3),
                           outputs=outputs)
                failpoints.hit("after-done", step)
            except MigrateError as e:
                self._record("step.failed", step, error=str(e), error_type=type(e).__name__,
                             retryable=e.retryable)
                self._emit("step.failed", f"{label}: {e.what}", step, error=e.to_dict())
                self._record_reverted(step, e)
                raise
            state = self.state()
            if step.pause_after and i < total:
                self._record("run.paused", step)
                self._emit("run.paused", f"paused after {step.id}; continue with "
                           f"`invoke migrate --env {self.plan.env} --continue`", step)
                return self.state()
        self._record("run.completed")
        self._emit("run.completed", f"{self.plan.env}: all {total} steps done")
        return self.state()

    def _guard(self, step: Step, state: RunState) -> None:
        """Let each earlier done step whose effect later steps build on check it still holds (the copied
        workspace is still this run's copy): a resume must not go on over a state swapped in the meantime."""
        for earlier in self.plan.steps:
            if earlier.id == step.id:
                return
            impl = registry.get(earlier.kind)
            guard: Callable[[Step, Context, dict[str, object]], None] | None = getattr(impl, "guard_later", None)
            st = state.step(earlier.id)
            if guard is not None and st.status == DONE:
                guard(earlier, self.ctx, st.outputs)

    def _record_reverted(self, failed: Step, error: MigrateError) -> None:
        """Journal the earlier steps a failure took back (a failed gate's automatic rollback to the old
        cluster undoes the earlier weight steps): the same ``step.rolled_back`` record as ``rollback``, marked
        automatic, so a resume treats them as pending and runs them again, in order."""
        impl = registry.get(failed.kind)
        reverted: Callable[[Step, Context, MigrateError], list[str]] | None = getattr(
            impl, "reverted_by_failure", None)
        if reverted is None:
            return
        try:
            ids = set(reverted(failed, self.ctx, error))
        except MigrateError as e:  # never hide the failure itself; the step's own guard catches it on resume
            self._emit("step.progress", f"could not tell which earlier steps {failed.id} undid: {e.what}", failed)
            return
        state = self.state()
        for step in self.plan.steps:
            if step.id == failed.id:
                break
            if step.id in ids and state.step(step.id).status == DONE:
                self._record("step.rolled_back", step, automatic=True, cause=failed.id, reason=error.what)
                self._emit("step.rolled_back", f"no longer in effect after {failed.id} failed: {step.title}; "
                           "the next run does it again", step, automatic=True, cause=failed.id)

    # -- backward ----------------------------------------------------------

    def rollback(self, *, to: str | None = None) -> RunState:
        """Undo done steps in reverse, down to and including ``to`` (all when None)."""
        state = self.state()
        ids = [s.id for s in self.plan.steps]
        if to is not None and to not in ids:
            raise StepFailed(f"no step {to!r} in this run", hint=f"steps are: {', '.join(ids)}")
        self._record("rollback.started", to=to)
        self._emit("rollback.started", f"rolling back {self.plan.env}" + (f" to {to}" if to else ""))
        self._refresh_outputs(state)
        stop_at = ids.index(to) if to else 0
        for step in reversed(self.plan.steps[stop_at:]):
            st = state.step(step.id)
            if st.status not in (DONE, STARTED, FAILED) or st.status == ROLLED_BACK:
                continue
            impl = registry.get(step.kind)
            if impl is not None:
                try:
                    impl.rollback(step, self.ctx, st.outputs)
                except MigrateError as e:
                    self._emit("step.failed", f"undo {step.id}: {e.what}", step, error=e.to_dict())
                    raise
            self._record("step.rolled_back", step)
            self._emit("step.rolled_back", f"undone: {step.title}", step)
        complete = stop_at == 0
        self._record("rollback.completed", complete=complete)
        self._emit("rollback.completed", f"{self.plan.env}: rollback {'complete' if complete else 'partial'}")
        return self.state()


def _can_retry(impl: StepKind, step: Step, ctx: Context) -> bool:
    check: Callable[[Step, Context], bool] | None = getattr(impl, "can_retry", None)
    return True if check is None else check(step, ctx)
