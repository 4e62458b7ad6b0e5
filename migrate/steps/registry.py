"""Which step kinds are implemented. A kind that is not here is shown as not available yet."""

from __future__ import annotations

from migrate.plan.model import Step
from migrate.steps import writes
from migrate.steps.base import Context, StepKind
from migrate.steps.cluster import ProvisionClusterStep, WaitClusterReadyStep, WriteKubeconfigStep
from migrate.steps.hook import HookStep
from migrate.steps.protect import ProtectVolumesStep
from migrate.steps.replay import ReplayWorkloadsStep, WaitWorkloadsReadyStep
from migrate.steps.report import WriteReportStep
from migrate.steps.terraform import (
    DestroyOldClusterStep,
    DetachClusterStep,
    DuplicateWorkspaceStep,
    HandoverSharedStep,
    RetireWorkspaceStep,
)
from migrate.steps.traffic import OpenGatewayStep, RemoveGatewayStep, ShiftTrafficStep
from migrate.steps.validate import ValidateStep
from migrate.steps.volumes import CutVolumesStep, SnapshotVolumesStep

_KINDS: dict[str, StepKind] = {
    k.kind: k
    for k in (
        HookStep(), WriteReportStep(), ProvisionClusterStep(), WaitClusterReadyStep(), WriteKubeconfigStep(),
        DuplicateWorkspaceStep(), DetachClusterStep(), HandoverSharedStep(), DestroyOldClusterStep(),
        RetireWorkspaceStep(), ReplayWorkloadsStep(), WaitWorkloadsReadyStep(), OpenGatewayStep(),
        RemoveGatewayStep(), ShiftTrafficStep(), ValidateStep(), SnapshotVolumesStep(), CutVolumesStep(),
        ProtectVolumesStep(),
    )
}


def before_step(step: Step, ctx: Context) -> None:
    """What runs beside the steps: the write probe, from the warm-up snapshot to the report."""
    writes.before_step(step, ctx)


def run_ended(ctx: Context) -> None:
    writes.stop(ctx)


def get(kind: str) -> StepKind | None:
    return _KINDS.get(kind)


def available() -> frozenset[str]:
    return frozenset(_KINDS)


def all_kinds() -> dict[str, StepKind]:
    return dict(_KINDS)
