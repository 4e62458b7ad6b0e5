"""Compare a reviewed plan with a freshly built one. Pure.

The digest only proves a plan file is self-consistent: it is an unkeyed sha256, so
anyone who edits a step can seal the file again. What makes a reviewed plan safe to
execute is that it is exactly what the configuration and the facts produce *now*:
same steps (ids, kinds, parameters, order) and same review text. Only the fields that
legitimately differ between two plannings (when and by whom) are ignored.
"""

from __future__ import annotations

from typing import Any

from migrate.plan.model import Plan, Step

# Fields of a plan that differ between two plannings of the same inputs.
VARYING = frozenset({"created_at", "created_by", "digest"})


def _first_key(a: Any, b: Any, path: str) -> str:
    """The dotted path of the first place where ``a`` and ``b`` differ (``path`` when they are leaves)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}.{key}"
            if a[key] != b[key]:
                return _first_key(a[key], b[key], f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_key(x, y, f"{path}[{i}]")
    return path


def _step_difference(position: int, reviewed: Step, fresh: Step) -> str:
    if reviewed.id != fresh.id:
        return (f"step {position} is {reviewed.id!r} in the plan file but {fresh.id!r} in a plan built from "
                "the configuration now")
    a, b = reviewed.model_dump(mode="json"), fresh.model_dump(mode="json")
    where = _first_key(a, b, "")
    return f"step {reviewed.id} differs in {where.lstrip('.')}"


def first_difference(reviewed: Plan, fresh: Plan) -> str | None:
    """Describe the first difference between ``reviewed`` and ``fresh`` that matters, or None."""
    for position, (a, b) in enumerate(zip(reviewed.steps, fresh.steps, strict=False), start=1):
        if a != b:
            return _step_difference(position, a, b)
    if len(reviewed.steps) > len(fresh.steps):
        extra = reviewed.steps[len(fresh.steps)]
        return f"the plan file has a step the configuration does not produce: {extra.id}"
    if len(reviewed.steps) < len(fresh.steps):
        missing = fresh.steps[len(reviewed.steps)]
        return f"step {missing.id} is missing from the plan file"
    a_body, b_body = reviewed.model_dump(mode="json"), fresh.model_dump(mode="json")
    for field in a_body:
        if field in VARYING or field == "steps":
            continue
        if a_body[field] != b_body.get(field):
            return f"its {_first_key(a_body[field], b_body.get(field), field)} differs"
    return None
