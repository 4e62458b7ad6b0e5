"""Markdown rendering of a plan: what a reviewer reads in a pull request."""

from __future__ import annotations

import json
from typing import Any

from migrate.plan.model import Plan


def _bullets(items: list[str]) -> list[str]:
    return [f"- {i}" for i in items] or ["- (nothing)"]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan) -> str:
    title = "Decommission" if plan.operation == "decommission" else "Migration"
    target = ", ".join(f"{k}={v}" for k, v in plan.target.items() if v is not None)
    lines = [
        f"# {title} plan: {plan.env}",
        "",
        f"- Target: {target}",
        f"- Created: {plan.created_at} by {plan.created_by}",
        f"- Digest: `{plan.digest}`",
        f"- Execute with: `invoke migrate --env {plan.env} --plan <this file's .plan.json>`"
        if plan.operation == "migrate"
        else f"- Execute with: `invoke decommission --env {plan.env} --plan <this file's .plan.json>`",
        "",
    ]
    review = plan.review
    for key, heading in (("create", "Will be created"), ("change", "Will be changed"),
                         ("delete", "Will be deleted"), ("never_touch", "Will never be touched")):
        if key == "delete" and not review.get(key):
            continue
        lines += [f"## {heading}", "", *_bullets(list(review.get(key, []))), ""]
    unavailable = [s for s in plan.steps if not s.available]
    lines += ["## Steps", "", "| # | step | effect | undo |", "|---|---|---|---|"]
    for i, s in enumerate(plan.steps, start=1):
        mark = " (not available yet)" if not s.available else ""
        pause = " **then pause for an operator**" if s.pause_after else ""
        lines.append(f"| {i} | `{s.id}` {_cell(s.title)}{mark} | {_cell(s.effect)}{pause} | {_cell(s.undo)} |")
    lines.append("")
    if unavailable:
        lines += [
            "> **Not available yet:** "
            + ", ".join(f"`{s.kind}`" for s in unavailable)
            + ". A run stops at the first of these steps with a clear error; nothing after it runs.",
            "",
        ]
    ownership = review.get("ownership")
    if ownership:
        lines += ["## Terraform ownership", ""]
        for side in ("cluster", "shared"):
            addrs = ownership.get(side) or []
            label = "Cluster-owned (recreated in the copy)" if side == "cluster" else "Shared (one owner)"
            lines += [f"**{label}** ({len(addrs)}):", "", *[f"- `{a}`" for a in addrs], ""]
    lines += ["## Step parameters", ""]
    for s in plan.steps:
        lines += [f"### `{s.id}`", "", "```json", json.dumps(s.params, indent=2, sort_keys=True), "```", ""]
    lines += ["## Inputs fingerprint", "", "The plan is refused if any of these has changed:", "", "```json",
              json.dumps(plan.fingerprint.model_dump(mode="json"), indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)
