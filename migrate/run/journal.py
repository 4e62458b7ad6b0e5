"""The run journal: append-only JSON lines, one record per transition, fsynced per record.

A step's undo is a ``step.rolled_back`` record, whether ``rollback`` undid it or a later step's failure did
(``automatic: true`` and ``cause``: a failed gate sends traffic back to the old cluster, which undoes the
earlier weight steps). Either way the step is no longer done, and a resume runs it again.

A process killed mid-write leaves at most a torn last line, which was never
acknowledged; it is cut off before the next append. A bad line anywhere else
is corruption and is refused.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migrate.errors import JournalError
from migrate.fileio import append_durable
from migrate.redact import redact

# Statuses of a step inside one run.
PENDING, STARTED, DONE, FAILED, ROLLED_BACK = "pending", "started", "done", "failed", "rolled_back"


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def who() -> str:
    user = os.environ.get("USER") or os.environ.get("LOGNAME")
    if not user:
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        try:
            data = self.path.read_bytes()
        except OSError as e:
            raise JournalError(f"cannot read the journal: {e}", where=str(self.path)) from e
        lines = data.split(b"\n")
        torn = lines.pop()  # after the last newline: empty, or a record cut by a crash
        out = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or "type" not in rec:
                    raise ValueError("not a journal record")
            except ValueError as e:
                raise JournalError(
                    f"line {n} is not a valid journal record ({e})",
                    where=str(self.path),
                    hint="the journal was edited or damaged; restore it from a backup, "
                    "or move it aside to forget this environment's runs",
                ) from None
            out.append(rec)
        del torn
        return out

    def _repair_tail(self) -> None:
        """Cut a torn last line (a record whose write never completed)."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
                f.flush()
                os.fsync(f.fileno())

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._repair_tail()
        rec = {"ts": utcnow(), **redact(record)}
        append_durable(self.path, (json.dumps(rec, sort_keys=True, default=str) + "\n").encode())
        return rec


@dataclass
class StepState:
    status: str = PENDING
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    # Set when a later step's failure took this one back (``step.rolled_back`` with ``automatic``): the step
    # whose automatic rollback undid it. A resume runs a rolled-back step again.
    undone_by: str | None = None


@dataclass
class RunState:
    """One run, folded from its journal records."""

    run_id: str
    operation: str
    plan: dict[str, Any]
    started_at: str
    status: str = "running"  # running, paused, failed, completed, rolling_back, rolled_back
    steps: dict[str, StepState] = field(default_factory=dict)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    paused_after: str | None = None
    completed_at: str | None = None
    error: str | None = None

    @property
    def plan_digest(self) -> str:
        return str(self.plan.get("digest", ""))

    @property
    def active(self) -> bool:
        """A run that can still be resumed or continued."""
        return self.status in ("running", "paused", "failed", "rolling_back", "partly_rolled_back")

    def step(self, step_id: str) -> StepState:
        return self.steps.setdefault(step_id, StepState())


def fold(records: list[dict[str, Any]]) -> dict[str, RunState]:
    """Replay journal records into run states, oldest first (dict keeps order)."""
    runs: dict[str, RunState] = {}
    for rec in records:
        t, run_id = rec["type"], str(rec.get("run", ""))
        if t == "run.started":
            runs[run_id] = RunState(run_id=run_id, operation=rec.get("operation", "migrate"),
                                    plan=rec["plan"], started_at=rec["ts"])
            continue
        run = runs.get(run_id) if run_id else None
        if run is None:
            continue
        if t == "approval":
            run.approvals.append({k: v for k, v in rec.items() if k not in ("type", "run")})
        elif t == "step.started":
            st = run.step(rec["step"])
            st.status, st.started_at, st.error, st.undone_by = STARTED, rec["ts"], None, None
            run.status = "running"
        elif t == "step.done":
            st = run.step(rec["step"])
            st.status, st.finished_at, st.outputs = DONE, rec["ts"], rec.get("outputs", {})
        elif t == "step.failed":
            st = run.step(rec["step"])
            st.status, st.finished_at, st.error = FAILED, rec["ts"], rec.get("error")
            run.status, run.error = "failed", rec.get("error")
        elif t == "step.rolled_back":
            st = run.step(rec["step"])
            st.status = ROLLED_BACK
            if rec.get("automatic"):
                st.undone_by = rec.get("cause")
        elif t == "run.paused":
            run.status, run.paused_after = "paused", rec.get("step")
        elif t == "run.continued":
            run.status, run.paused_after = "running", None
        elif t == "run.completed":
            run.status, run.completed_at = "completed", rec["ts"]
        elif t == "rollback.started":
            run.status = "rolling_back"
        elif t == "rollback.completed":
            run.status = "rolled_back" if rec.get("complete", True) else "partly_rolled_back"
    return runs


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


def iter_runs(journal: Journal, operation: str | None = None) -> Iterator[RunState]:
    for run in fold(journal.records()).values():
        if operation is None or run.operation == operation:
            yield run


def latest(journal: Journal, operation: str) -> RunState | None:
    last = None
    for run in iter_runs(journal, operation):
        last = run
    return last
