"""Plan files in plans/: written atomically, read back with digest and freshness checks."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from migrate.errors import PlanError
from migrate.fileio import atomic_write
from migrate.plan.model import FORMAT_VERSION, Plan
from migrate.plan.render import render_markdown


def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, text, mode=0o644)  # plans are for review: readable, and they hold no secrets


def write_plan(plan: Plan, plans_dir: Path) -> tuple[Path, Path]:
    """Write ``<env>-<UTC ts>.plan.json`` and ``.plan.md``; both or neither."""
    stamp = plan.created_at.replace("-", "").replace(":", "").split(".")[0] + "Z"
    prefix = "decommission-" if plan.operation == "decommission" else ""
    base = plans_dir / f"{prefix}{plan.env}-{stamp}"
    json_path, md_path = Path(f"{base}.plan.json"), Path(f"{base}.plan.md")
    try:
        plans_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(json_path, json.dumps(plan.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        try:
            _atomic_write(md_path, render_markdown(plan))
        except BaseException:
            json_path.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise PlanError(
            f"cannot write the plan: {e.strerror or e}",
            where=str(plans_dir),
            hint="make the plans directory writable, or set plans_dir in migrate.yaml",
        ) from None
    return json_path, md_path


def read_plan(path: Path) -> Plan:
    """Load a plan file and verify its digest. Freshness is checked by the caller."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError("plan file not found", where=str(path),
                        hint="generate one with `invoke plan --env ENV`") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise PlanError(f"plan file is not valid JSON ({e})", where=str(path),
                        hint="regenerate it with `invoke plan --env ENV`") from None
    if not isinstance(data, dict):
        raise PlanError("plan file is not a plan object", where=str(path))
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanError(f"plan format version {version!r} is not supported (expected {FORMAT_VERSION})",
                        where=str(path), hint="regenerate the plan with this version of the toolkit")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PlanError(f"plan file is malformed at {loc}: {first['msg']}", where=str(path),
                        hint="regenerate it with `invoke plan --env ENV`") from None
    if plan.compute_digest() != plan.digest:
        raise PlanError(
            "plan digest does not match its content: the file was modified after it was generated",
            where=str(path),
            hint="do not edit plans; regenerate with `invoke plan --env ENV` and review again",
        )
    return plan
