"""Markdown rendering of a plan: what a reviewer reads in a pull request."""

from __future__ import annotations

import json
from typing import Any

from migrate.plan.model import Plan


def _bullets(items: list[str]) -> list[str]:
    return [f"- {i}" for i in items] or ["- (nothing)"]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _replay(replay: dict[str, Any]) -> list[str]:
    kube_system = list(replay.get("kube_system") or [])
    reasons = dict(replay.get("skipped_by_reason") or {})
    lines = ["## Replay review", "",
             f"**Planned from kube-system** ({len(kube_system)}): add-ons installed there by the team. Leave one "
             "out with `replay.kinds.exclude` or `replay.labels.exclude`; the control plane's and the provider's "
             "own objects are already left behind (below).", "", *[f"- `{k}`" for k in kube_system], "",
             "**Left behind, by reason** (objects with an owner, such as pods and ReplicaSets, are not counted: "
             "their controllers recreate them on the new cluster):", "", "| reason | objects |", "|---|---|"]
    lines += [f"| {_cell(r)} | {n} |" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
    volumes = list(replay.get("volumes") or [])
    if volumes:
        lines += ["", "**Persistent volumes** (bound claims; the target zone is checked against the new cluster's "
                  "nodes at the cut):", "",
                  "| claim | owner | source | size | zone | reclaim | strategy | target zone | expected freeze |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {_cell(v.get('claim'))} | {_cell(v.get('owner') or '-')} | {_cell(v.get('source'))} | "
                  f"{_cell(v.get('size'))} | {_cell(v.get('zone') or '-')} | {_cell(v.get('reclaim') or '-')} | "
                  f"{_cell(v.get('strategy'))} | {_cell(v.get('target_zone') or '-')} | "
                  f"{float(v.get('freeze_s') or 0):.0f} s |" for v in volumes]
    for w in replay.get("stateful") or []:
        aliases = ", ".join(f"{s} -> {h}" for s, h in (w.get("shared_writer") or {}).items())
        lines.append(f"- cut: {_cell(w['workload'])} ({w['replicas']} replicas); until then the new cluster's "
                     f"clients reach the old writer through {_cell(aliases or 'no Service')}")
    return [*lines, ""]


def _old_volumes(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["## The old cluster's volumes", "",
             "What happens to each bound claim's data when the old cluster is destroyed:", "",
             "| claim | source | reclaim | strategy | final snapshot | data lost | why |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {_cell(r.get('claim'))} | {_cell(r.get('source'))} | {_cell(r.get('reclaim') or '-')} | "
              f"{_cell(r.get('strategy') or 'none')} | {'yes' if r.get('snapshot') else 'no'} | "
              f"{'**yes (accepted)**' if r.get('at_risk') else 'no'} | {_cell(r.get('reason'))} |" for r in rows]
    return [*lines, ""]


def _ownership(own: dict[str, Any]) -> list[str]:
    """The ownership table: every address, who owns it after the copy, its category and why."""
    cluster, shared = list(own.get("cluster") or []), list(own.get("shared") or [])
    categories, reasons = own.get("categories") or {}, own.get("reasons") or {}
    found = own.get("clusters_found") or []
    lines = ["## Terraform ownership", ""]
    if own.get("roots"):
        lines.append(f"Cluster: {', '.join(f'`{r}`' for r in own['roots'])}"
                     + (f" in `{own['cluster_module']}`" if own.get("cluster_module") else ""))
    if len(found) > 1:
        others = [f"`{c['address']}` ({c['name']})" for c in found if c["address"] not in (own.get("roots") or [])]
        lines.append(f"Other clusters in this workspace, shared and untouched: {', '.join(others)}")
    lines += ["", f"{len(cluster)} cluster-owned (left out of the copy, which creates them anew; destroyed with "
              f"the old cluster at decommission), {len(shared)} shared (kept by both workspaces until the "
              "handover; the copy's plan may not change them).", "",
              "| address | owner | category | reason |", "|---|---|---|---|"]
    for side, addrs in (("cluster", cluster), ("shared", shared)):
        for a in addrs:
            lines.append(f"| `{_cell(a)}` | {side} | {_cell(categories.get(a, '-'))} | {_cell(reasons.get(a, ''))} |")
    lines.append("")
    disagreements = own.get("disagreements") or []
    if disagreements:
        lines += ["Where the state's dependencies and the configuration disagree:", "",
                  *_bullets([str(d) for d in disagreements]), ""]
    return lines


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
    warnings = review.get("warnings") or []
    if warnings:
        lines += ["## Warnings", "", *_bullets([str(w) for w in warnings]), ""]
    if review.get("old_volumes"):
        lines += _old_volumes(list(review["old_volumes"]))
    replay = review.get("replay")
    if replay:
        lines += _replay(replay)
    ownership = review.get("ownership")
    if ownership:
        lines += _ownership(ownership)
    lines += ["## Step parameters", ""]
    for s in plan.steps:
        lines += [f"### `{s.id}`", "", "```json", json.dumps(s.params, indent=2, sort_keys=True), "```", ""]
    lines += ["## Inputs fingerprint", "", "The plan is refused if any of these has changed:", "", "```json",
              json.dumps(plan.fingerprint.model_dump(mode="json"), indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)
