"""The volume cut's record, `volumes/cut.json`: read by the cut and by the replay (which must leave the
workloads already cut to the cut)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from migrate.errors import StepFailed
from migrate.steps.base import Context

DONE = "done"


def record_path(ctx: Context) -> Path:
    return ctx.workdir / "volumes" / "cut.json"


def read_record(ctx: Context) -> dict[str, Any]:
    try:
        doc = json.loads(record_path(ctx).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise StepFailed(f"cannot read the volume cut's record: {e}", where=str(record_path(ctx)),
                         hint="the file is damaged; restore it from the journal's outputs or roll back by hand") from e
    return doc if isinstance(doc, dict) else {}


def cut_done(ctx: Context) -> set[str]:
    """The workloads whose cut has started: the replay must leave them to the cut from then on."""
    return set(read_record(ctx).get("workloads") or {})
