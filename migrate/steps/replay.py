"""replay-workloads and wait-workloads-ready: copy the old cluster's workloads onto the new one.

The replay journals small outputs and keeps the bulky records in private files under the environment's
workdir (mode 0600, written atomically):
- `replay/baseline.json`: which of the planned objects already existed on the new cluster (with their uids)
  before the *first* attempt. It survives a kill, so a resumed replay still knows what it created;
- `replay/created.json`: the objects the replay created (kind, namespace, name, uid): what undo deletes;
- `replay/targets.json`: the objects whose readiness wait-workloads-ready waits for;
- `replay/report.json`: the per-object results and the old/new inventory diff.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from migrate.config import Replay
from migrate.errors import ConfigError, MigrateError, ProviderError, StepFailed
from migrate.kube.apply import FAILED, Result
from migrate.kube.client import KubeClient
from migrate.kube.export import Exported, export, is_owned_reason, reason_group
from migrate.kube.inventory import inventory_hash
from migrate.kube.manifests import write_json
from migrate.kube.objects import dig, key_of
from migrate.kube.ready import ReadyReport, needs_wait, wait_ready
from migrate.kube.replay import (
    build_plan,
    created_entries,
    live_uids,
    plan_from_cluster,
    replay,
    report_lines,
    undo,
    write_plan_review,
)
from migrate.kube.sanitize import sanitize
from migrate.kube.volumes import VolumePlan, inventory, plan_volumes, problems, workloads
from migrate.plan.model import Step
from migrate.steps.base import Context
from migrate.steps.volume_record import cut_done

KUBECONFIG_SUFFIX = "-write-kubeconfig"
REPLAY_SUFFIX = "-replay-workloads"


def kubeconfig_of(ctx: Context) -> tuple[str, str, str]:
    """(kubeconfig path, old context, new context) from the write-kubeconfig step's outputs."""
    for step_id, out in ctx.outputs.items():
        if step_id.endswith(KUBECONFIG_SUFFIX) and out.get("kubeconfig"):
            contexts = out.get("contexts") or {}
            if contexts.get("old") and contexts.get("new"):
                return str(out["kubeconfig"]), str(contexts["old"]), str(contexts["new"])
    raise StepFailed("no kubeconfig for the old and new clusters: the write-kubeconfig step has not run",
                     where=f"environments.{ctx.env_name}",
                     hint="run the migration from the start (or resume it) so that write-kubeconfig runs first")


@contextmanager
def old_cluster_client(ctx: Context, qps: float | None) -> Iterator[KubeClient]:
    """A client of the old cluster: through the run's kubeconfig once written, else (planning happens before
    write-kubeconfig) through one held in memory, made from the provider's access. Its exec plugin, migrate's
    own, runs in this process (the client's exec cache, kube/client.py)."""
    try:
        path, old_ctx, _new = kubeconfig_of(ctx)
    except StepFailed:
        from migrate.cloud.clusters import provider_for
        from migrate.cloud.kubeconfig import kubeconfig_dict

        name = ctx.env.clusters.old.name
        with KubeClient.from_kubeconfig_dict(kubeconfig_dict([provider_for(ctx.env).access(name, name)]), name,
                                             qps=qps) as kube:
            yield kube
        return
    with KubeClient.from_kubeconfig(path, old_ctx, qps=qps) as kube:
        yield kube


def _paths(ctx: Context) -> dict[str, Path]:
    d = ctx.workdir / "replay"
    return {n: d / f"{n}.json" for n in ("baseline", "created", "targets", "report")}


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise StepFailed(f"cannot read the replay's record: {e}", where=str(path),
                         hint="the file is damaged; roll back the replay by hand or remove the file") from e


def _clients(ctx: Context, cfg: Replay) -> tuple[KubeClient, KubeClient]:
    path, old_ctx, new_ctx = kubeconfig_of(ctx)
    pool = cfg.concurrency + 2
    old = KubeClient.from_kubeconfig(path, old_ctx, qps=cfg.qps, pool_size=pool)
    new = KubeClient.from_kubeconfig(path, new_ctx, qps=cfg.qps, pool_size=pool)
    return old, new


def _progress(ctx: Context) -> Callable[[Result], None]:
    seen = {"n": 0}

    def on_result(r: Result) -> None:
        seen["n"] += 1
        if r.action == FAILED:
            ctx.log(f"replay: {r.key}: failed: {r.reason}")
        elif seen["n"] % 200 == 0:
            ctx.log(f"replay: {seen['n']} objects done")
    return on_result


def _shared_file_systems(ctx: Context, vplans: list[VolumePlan]) -> list[str]:
    """Every EFS file system a `shared` claim points at must exist (else the plan stops, exit 2); where it can
    be mounted is a warning: the new cluster's nodes need a mount target in their zone and VPC."""
    from migrate.cloud.aws.efs import file_system_id, mount_zones
    from migrate.cloud.aws.session import make_session

    claims = [p for p in vplans if p.strategy == "shared" and p.carried and p.volume.source == "efs"]
    if not claims or ctx.env.aws is None:
        return []
    session = make_session(ctx.env.aws.region, ctx.env.aws.profile)
    warnings, missing = [], []
    for p in claims:
        fs = file_system_id(str(p.volume.handle))
        zones = mount_zones(session, fs)
        if zones is None:
            missing.append(f"{p.volume.ref}: EFS file system {fs} does not exist in {ctx.env.aws.region}")
        else:
            warnings.append(f"{p.volume.ref}: shared with the new cluster: {fs} has mount targets in "
                            f"{', '.join(zones) or 'no zone'}; the new cluster's nodes mount it only there, and only "
                            "from the mount targets' VPC")
    if missing:
        raise ConfigError("a shared claim points at a file system that does not exist:\n    " + "\n    ".join(missing),
                          where=f"environments.{ctx.env_name}.replay.volumes.rules",
                          hint="fix the PV's volumeHandle, or the strategy; nothing was changed")
    return warnings


_OLD_EXPORT = "replay:old-export"


class ReplayWorkloadsStep:
    kind: ClassVar[str] = "replay-workloads"

    # Hooks for tests and the engine: called with each object's result (e.g. to show progress).
    on_result: Callable[[Result], None] | None = None

    def facts(self, ctx: Context) -> dict[str, Any]:
        """The old cluster's inventory hash (keys and resourceVersions of what would be replayed)."""
        cfg = ctx.env.replay
        with old_cluster_client(ctx, cfg.qps) as old:
            exported = export(old, cfg)
        sanitized = [sanitize(o) for o in exported.objects]
        ctx.reads[_OLD_EXPORT] = (exported, sanitized)  # the dry run's review writes this very export
        # Counts per reason, for the plan's review. Owned objects (pods, ReplicaSets) are left out: their
        # number moves with every scale-up, and it would make a reviewed plan stale for nothing.
        reasons = Counter(reason_group(s.reason) for s in exported.skipped if not is_owned_reason(s.reason))
        vplans = plan_volumes(inventory(exported.objects, exported.volumes), cfg.volumes, None,
                              ctx.env.aws.region if ctx.env.aws else None)
        cut, owners = workloads(vplans, exported.objects)
        blocked = problems(vplans) + owners
        if blocked:
            more = f"\n    ... and {len(blocked) - 20} more" if len(blocked) > 20 else ""
            raise ConfigError(f"{len(blocked)} persistent volume claim(s) of {ctx.env.clusters.old.name} cannot be "
                              "carried to the new cluster:\n    " + "\n    ".join(blocked[:20]) + more,
                              where=f"environments.{ctx.env_name}.replay.volumes.rules",
                              hint="give each claim a strategy (snapshot, csi-snapshot, shared, or fresh when its "
                                   "data is disposable); see docs/replay.md#persistent-volumes. Nothing was changed")
        shared = _shared_file_systems(ctx, vplans)
        return {"old_inventory": inventory_hash(clean for clean, _rules in sanitized),
                "objects": len(exported.objects),
                "skipped_by_reason": dict(sorted(reasons.items())),
                "kube_system": sorted(str(key_of(o)) for o in exported.objects
                                      if dig(o, "metadata", "namespace") == "kube-system"),
                "volumes": [p.to_row() for p in vplans if p.volume.bound],
                "warnings": [f"{p.volume.ref}: strategy fresh: its data is not carried; the new cluster starts it "
                             "empty" for p in vplans if p.volume.bound and p.strategy == "fresh"] + shared,
                "stateful": [{"workload": w.ref, "replicas": w.replicas, "claims": [c.volume.ref for c in w.claims],
                              "shared_writer": dict(w.writer)} for w in cut]}

    def review(self, ctx: Context, out_dir: Path) -> dict[str, Any]:
        """Dry run: the exact manifests that would be applied (Secrets redacted) and a summary."""
        names = {"old": ctx.env.clusters.old.name, "new": ctx.env.clusters.new.name}
        # What the plan's facts exported and hashed, when they ran in this context: the review shows exactly that.
        exported, sanitized = ctx.reads.pop(_OLD_EXPORT, (None, None))
        if not isinstance(exported, Exported):
            with old_cluster_client(ctx, ctx.env.replay.qps) as old:
                exported, sanitized = export(old, ctx.env.replay), None
        return write_plan_review(build_plan(exported, ctx.env.replay, names, sanitized=sanitized), out_dir)

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        # Re-applying is idempotent and cheap (unchanged objects send no write), so the replay itself is the
        # check: a resumed run always converges the new cluster onto the old one.
        return None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        cfg = ctx.env.replay
        names = {"old": ctx.env.clusters.old.name, "new": ctx.env.clusters.new.name}
        paths = _paths(ctx)
        old, new = _clients(ctx, cfg)
        try:
            try:
                plan = plan_from_cluster(old, cfg, names, cut_done(ctx))
                baseline: dict[str, str] = _read(paths["baseline"]) or {}
                unknown = [it for it in plan.items if str(it.key) not in baseline]
                if unknown or not paths["baseline"].exists():
                    # Only objects this attempt has never seen: anything the killed attempt created is in there.
                    now = live_uids(new, unknown)
                    baseline.update({str(it.key): now.get(str(it.key), "") for it in unknown})
                    write_json(paths["baseline"], baseline)
                # An earlier attempt's record would be stale once this one creates anything: without it,
                # rollback recomputes what was created from the baseline.
                paths["created"].unlink(missing_ok=True)
                log = self.on_result or _progress(ctx)
                report = replay(plan, new, cfg, names, on_result=log)
                created = created_entries(plan.items, baseline, live_uids(new, plan.items))
            except MigrateError:
                raise
            except ValueError as e:  # a bad label selector in the configuration, ...
                raise StepFailed(f"replay: {e}", where=f"environments.{ctx.env_name}.replay") from e
        finally:
            old.close()
            new.close()
        write_json(paths["created"], {"entries": created})
        write_json(paths["targets"], [[it.obj["apiVersion"], it.key.kind, it.key.namespace, it.key.name]
                                      for it in plan.items if needs_wait(it.obj)])
        write_json(paths["report"], {**report.to_dict(), "review": plan.summary()})
        outputs = {"created_manifest": str(paths["created"]), "targets": str(paths["targets"]),
                   "report": str(paths["report"]), "created": len(created), "results": report.by_action(),
                   "skipped": len(plan.skipped), "invalid": len(plan.invalid), "inventory": plan.inventory,
                   "parity": bool(report.parity and report.parity.parity), "seconds": round(report.seconds, 2)}
        if not report.ok:
            lines = report_lines(report)
            raise StepFailed(f"replay: {len(report.failures)} object(s) failed; the new cluster does not match the "
                             "old one:\n    " + "\n    ".join(lines), where=str(paths["report"]),
                             hint="fix the objects named above (or the transforms that broke them), then resume; "
                                  "traffic has not been touched")
        return outputs

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        """Delete exactly what the replay created (uid preconditions). Safe twice: the second finds nothing."""
        path = Path(outputs.get("created_manifest") or _paths(ctx)["created"])
        data = _read(path)
        entries = (data or {}).get("entries")
        if entries is None:
            # The replay was killed before it wrote its record: recompute it from the baseline.
            baseline = _read(_paths(ctx)["baseline"])
            if baseline is None:
                return  # it never started applying
            cfg = ctx.env.replay
            old, new = _clients(ctx, cfg)
            try:
                plan = build_plan(export(old, cfg), cfg, {"old": ctx.env.clusters.old.name,
                                                          "new": ctx.env.clusters.new.name})
                entries = created_entries(plan.items, baseline, live_uids(new, plan.items))
            finally:
                old.close()
                new.close()
        if not entries:
            return
        _path, _old_ctx, new_ctx = kubeconfig_of(ctx)
        with KubeClient.from_kubeconfig(_path, new_ctx, qps=ctx.env.replay.qps) as new:
            stats = undo(new, entries, log=ctx.log)
        ctx.log(f"replay undo: {stats['deleted']} deleted, {stats['terminating']} terminating, "
                f"{stats['gone']} already gone, "
                f"{stats['kept']} kept (replaced by someone else since, or a namespace holding their objects)")


def _targets(ctx: Context) -> list[tuple[str, str, str, str]]:
    path: Path | None = None
    for step_id, out in ctx.outputs.items():
        if step_id.endswith(REPLAY_SUFFIX) and out.get("targets"):
            path = Path(out["targets"])
    path = path or _paths(ctx)["targets"]
    data = _read(path)
    if data is None:
        raise StepFailed("nothing to wait for: the replay-workloads step has not run", where=str(path),
                         hint="resume the migration so that the replay runs first")
    return [(str(a), str(k), str(ns), str(n)) for a, k, ns, n in data]


class WaitWorkloadsReadyStep:
    kind: ClassVar[str] = "wait-workloads-ready"

    poll: ClassVar[float] = 0.5

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def _wait(self, ctx: Context, timeout: float) -> ReadyReport:
        path, _old, new_ctx = kubeconfig_of(ctx)
        targets = _targets(ctx)
        with KubeClient.from_kubeconfig(path, new_ctx, qps=ctx.env.replay.qps) as new:
            try:
                return wait_ready(new, targets, timeout, poll=self.poll)
            except ProviderError:
                raise
            except MigrateError as e:
                raise StepFailed(str(e)) from e

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        report = self._wait(ctx, 0.0)
        return {"ready": len(report.ready), "waited_s": 0.0} if report.ok else None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        timeout = float(step.params.get("timeout_s") or ctx.env.replay.ready_timeout)
        report = self._wait(ctx, timeout)
        if not report.ok:
            lines = [f"{k}: failed: {v}" for k, v in report.failed.items()]
            lines += [f"{k}: {v}" for k, v in report.pending.items()]
            more = f"\n    ... and {len(lines) - 20} more" if len(lines) > 20 else ""
            raise StepFailed(f"{len(report.failed) + len(report.pending)} workload(s) on the new cluster are not "
                             f"ready after {report.waited:.0f}s:\n    " + "\n    ".join(lines[:20]) + more,
                             where=f"environments.{ctx.env_name}.replay.ready_timeout",
                             hint="fix the workloads named above (kubectl describe them on the new cluster), then "
                                  "resume; traffic has not been touched")
        return {"ready": len(report.ready), "waited_s": round(report.waited, 2)}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        return None  # waiting changes nothing
