"""protect-volumes: the first step of a decommission. Nothing the old cluster's volumes hold is lost silently.

Before the old cluster is destroyed, every bound claim of it (all namespaces, not only the replayed ones) is
looked at against the cut's record:
- carried at the cut: its data is on the new cluster's restored volume; nothing to do;
- shared: the new cluster mounts the same file system; the old PV is set to Retain first;
- otherwise (``fresh``, or no rule): a final snapshot of its EBS volume or PD is taken and waited for, tagged
  ``migrate-phase=decommission`` and listed in the report. If its PV's reclaim policy is ``Delete``, the
  cluster's teardown deletes the volume itself, so the plan refuses unless the operator names the claim with
  ``--accept-data-loss NAMESPACE/PVC`` (globs allowed), and the reviewed plan carries that list.

Snapshots are found again by their tags, so a resumed decommission takes none twice.
"""

from __future__ import annotations

from typing import Any, ClassVar

from migrate.cloud.aws.ebs import tags_of
from migrate.errors import GateFailed, UsageError
from migrate.kube.client import MERGE_PATCH, KubeClient, object_path
from migrate.kube.objects import Obj
from migrate.kube.volumes import Leftover, accepted, inventory, leftovers, plan_volumes
from migrate.plan.model import Step
from migrate.run.failpoints import at
from migrate.steps.base import Context
from migrate.steps.replay import old_cluster_client
from migrate.steps.volume_record import DONE, read_record
from migrate.steps.volumes import ebs_client, pd_client, pd_name

PHASE = "decommission"
_LISTS = (("PersistentVolumeClaim", "/api/v1/persistentvolumeclaims"),
          ("StatefulSet", "/apis/apps/v1/statefulsets"), ("Deployment", "/apis/apps/v1/deployments"))


def carried_claims(ctx: Context) -> dict[str, str]:
    """claim -> the restored volume, for every workload whose cut is done."""
    out = {}
    for e in (read_record(ctx).get("workloads") or {}).values():
        if e.get("phase") == DONE:
            for c in e.get("claims") or []:
                # csi-snapshot: the new cluster's driver made the volume, from the snapshot the cut named.
                out[str(c["claim"])] = str(c.get("volume_id") or
                                           f"a volume of VolumeSnapshot {c.get('namespace')}/{c.get('vs_name')}")
    return out


def _inventory(ctx: Context, kube: KubeClient) -> list[Leftover]:
    objects: list[Obj] = []
    for kind, path in _LISTS:
        objects += [{**o, "kind": kind} for o in kube.list_pages(path)]
    pvs = [{**o, "kind": "PersistentVolume"} for o in kube.list_pages("/api/v1/persistentvolumes")]
    plans = plan_volumes(inventory(objects, pvs), ctx.env.replay.volumes)
    return leftovers(plans, carried_claims(ctx))


def read_leftovers(ctx: Context) -> list[Leftover]:
    cfg = ctx.env.replay
    with old_cluster_client(ctx, cfg.qps) as old:
        return _inventory(ctx, old)


def refuse_unaccepted(ctx: Context, left: list[Leftover], patterns: tuple[str, ...]) -> None:
    """A claim at risk that no pattern names stops the decommission; so does a pattern that names none."""
    risky, unused = accepted(left, patterns)
    flag = " ".join(f"--accept-data-loss {x.volume.ref}" for x in risky)
    if risky:
        raise GateFailed(
            f"destroying {ctx.env.clusters.old.name} would delete the data of {len(risky)} claim(s) that the new "
            "cluster does not have:\n    " + "\n    ".join(f"{x.volume.ref} (PV {x.volume.pv}): {x.reason}"
                                                       for x in risky),
            where=f"cluster {ctx.env.clusters.old.name}",
            hint=f"carry them (environments.{ctx.env_name}.replay.volumes.rules) and migrate again, or, if their "
                 f"data is disposable, accept its loss by name: `invoke plan --env {ctx.env_name} --decommission "
                 f"{flag}`. Nothing was changed")
    if unused:
        at_risk = [x.volume.ref for x in left if x.at_risk]
        raise UsageError(
            f"--accept-data-loss {unused[0]!r} names no claim whose data the decommission would delete",
            where=f"cluster {ctx.env.clusters.old.name}",
            hint=("the claims at risk are: " + ", ".join(at_risk)) if at_risk else
            "no claim is at risk: drop --accept-data-loss")


class ProtectVolumesStep:
    kind: ClassVar[str] = "protect-volumes"

    def facts(self, ctx: Context) -> dict[str, Any]:
        left = read_leftovers(ctx)
        patterns = tuple(sorted(set(ctx.accept_data_loss)))
        refuse_unaccepted(ctx, left, patterns)
        return {"volumes": [x.to_row() for x in left],
                "params": {"accept_data_loss": list(patterns),
                           "accepted_claims": [x.volume.ref for x in left if x.at_risk]},
                "warnings": [f"{x.volume.ref}: its data is deleted with {ctx.env.clusters.old.name} (accepted with "
                             "--accept-data-loss; "
                             + ("a final snapshot is kept)" if x.snapshot else "no snapshot can be taken)")
                             for x in left if x.at_risk]}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        return None  # apply finds its snapshots by their tags: running it again creates nothing

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        with old_cluster_client(ctx, ctx.env.replay.qps) as old:
            left = _inventory(ctx, old)
            # The plan's reviewed acceptance, not the command line's: a resumed run has only the plan.
            refuse_unaccepted(ctx, left, tuple(step.params.get("accept_data_loss") or ()))
            for x in left:
                if x.strategy == "shared" and x.carried_as and x.volume.reclaim != "Retain" and x.volume.pv:
                    old.call("PATCH", object_path("v1", "persistentvolumes", "", x.volume.pv),
                             body={"spec": {"persistentVolumeReclaimPolicy": "Retain"}}, content_type=MERGE_PATCH)
                    ctx.log(f"volumes: {x.volume.ref}: PV {x.volume.pv} set to Retain (the new cluster shares it)")
        snaps = self._snapshots(ctx, [x for x in left if x.snapshot])
        rows = [{**x.to_row(), **({"snapshot_id": snaps[x.volume.ref]} if x.volume.ref in snaps else {})}
                for x in left]
        return {"volumes": rows, "snapshots": len(snaps),
                "deleted_with_cluster": [x.volume.ref for x in left if x.at_risk]}

    def _snapshots(self, ctx: Context, todo: list[Leftover]) -> dict[str, str]:
        if not todo:
            return {}
        ebs = ebs_client(ctx) if any(x.volume.source == "ebs" for x in todo) else None
        pd = pd_client(ctx) if any(x.volume.source == "pd" for x in todo) else None
        made: dict[str, str] = {}
        for x in todo:  # all started before any is waited for: the cloud takes them in parallel
            tags = tags_of(ctx.run_id, x.volume.ref, PHASE)
            if pd is not None and x.volume.source == "pd":
                sid, created = pd.snapshot(str(x.volume.handle), pd_name(ctx.run_id, x.volume.ref, PHASE), tags)
            else:
                assert ebs is not None
                snap, created = ebs.snapshot(str(x.volume.handle), tags,
                                             f"migrate {ctx.env_name}: final snapshot of {x.volume.ref} before "
                                             f"{ctx.env.clusters.old.name} is destroyed")
                sid = str(snap["SnapshotId"])
            made[x.volume.ref] = sid
            ctx.log(f"volumes: {x.volume.ref}: final snapshot {sid} of {x.volume.handle}"
                    f"{'' if created else ' (found, taken before a restart)'}")
            at("protect-volumes/created")
        timeout = ctx.env.replay.volumes.snapshot_timeout
        for x in todo:
            if pd is not None and x.volume.source == "pd":
                pd.wait_snapshot(made[x.volume.ref], timeout)
            elif ebs is not None:
                ebs.wait_snapshot(made[x.volume.ref], timeout)
        return made

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        return None  # the snapshots are kept: they may be the only copy of the data
