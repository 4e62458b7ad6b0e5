"""The contract every step kind implements: facts / describe / is_done / apply / rollback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from migrate.config import Environment, LoadedConfig
from migrate.plan.model import Plan, Step


@dataclass
class Context:
    """What a step may use while it runs. ``outputs`` holds earlier steps' journaled outputs."""

    loaded: LoadedConfig
    env_name: str
    env: Environment
    workdir: Path  # <state_dir>/<env>: journal, kubeconfigs, backups
    run_id: str = ""
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: Callable[[], list[dict[str, Any]]] = list
    log: Callable[[str], None] = lambda _msg: None
    plan: Plan | None = None
    # Decommission: NAMESPACE/PVC globs whose data the operator accepts to lose (--accept-data-loss).
    accept_data_loss: tuple[str, ...] = ()
    # Reads made once for one planning pass and shared by its parts: the dry run's review writes the very
    # export of the old cluster that the plan's facts hashed (one list of 10,000 objects, not two).
    reads: dict[str, Any] = field(default_factory=dict)

    def step_of_kind(self, kind: str) -> Step | None:
        """The plan's first step of a kind (e.g. to read the reviewed cluster spec), if any."""
        if self.plan is None:
            return None
        return next((s for s in self.plan.steps if s.kind == kind), None)

    def outputs_of_kind(self, kind: str) -> dict[str, Any]:
        step = self.step_of_kind(kind)
        return self.outputs.get(step.id, {}) if step else {}


class StepKind(Protocol):
    kind: ClassVar[str]

    def facts(self, ctx: Context) -> dict[str, Any]:
        """Read-only inputs this kind contributes to the plan's fingerprint."""
        ...

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        """The outputs if the step's effect already exists, else None."""
        ...

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        """Make the effect happen; return outputs to journal (no secrets)."""
        ...

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        """Undo the effect. Must be safe to call twice."""
        ...
