"""The contract every step kind implements: facts / describe / is_done / apply / rollback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from migrate.config import Environment, LoadedConfig
from migrate.plan.model import Step


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
