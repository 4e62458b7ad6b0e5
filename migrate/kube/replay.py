"""The replay, end to end: export -> sanitize -> transform -> order -> apply -> parity. And its review.

Entry points the engine uses:
- `build_plan(exported, cfg, names)`: pure, manifests as they will be applied (also for the dry run);
- `replay(old, new, cfg, names, ...)`: apply a plan to the new cluster and compare inventories;
- `write_review(old_kubeconfig, context, cfg, names, out_dir)`: the dry run's manifests and summary;
- `undo(new, entries)`: delete exactly what a replay created.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.config import Replay
from migrate.kube.apply import FAILED, Applier, ApplyOptions, OnResult, Planned, Result
from migrate.kube.client import APPLY_PATCH, KubeApiError, KubeClient
from migrate.kube.discovery import ResourceType, discover, listable
from migrate.kube.export import Exported, Skipped, export, reason_group, skip_reason
from migrate.kube.inventory import InventoryDiff, counts, diff, inventory_hash, kind_label
from migrate.kube.manifests import render_summary_md, write_json, write_manifests, write_private
from migrate.kube.objects import Key, Obj, dig, key_of
from migrate.kube.order import PHASE_NAMES, WEBHOOKS, phase_of, sort_key
from migrate.kube.sanitize import sanitize
from migrate.kube.transform import TransformContext, TransformError, transform
from migrate.kube.volumes import (
    VolumePlan,
    Workload,
    inventory,
    plan_volumes,
    problems,
    shared_claim,
    shared_pv,
    stage,
    workloads,
)
from migrate.kube.webhooks import services_of, wait_backends

ClusterNames = Mapping[str, str] | Sequence[str]


def context_of(names: ClusterNames) -> TransformContext:
    if isinstance(names, Mapping):
        return TransformContext(str(names.get("old", "")), str(names.get("new", "")))
    old, new = list(names)[:2]
    return TransformContext(str(old), str(new))


@dataclass
class Invalid:
    key: Key
    rule: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"object": str(self.key), "rule": self.rule, "reason": self.reason}


@dataclass
class ReplayPlan:
    items: list[Planned] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped_kinds: dict[str, str] = field(default_factory=dict)
    context: TransformContext = field(default_factory=TransformContext)
    inventory: str = ""  # hash of the old cluster's selected objects, for the plan fingerprint
    volumes: list[VolumePlan] = field(default_factory=list)
    cut: list[Workload] = field(default_factory=list)  # the stateful workloads the volume cut takes over
    volume_problems: list[str] = field(default_factory=list)
    # What the staging replaced (key -> the object as it would have been applied): the cut applies these.
    staged_originals: dict[Key, Obj] = field(default_factory=dict)

    def selected_keys(self) -> list[Key]:
        return [it.key for it in self.items] + [i.key for i in self.invalid]

    def kube_system(self) -> list[str]:
        """Planned objects of kube-system: add-ons users installed there, for the reviewer to confirm."""
        return [str(it.key) for it in self.items if it.key.namespace == "kube-system"]

    def summary(self) -> dict[str, Any]:
        rules: Counter[str] = Counter(r for it in self.items for r in it.transforms)
        reasons: Counter[str] = Counter(reason_group(s.reason) for s in self.skipped)
        return {
            "old_cluster": self.context.old_cluster, "new_cluster": self.context.new_cluster,
            "inventory": self.inventory,
            "counts": {"planned": len(self.items), "skipped": len(self.skipped), "invalid": len(self.invalid)},
            "per_kind": counts(it.key for it in self.items),
            "per_phase": dict(Counter(PHASE_NAMES[it.phase] for it in sorted(self.items, key=lambda i: i.phase))),
            "transforms": dict(sorted(rules.items())),
            "transformed_objects": {str(it.key): it.transforms for it in self.items if it.transforms},
            "invalid": [i.to_dict() for i in self.invalid],
            "skipped_by_reason": dict(reasons.most_common()),
            "skipped": [{"object": str(s.key), "reason": s.reason} for s in self.skipped],
            "skipped_kinds": dict(sorted(self.skipped_kinds.items())),
            "kube_system": self.kube_system(),
            "warnings": self.warnings,
            "volumes": [v.to_row() for v in self.volumes],
            "cut": [{"workload": w.ref, "replicas": w.replicas, "claims": [c.volume.ref for c in w.claims],
                     "shared_writer": w.writer} for w in self.cut],
            "volume_problems": self.volume_problems,
        }


def build_plan(exported: Exported, cfg: Replay, names: ClusterNames, cut_done: set[str] | None = None, *,
               sanitized: list[tuple[Obj, list[str]]] | None = None) -> ReplayPlan:
    """Sanitize and transform every exported object, in apply order, staged for the volume cut (see
    kube/volumes.py). Pure apart from reading `exported`. ``sanitized``: `sanitize` of each exported object,
    already made (the plan's facts hash them), in the same order."""
    ctx = context_of(names)
    plan = ReplayPlan(skipped=list(exported.skipped), warnings=list(exported.warnings),
                      skipped_kinds=dict(exported.skipped_kinds), context=ctx)
    cleaned = []
    made = sanitized if sanitized is not None else (sanitize(o) for o in exported.objects)
    for src, (clean, rules) in zip(exported.objects, made, strict=True):
        cleaned.append(clean)
        key = key_of(clean)
        try:
            t = transform(clean, list(cfg.transforms), ctx, source=src)
        except TransformError as e:
            plan.invalid.append(Invalid(key, e.rule, e.message))
            continue
        plan.items.append(Planned(key, t.obj, phase_of(key), t.applied, rules,
                                  base=clean if t.applied else None))
    plan.items.sort(key=lambda it: sort_key(it.key))
    plan.inventory = inventory_hash(cleaned)
    _stage_volumes(plan, exported, cfg, cut_done)
    return plan


def _stage_volumes(plan: ReplayPlan, exported: Exported, cfg: Replay, cut_done: set[str] | None) -> None:
    plan.volumes = plan_volumes(inventory(exported.objects, exported.volumes), cfg.volumes)
    plan.cut, owners = workloads(plan.volumes, exported.objects)
    plan.volume_problems = problems(plan.volumes) + owners
    changes: dict[Key, Obj | str] = stage([(it.key, it.obj) for it in plan.items], plan.volumes, plan.cut, cut_done)
    changes.update(_stage_shared(plan, exported))
    if not changes:
        return
    kept = []
    for it in plan.items:
        change = changes.get(it.key)
        if change is not None:
            plan.staged_originals[it.key] = it.obj
        if isinstance(change, str):
            plan.skipped.append(Skipped(it.key, change))
            continue
        if change is not None:
            it.base = it.base or it.obj
            it.obj = change
            it.transforms = [*it.transforms, "volume-cut"]
        kept.append(it)
    plan.items = kept


def _stage_shared(plan: ReplayPlan, exported: Exported) -> dict[Key, Obj | str]:
    """`shared` claims: a static PV on the same file system (the old static PV itself, or one made from a
    provisioned PV, which the export leaves behind), and the claim bound to it by name."""
    pvs = {str(dig(pv, "metadata", "name")): pv for pv in exported.volumes}
    planned = {it.key for it in plan.items}
    out: dict[Key, Obj | str] = {}
    for p in plan.volumes:
        v = p.volume
        if p.strategy != "shared" or not p.carried or v.pv not in pvs:
            continue
        pv = shared_pv(v, pvs[v.pv])
        key = key_of(pv)
        if key in planned:
            out[key] = pv
        else:
            plan.items.append(Planned(key, pv, phase_of(key), ["volume-shared"], []))
        claim = Key("", "PersistentVolumeClaim", v.namespace, v.claim)
        it = next((i for i in plan.items if i.key == claim), None)
        if it is not None:
            out[claim] = shared_claim(it.obj, pv["metadata"]["name"])
    plan.items.sort(key=lambda it: sort_key(it.key))
    return out


def plan_from_cluster(old: KubeClient, cfg: Replay, names: ClusterNames,
                      cut_done: set[str] | None = None) -> ReplayPlan:
    return build_plan(export(old, cfg), cfg, names, cut_done)


# --- the replay ---------------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    results: list[Result]
    plan: ReplayPlan
    parity: InventoryDiff | None = None
    seconds: float = 0.0
    parity_seconds: float = 0.0

    def by_action(self) -> dict[str, int]:
        c = Counter(r.action for r in self.results)
        return {a: c.get(a, 0) for a in ("created", "updated", "unchanged", "failed")}

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.action == FAILED]

    @property
    def ok(self) -> bool:
        return not self.failures and (self.parity is None or self.parity.parity)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": round(self.seconds, 3), "results": self.by_action(),
                "skipped": len(self.plan.skipped), "failures": [r.to_dict() for r in self.failures],
                "parity": self.parity.to_dict() if self.parity is not None else None,
                "objects": [r.to_dict() for r in sorted(self.results, key=lambda r: sort_key(r.key))]}


def _dry_run_ok(kube: KubeClient, applier: Applier, obj: Obj) -> str | None:
    t = applier.discovery.find(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if t is None:
        return None
    k = key_of(obj)
    try:
        kube.request("PATCH", t.path(k.namespace, k.name), body=obj, content_type=APPLY_PATCH,
                     query={"fieldManager": applier.opts.field_manager, "force": "true", "dryRun": "All"})
    except KubeApiError as e:
        return e.summary()
    return None


def blame(kube: KubeClient, applier: Applier, it: Planned, cfg: Replay, ctx: TransformContext) -> str | None:
    """Which transform made the server reject `it`: the first prefix of the rules that the server refuses
    (server-side dry runs; only for failures, so it costs nothing on a good replay)."""
    if it.base is None or _dry_run_ok(kube, applier, it.base) is not None:
        return None  # the object was invalid before any transform: not a transform's fault
    rules = list(cfg.transforms)
    for i in range(len(rules)):
        try:
            partial = transform(it.base, rules[: i + 1], ctx, source=None)
        except TransformError as e:
            return e.rule
        if partial.applied and partial.applied[-1] in it.transforms and \
                _dry_run_ok(kube, applier, partial.obj) is not None:
            return partial.applied[-1]
    return None


def _webhook_gate(kube: KubeClient, applier: Applier, timeout: float) -> Callable[[int, list[Planned]], list[Planned]]:
    def gate(phase: int, items: list[Planned]) -> list[Planned]:
        if phase != WEBHOOKS:
            return items
        disc = discover(kube)
        keep = []
        for it in items:
            problem = wait_backends(kube, disc, it.obj, timeout) if any(services_of(it.obj)) else None
            if problem is None:
                keep.append(it)
            else:
                applier.record(Result(it.key, FAILED, f"held back, its backend is unavailable: {problem}", it.phase))
        return keep
    return gate


def parity(new: KubeClient, plan: ReplayPlan, cfg: Replay) -> InventoryDiff:
    """Export the new cluster with the same rules and compare with the old selection."""
    live = {key_of(o): o for o in export(new, cfg).objects}
    desired = {it.key: it.obj for it in plan.items}
    return diff(plan.selected_keys(), live, desired)


def replay(old: KubeClient | ReplayPlan, new: KubeClient, cfg: Replay, names: ClusterNames, *,
           on_result: OnResult | None = None, opts: ApplyOptions | None = None, check_parity: bool = True,
           webhook_timeout: float | None = None) -> ReplayReport:
    """Apply the old cluster's workloads (or a ready-made plan) to the new cluster. Never raises for a bad
    object: each gets a result; the report says what failed and why."""
    start = time.monotonic()
    plan = old if isinstance(old, ReplayPlan) else plan_from_cluster(old, cfg, names)
    opts = opts or ApplyOptions(concurrency=cfg.concurrency)
    if webhook_timeout is not None:
        opts.webhook_timeout = webhook_timeout
    applier = Applier(new, opts, on_result)
    for inv in plan.invalid:
        applier.record(Result(inv.key, FAILED, f"invalid after transform {inv.rule!r}: {inv.reason}",
                              phase_of(inv.key)))
    applier.run(plan.items, before_phase=_webhook_gate(new, applier, opts.webhook_timeout))
    by_key = {it.key: it for it in plan.items}
    for r in applier.results:
        it = by_key.get(r.key)
        if r.action == FAILED and r.status == 422 and it is not None and it.transforms:
            rule = blame(new, applier, it, cfg, plan.context)
            if rule:
                r.reason = f"invalid after transform {rule!r}: {r.reason}"
    report = ReplayReport(applier.results, plan)
    if check_parity:
        t = time.monotonic()
        report.parity = parity(new, plan, cfg)
        report.parity_seconds = time.monotonic() - t
    report.seconds = time.monotonic() - start
    return report


# --- review (dry run) ---------------------------------------------------------------------------------


def write_plan_review(plan: ReplayPlan, out_dir: Path) -> dict[str, Any]:
    out_dir = Path(out_dir)
    root = out_dir / "manifests"
    write_manifests(root, ((it.key, it.phase, it.obj) for it in plan.items))
    summary = plan.summary()
    summary["manifests"] = str(root)
    write_json(out_dir / "summary.json", summary)
    write_private(out_dir / "summary.md", render_summary_md(summary))
    return summary


def write_review(old_kubeconfig: str | Path, context: str | None, replay_cfg: Replay, cluster_names: ClusterNames,
                 out_dir: str | Path) -> dict[str, Any]:
    """The dry run: write `out_dir/manifests/...` (exactly what would be applied, Secrets redacted) and
    `out_dir/summary.{json,md}` (counts per kind, transforms applied, skipped objects with reasons)."""
    with KubeClient.from_kubeconfig(str(old_kubeconfig), context, qps=replay_cfg.qps) as old:
        plan = plan_from_cluster(old, replay_cfg, cluster_names)
    return write_plan_review(plan, Path(out_dir))


# --- undo ---------------------------------------------------------------------------------------------


def entry(it: Planned, uid: str) -> dict[str, Any]:
    return {"apiVersion": it.obj["apiVersion"], "kind": it.key.kind, "namespace": it.key.namespace,
            "name": it.key.name, "uid": uid, "phase": it.phase}


def live_uids(kube: KubeClient, items: list[Planned]) -> dict[str, str]:
    """str(key) -> uid of every planned object that exists on the cluster now (one list per type)."""
    disc = discover(kube)
    out: dict[str, str] = {}
    wanted = {it.key for it in items}
    for t in {t for it in items if (t := disc.find(it.obj["apiVersion"], it.key.kind))}:
        for o in kube.list_pages(t.path()):
            k = key_of(o)
            if k in wanted:
                out[str(k)] = str(dig(o, "metadata", "uid") or "")
    return out


def created_entries(items: list[Planned], baseline: dict[str, str], now: dict[str, str]) -> list[dict[str, Any]]:
    """Objects that exist now and did not exist (with that uid) before the first attempt of the replay."""
    return [entry(it, now[str(it.key)]) for it in items
            if str(it.key) in now and baseline.get(str(it.key)) != now[str(it.key)]]


def _foreign_object(kube: KubeClient, types: list[ResourceType], namespace: str, ours: set[str],
                    statefulsets: set[str]) -> str | None:
    """An object in `namespace` that the replay did not create, if any. Deleting the namespace would take
    it along, so such a namespace stays. Objects the new cluster makes by itself (see `skip_reason`, and the
    claims of the replay's StatefulSets, which carry no ownerReferences) do not count."""
    for t in types:
        if not t.namespaced:
            continue
        try:
            for obj in kube.list_pages(t.path(namespace)):
                name = str(dig(obj, "metadata", "name") or "")
                if str(dig(obj, "metadata", "uid") or "") in ours or \
                        skip_reason(obj, include_system_namespaces=True):
                    continue
                if t.kind == "PersistentVolumeClaim" and any(re.fullmatch(rf".+-{re.escape(s)}-\d+", name)
                                                             for s in statefulsets):
                    continue
                return f"{t.kind}/{name}"
        except KubeApiError as e:
            if e.status in (403, 404, 405):
                continue
            raise
    return None


def undo(kube: KubeClient, entries: list[dict[str, Any]],
         log: Callable[[str], None] | None = None) -> dict[str, int]:
    """Delete what the replay created, webhooks first and CRDs last; only an object with the recorded uid
    (a same-named object someone made since is left alone), and never a namespace that holds an object
    someone else put there. Deleting twice is harmless."""
    disc = discover(kube)
    types = listable(disc)
    ours = {str(e["uid"]) for e in entries}
    stats = {"deleted": 0, "terminating": 0, "gone": 0, "kept": 0}
    for phase in sorted({int(e["phase"]) for e in entries}, reverse=True):
        for e in (e for e in entries if int(e["phase"]) == phase):
            t = disc.find(e["apiVersion"], e["kind"])
            if t is None:
                stats["gone"] += 1  # its CRD is gone already, and the object with it
                continue
            if e["kind"] == "Namespace" and t.group == "":
                sts = {str(x["name"]) for x in entries if x["kind"] == "StatefulSet" and x["namespace"] == e["name"]}
                foreign = _foreign_object(kube, types, str(e["name"]), ours, sts)
                if foreign:
                    stats["kept"] += 1
                    if log:
                        log(f"replay undo: namespace {e['name']} kept: it holds {foreign}, which the replay "
                            f"did not create")
                    continue
            body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                    "preconditions": {"uid": e["uid"]}}
            try:
                out = kube.request("DELETE", t.path(e["namespace"], e["name"]), body=body)
                # Objects with finalizers (namespaces, ...) answer with themselves, marked for deletion.
                pending = out.get("kind") != "Status" and dig(out, "metadata", "deletionTimestamp")
                stats["terminating" if pending else "deleted"] += 1
            except KubeApiError as err:
                if err.status == 404:
                    stats["gone"] += 1
                elif err.status == 409:
                    stats["kept"] += 1  # precondition failed: not the object we created
                else:
                    raise
    return stats


def report_lines(report: ReplayReport, limit: int = 20) -> list[str]:
    lines = [f"{r.key}: {r.reason}" for r in report.failures[:limit]]
    if len(report.failures) > limit:
        lines.append(f"... and {len(report.failures) - limit} more")
    if report.parity is not None and not report.parity.parity:
        lines += [f"missing on the new cluster: {k}" for k in report.parity.missing[:limit]]
        lines += [f"differs on the new cluster: {k}" for k in report.parity.drifted[:limit]]
    return lines


__all__ = ["ClusterNames", "Invalid", "ReplayPlan", "ReplayReport", "build_plan", "created_entries", "kind_label",
           "live_uids", "plan_from_cluster", "replay", "report_lines", "undo", "write_plan_review", "write_review"]
