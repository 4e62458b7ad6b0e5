"""snapshot-volumes and cut-volumes: carry the stateful workloads' data to the new cluster, one writer at a time.

snapshot-volumes (right after the replay) takes a warm-up snapshot of every carried EBS volume, so that the
final snapshot at the cut is incremental. cut-volumes then takes over each stateful workload in turn:
1. freeze: the pre-freeze command, then the old writer scaled to 0 (its replica count is kept in the record);
2. the final snapshots, waited for until complete; on a region change (replay.volumes.region), each then
   copied into the new cluster's region and waited for (the warm-up's copy makes that copy incremental);
3. the restores: one volume per snapshot, in a zone where the new cluster has nodes;
4. bind: a pre-bound PV (Retain) and the claim with ``volumeName`` on the new cluster;
5. the new writer scaled up and waited for; then its Services are restored on the new cluster, and the old
   cluster's Services become aliases of the new writer's load balancer;
6. the window (freeze to repoint) is measured and journaled.

Every sub-step is recorded in ``volumes/cut.json`` (mode 0600, atomic) and finds its own effect before
acting: snapshots and volumes are looked up by their tags, PVs and PVCs by name. A failure after the freeze
scales the old writer back up before the error surfaces, so no failure leaves both writers down. The restored
volumes are kept (tagged) until an explicit cleanup.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from migrate.cloud.aws.ebs import Ebs, tags_of
from migrate.cloud.aws.session import make_session
from migrate.cloud.gcp.pd import Pd, resource_name
from migrate.config import Replay
from migrate.errors import MigrateError, StepFailed
from migrate.kube.client import MERGE_PATCH, KubeApiError, KubeClient, object_path
from migrate.kube.export import export
from migrate.kube.manifests import write_json
from migrate.kube.objects import Key, Obj, dig
from migrate.kube.ready import pauses, wait_ready
from migrate.kube.replay import ReplayPlan, build_plan
from migrate.kube.sanitize import sanitize
from migrate.kube.volumes import (
    VolumePlan,
    Workload,
    inventory,
    plan_volumes,
    problems,
    shared_writer,
    workloads,
    writer_host,
)
from migrate.plan.model import Step
from migrate.run.failpoints import at
from migrate.steps import csi
from migrate.steps.base import Context
from migrate.steps.replay import kubeconfig_of
from migrate.steps.volume_record import DONE, read_record, record_path

_PLURALS = {"StatefulSet": "statefulsets", "Deployment": "deployments"}
ZONE_LABEL = "topology.kubernetes.io/zone"
PD_DRIVER = "pd.csi.storage.gke.io"
_CSI_ZONE_KEY = {"ebs.csi.aws.com": "topology.ebs.csi.aws.com/zone", PD_DRIVER: "topology.gke.io/zone"}


def _clients(ctx: Context) -> tuple[KubeClient, KubeClient]:
    path, old_ctx, new_ctx = kubeconfig_of(ctx)
    qps = ctx.env.replay.qps
    return KubeClient.from_kubeconfig(path, old_ctx, qps=qps), KubeClient.from_kubeconfig(path, new_ctx, qps=qps)


def ebs_client(ctx: Context, region: str | None = None) -> Ebs:
    """The old volumes' region (aws.region), or ``region``."""
    if ctx.env.aws is None:
        raise StepFailed("the snapshot strategy needs the environment's AWS account (EBS)",
                         where=f"environments.{ctx.env_name}.aws",
                         hint="set the aws section (the snapshot strategy carries EBS volumes)")
    return Ebs(make_session(region or ctx.env.aws.region, ctx.env.aws.profile))


def pd_client(ctx: Context) -> Pd:
    if ctx.env.gcp is None:
        raise StepFailed("the snapshot strategy on a persistent disk needs the environment's GCP project",
                         where=f"environments.{ctx.env_name}.gcp", hint="set the gcp section")
    return Pd(ctx.env.gcp.project, ctx.env.gcp.endpoint)


def pd_name(run_id: str, claim: str, phase: str, attempt: int = 1) -> str:
    """The GCE name of a disk or snapshot the cut makes: the same for a resumed attempt, so found again."""
    return resource_name("migrate", phase, claim.replace("/", "-"), run_id, str(attempt))


def dest_client(ctx: Context) -> Ebs | None:
    """The new cluster's region when the volumes change region (replay.volumes.region), else None."""
    target = ctx.env.replay.volumes.region
    if target is None or (ctx.env.aws is not None and target == ctx.env.aws.region):
        return None
    return ebs_client(ctx, target)


def new_zones(kube: KubeClient) -> list[str]:
    return sorted({z for n in kube.list_pages("/api/v1/nodes")
                   if (z := (dig(n, "metadata", "labels") or {}).get(ZONE_LABEL))})


def _workload_path(kind: str, ns: str, name: str) -> str:
    return object_path("apps/v1", _PLURALS[kind], ns, name)


def _scale(kube: KubeClient, kind: str, ns: str, name: str, replicas: int) -> None:
    kube.call("PATCH", _workload_path(kind, ns, name), body={"spec": {"replicas": replicas}},
              content_type=MERGE_PATCH)


def _wait_scaled_down(kube: KubeClient, kind: str, ns: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = pauses(0.2)
    while True:
        obj = kube.request("GET", _workload_path(kind, ns, name))
        st = obj.get("status") or {}
        if not st.get("replicas") and not st.get("readyReplicas"):
            return
        if time.monotonic() > deadline:
            raise StepFailed(f"{kind} {ns}/{name} on the old cluster still has {st.get('replicas')} replicas "
                             f"{timeout:g}s after being scaled to 0", where=f"{kind}/{ns}/{name}",
                             hint="see why its pods do not terminate (kubectl describe); the cut is undone")
        time.sleep(next(pause))


def _put(kube: KubeClient, obj: Obj) -> None:
    """Create or replace (keeping the live resourceVersion) one object."""
    path = object_path(obj["apiVersion"], _plural(obj["kind"]), dig(obj, "metadata", "namespace") or "",
                       obj["metadata"]["name"])
    try:
        live = kube.request("GET", path)
    except KubeApiError as e:
        if e.status != 404:
            raise
        coll = path.rsplit("/", 1)[0]
        kube.call("POST", coll, body=obj)
        return
    body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}}
    if obj["kind"] == "Service":  # allocated by the server; immutable unless the type changes
        for k in ("clusterIP", "clusterIPs"):
            if k in (live.get("spec") or {}) and (obj.get("spec") or {}).get("type") != "ExternalName":
                body["spec"] = {**body.get("spec", {}), k: live["spec"][k]}
    kube.call("PUT", path, body=body)


def _plural(kind: str) -> str:
    return {"Service": "services", "PersistentVolume": "persistentvolumes",
            "PersistentVolumeClaim": "persistentvolumeclaims"}.get(kind) or _PLURALS[kind]


def restored_pv(entry: dict[str, Any], volume_id: str, zone: str) -> Obj:
    """The new cluster's PV for a restored volume: pre-bound to the claim, Retain until the cut is final."""
    # A PD comes back as a CSI volume whatever it was (GKE migrates in-tree PDs to the CSI driver).
    driver = entry.get("csi_driver") or (PD_DRIVER if entry.get("source") == "pd" else None)
    if driver:
        source: Obj = {"csi": {"driver": driver, "volumeHandle": volume_id, "fsType": entry.get("fs_type") or "ext4"}}
        key = _CSI_ZONE_KEY.get(driver, ZONE_LABEL)
    else:
        source = {"awsElasticBlockStore": {"volumeID": f"aws://{zone}/{volume_id}",
                                           "fsType": entry.get("fs_type") or "ext4"}}
        key = ZONE_LABEL
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": entry["pv_name"], "labels": {"migrate.dev/claim": entry["claim"].replace("/", ".")},
                         "annotations": {"pv.kubernetes.io/provisioned-by": driver or "kubernetes.io/aws-ebs",
                                         "migrate.dev/source-volume": entry["handle"]}},
            "spec": {"capacity": {"storage": entry["size"]}, "accessModes": entry["access_modes"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": entry.get("storage_class"),
                     "volumeMode": "Filesystem", **source,
                     "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                                  "namespace": entry["claim"].split("/", 1)[0],
                                  "name": entry["claim"].split("/", 1)[1]},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": key, "operator": "In", "values": [zone]}]}]}}}}


def _claim_entry(p: VolumePlan, claim_obj: Obj | None) -> dict[str, Any]:
    v = p.volume
    return {"claim": v.ref, "namespace": v.namespace, "name": v.claim, "source": v.source, "handle": v.handle,
            "zone": v.zone,
            "target_zone": p.target_zone, "size": v.size,
            "access_modes": list(v.access_modes), "storage_class": v.storage_class, "csi_driver": v.csi_driver,
            "fs_type": v.fs_type, "strategy": p.strategy, "pv_name": f"migrate-{v.namespace}-{v.claim}"[:253],
            "pre_freeze": list(p.pre_freeze), "pre_freeze_timeout": p.pre_freeze_timeout, "pvc": claim_obj}


class _Cut:
    """One run of cut-volumes: the clients, the record and the rules of writing it."""

    def __init__(self, ctx: Context, old: KubeClient, new: KubeClient, ebs: Ebs | None) -> None:
        self.ctx = ctx
        self.old = old
        self.new = new
        self.ebs = ebs
        self.dest: Ebs | None = None  # the new cluster's region, on a region change
        self.pd: Pd | None = None  # GKE: persistent disks
        self.cfg = ctx.env.replay.volumes
        self.record = read_record(ctx)
        self.record.setdefault("workloads", {})

    def save(self) -> None:
        write_json(record_path(self.ctx), self.record)

    def entry(self, ref: str) -> dict[str, Any]:
        return dict(self.record["workloads"].get(ref) or {})

    def set(self, ref: str, **kw: Any) -> dict[str, Any]:
        e = {**self.entry(ref), **kw}
        self.record["workloads"][ref] = e
        self.save()
        return e

    # ------------------------------------------------------------------ one workload

    def run(self, w: Workload, planned: _Planned) -> dict[str, Any]:
        e = self.entry(w.ref)
        if e.get("phase") == DONE:
            return e
        if not e:
            e = self.set(w.ref, phase="planned", kind=w.kind, namespace=w.namespace, name=w.name,
                         replicas=w.replicas,
                         claims=[_claim_entry(c, _claim_obj(planned.replay, c)) for c in w.claims],
                         old_services=planned.services(w, old=True), new_services=planned.services(w, old=False),
                         writer=w.writer)
        try:
            return self._cut(w.ref, e)
        except BaseException as err:
            if isinstance(err, MigrateError | OSError | ValueError):
                self._unfreeze(w.ref, err)
            raise

    def _cut(self, ref: str, e: dict[str, Any]) -> dict[str, Any]:
        kind, ns, name = e["kind"], e["namespace"], e["name"]
        log = self.ctx.log
        if e["phase"] == "unfreezing":  # killed while undoing an earlier attempt: finish undoing it first
            self._unfreeze(ref, StepFailed("an earlier attempt was interrupted while it was undone"))
            e = self.entry(ref)
        if e["phase"] == "planned":
            for c in e["claims"]:
                if c["pre_freeze"]:
                    self._pre_freeze(ref, c["pre_freeze"], float(c.get("pre_freeze_timeout") or 120))
            e = self.set(ref, phase="freezing", t_freeze=time.time())
            at("cut-volumes/freezing")
        if e["phase"] == "freezing":
            log(f"volumes: {ref}: the old writer is scaled to 0 (was {e['replicas']})")
            _scale(self.old, kind, ns, name, 0)
            _wait_scaled_down(self.old, kind, ns, name, self.cfg.ready_timeout)
            e = self.set(ref, phase="frozen")
            at("cut-volumes/frozen")
        if e["phase"] == "frozen":
            # All snapshots are started before any is waited for: EBS takes them in parallel.
            attempt = int(e.get("attempt") or 1)
            started = [self._final_snapshot(c, attempt) if c["strategy"] == "snapshot" else
                       csi.take(self.old, c, self.ctx.run_id, attempt, self.ctx.log) for c in e["claims"]]
            started = [self._wait_snapshot(c) for c in started]
            e = self.set(ref, claims=started, phase="snapshotted")
            at("cut-volumes/snapshotted")
        if e["phase"] == "snapshotted" and self.dest is not None:
            # A region change: each final snapshot is copied into the new cluster's region (incremental on
            # the warm-up's copy), all started, then waited for.
            copies = [self._copy(c, int(e.get("attempt") or 1)) if c["strategy"] == "snapshot"
                      and c.get("source") != "pd" else c
                      for c in e["claims"]]
            for c in copies:
                if c.get("copy_id"):
                    self.dest.wait_snapshot(c["copy_id"], self.cfg.snapshot_timeout)
            e = self.set(ref, claims=copies, phase="copied")
            at("cut-volumes/copied")
        if e["phase"] in ("snapshotted", "copied"):
            made = [self._restore(c, int(e.get("attempt") or 1)) if c["strategy"] == "snapshot" else
                    csi.pre_provision(self.new, c, self.ctx.run_id) for c in e["claims"]]
            for c in made:
                self._wait_restored(c)
            e = self.set(ref, claims=made, phase="restored")
            at("cut-volumes/restored")
        if e["phase"] == "restored":
            for c in e["claims"]:
                pvc = dict(c["pvc"])
                spec = {k: v for k, v in pvc.get("spec", {}).items() if k not in ("dataSource", "dataSourceRef")}
                if c["strategy"] == "csi-snapshot":  # the CSI driver provisions it from the snapshot
                    pvc["spec"] = {**{k: v for k, v in spec.items() if k != "volumeName"},
                                   "dataSource": csi.data_source(c["vs_name"])}
                else:
                    _put(self.new, restored_pv(c, c["volume_id"], c["target_zone"]))
                    pvc["spec"] = {**spec, "volumeName": c["pv_name"]}
                _put(self.new, pvc)
            e = self.set(ref, phase="bound")
            at("cut-volumes/bound")
        if e["phase"] == "bound":
            _scale(self.new, kind, ns, name, int(e["replicas"]))
            report = wait_ready(self.new, [("apps/v1", kind, ns, name)], self.cfg.ready_timeout)
            if not report.ok:
                why = "; ".join(f"{k}: {v}" for k, v in {**report.failed, **report.pending}.items())
                raise StepFailed(f"{ref} on the new cluster is not ready on the carried volumes: {why}",
                                 where=f"environments.{self.ctx.env_name}.replay.volumes.ready_timeout",
                                 hint="kubectl describe it on the new cluster; the old writer is scaled back up")
            e = self.set(ref, phase="scaled")
            at("cut-volumes/scaled")
        if e["phase"] == "scaled":
            self._repoint(ref, e)
            end = time.time()
            e = self.set(ref, phase=DONE, t_end=end, window_s=round(end - float(e["t_freeze"]), 3))
            log(f"volumes: {ref}: cut over; writes were unavailable for {e['window_s']:.1f}s")
        return e

    def _pre_freeze(self, ref: str, cmd: list[str], timeout: float) -> None:
        env_vars = {"MIGRATE_ENV": self.ctx.env_name, "MIGRATE_RUN_ID": self.ctx.run_id, "MIGRATE_WORKLOAD": ref}
        try:
            done = subprocess.run(cmd, cwd=self.ctx.loaded.root, env={**os.environ, **env_vars}, capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except (FileNotFoundError, subprocess.TimeoutExpired) as err:
            raise StepFailed(f"{ref}: the pre-freeze command {cmd[0]!r} failed: {err}",
                             where=f"environments.{self.ctx.env_name}.replay.volumes.rules",
                             hint="fix the command; nothing was frozen") from None
        if done.returncode:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise StepFailed(f"{ref}: the pre-freeze command exited {done.returncode}: {tail}",
                             where=f"environments.{self.ctx.env_name}.replay.volumes.rules",
                             hint="fix the command; nothing was frozen")

    def _need_ebs(self) -> Ebs:
        if self.ebs is None:
            raise StepFailed("no EBS client", where=f"environments.{self.ctx.env_name}.aws")
        return self.ebs

    def _wait_snapshot(self, c: dict[str, Any]) -> dict[str, Any]:
        """Wait for a claim's final snapshot, by its strategy and source; csi-snapshot learns its handle."""
        if c["strategy"] == "csi-snapshot":
            return csi.wait_taken(self.old, c, self.cfg.snapshot_timeout)
        if c.get("source") == "pd":
            self._need_pd().wait_snapshot(c["snapshot_id"], self.cfg.snapshot_timeout)
        else:
            self._need_ebs().wait_snapshot(c["snapshot_id"], self.cfg.snapshot_timeout)
        return c

    def _wait_restored(self, c: dict[str, Any]) -> None:
        if c["strategy"] == "csi-snapshot":
            csi.wait_ready(self.new, c["namespace"], c["vs_name"], self.cfg.snapshot_timeout)
        elif c.get("source") == "pd":
            self._need_pd().wait_disk(c["volume_id"], self.cfg.ready_timeout)
        else:
            (self.dest or self._need_ebs()).wait_volume(c["volume_id"], self.cfg.ready_timeout)

    def _need_pd(self) -> Pd:
        if self.pd is None:
            raise StepFailed("no Compute Engine client", where=f"environments.{self.ctx.env_name}.gcp")
        return self.pd

    def _final_snapshot(self, c: dict[str, Any], attempt: int) -> dict[str, Any]:
        tags = tags_of(self.ctx.run_id, c["claim"], "final", attempt)
        if c.get("source") == "pd":
            name, created = self._need_pd().snapshot(str(c["handle"]), pd_name(self.ctx.run_id, c["claim"], "final",
                                                                             attempt), tags)
            self.ctx.log(f"volumes: {c['claim']}: final snapshot {name}"
                         f"{'' if created else ' (found, taken before a restart)'}")
            at("cut-volumes/snapshot-created")
            return {**c, "snapshot_id": name}
        snap, created = self._need_ebs().snapshot(str(c["handle"]), tags,
                                                  f"migrate {self.ctx.env_name}: final snapshot of {c['claim']}")
        self.ctx.log(f"volumes: {c['claim']}: final snapshot {snap['SnapshotId']}"
                     f"{'' if created else ' (found, taken before a restart)'}")
        at("cut-volumes/snapshot-created")
        return {**c, "snapshot_id": snap["SnapshotId"]}

    def _copy(self, c: dict[str, Any], attempt: int) -> dict[str, Any]:
        dest, src = self.dest, self._need_ebs()
        assert dest is not None
        snap, created = dest.copy_snapshot(c["snapshot_id"], src.region,
                                           tags_of(self.ctx.run_id, c["claim"], "copied", attempt),
                                           f"migrate {self.ctx.env_name}: {c['claim']} moved from {src.region}")
        at("cut-volumes/copy-created")
        self.ctx.log(f"volumes: {c['claim']}: final snapshot copied to {dest.region} as {snap['SnapshotId']}"
                     f"{'' if created else ' (found, made before a restart)'}")
        return {**c, "copy_id": snap["SnapshotId"]}

    def _restore(self, c: dict[str, Any], attempt: int) -> dict[str, Any]:
        if c.get("source") == "pd":
            handle, created = self._need_pd().restore(c["snapshot_id"], c["target_zone"],
                                                      pd_name(self.ctx.run_id, c["claim"], "restored", attempt),
                                                      tags_of(self.ctx.run_id, c["claim"], "restored", attempt))
            at("cut-volumes/restore-created")
            self.ctx.log(f"volumes: {c['claim']}: restored as {handle}"
                         f"{'' if created else ' (found, made before a restart)'}")
            return {**c, "volume_id": handle}
        ebs = self.dest or self._need_ebs()
        vol, created = ebs.restore(c.get("copy_id") or c["snapshot_id"], c["target_zone"],
                                   tags_of(self.ctx.run_id, c["claim"], "restored", attempt))
        at("cut-volumes/restore-created")
        moved = f", moved from {c['zone']}" if c["zone"] != c["target_zone"] else ""
        self.ctx.log(f"volumes: {c['claim']}: restored as {vol['VolumeId']} in {c['target_zone']}{moved}"
                     f"{'' if created else ' (found, made before a restart)'}")
        return {**c, "volume_id": vol["VolumeId"]}

    def _repoint(self, ref: str, e: dict[str, Any]) -> None:
        """The new writer's Services on the new cluster, then the old cluster's Services as its aliases."""
        hosts = {}
        for svc in e["new_services"]:
            _put(self.new, svc)
            hosts[svc["metadata"]["name"]] = self._lb_host(svc)
        for svc in e["old_services"]:
            host = hosts.get(svc["metadata"]["name"])
            if host:
                _put(self.old, shared_writer(svc, host))

    def _lb_host(self, svc: Obj) -> str:
        path = object_path("v1", "services", svc["metadata"]["namespace"], svc["metadata"]["name"])
        deadline = time.monotonic() + self.cfg.ready_timeout
        pause = pauses(0.2)
        while True:
            host = writer_host(self.new.request("GET", path))
            if host:
                return host
            if time.monotonic() > deadline:
                raise StepFailed(f"Service {svc['metadata']['namespace']}/{svc['metadata']['name']} on the new "
                                 "cluster has no load balancer address", where="the new cluster",
                                 hint="see its events (kubectl describe service)")
            time.sleep(next(pause))

    def _unfreeze(self, ref: str, err: BaseException) -> None:
        """After a failure inside the cut: the new writer down, the old one back with its Services, and the
        new cluster's claims and PVs of this attempt removed (their volumes are kept: Retain, tagged). The
        snapshots of this attempt are stale once the old writer takes writes again, so the next attempt
        (``attempt`` + 1) takes its own. Journaled as ``unfreezing`` first: a kill in here redoes it all."""
        e = self.entry(ref)
        if e.get("phase") in (None, "planned", DONE):
            return
        if e["phase"] != "unfreezing":
            e = self.set(ref, phase="unfreezing", unfreeze_from=e["phase"])
            at("cut-volumes/unfreezing")
        kind, ns, name = e["kind"], e["namespace"], e["name"]
        self.ctx.log(f"volumes: {ref}: the cut is undone ({err}); the old writer is scaled back to {e['replicas']}")
        try:
            _scale(self.new, kind, ns, name, 0)
            _wait_scaled_down(self.new, kind, ns, name, self.cfg.ready_timeout)
        except KubeApiError as inner:
            if inner.status != 404:
                raise
        for svc in e["new_services"]:
            host = (e.get("writer") or {}).get(svc["metadata"]["name"])
            if host:
                _put(self.new, shared_writer(svc, host))
        for c in e["claims"]:
            cns, cname = c["claim"].split("/", 1)
            claim = object_path("v1", "persistentvolumeclaims", cns, cname)
            _delete(self.new, claim)
            # A claim in use is only gone once its pods are (the protection finalizer): the next attempt
            # must not find it half-deleted.
            wait_gone(self.new, claim, self.cfg.ready_timeout)
            _delete(self.new, object_path("v1", "persistentvolumes", "", c["pv_name"]))
        for svc in e["old_services"]:
            _put(self.old, svc)
        _scale(self.old, kind, ns, name, int(e["replicas"]))
        claims = [{k: v for k, v in c.items() if k not in ("snapshot_id", "copy_id", "volume_id", "vs_name")}
                  for c in e["claims"]]
        self.set(ref, phase="planned", attempt=int(e.get("attempt") or 1) + 1, claims=claims,
                 unfrozen_at=time.time(), t_freeze=None)


def _delete(kube: KubeClient, path: str) -> None:
    try:
        kube.call("DELETE", path)
    except KubeApiError as e:
        if e.status != 404:
            raise


def wait_gone(kube: KubeClient, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = pauses(0.2)
    while True:
        try:
            kube.request("GET", path)
        except KubeApiError as e:
            if e.status == 404:
                return
            raise
        if time.monotonic() > deadline:
            raise StepFailed(f"{path} on the new cluster is still there {timeout:g}s after its deletion",
                             where="the new cluster", hint="see what holds it (kubectl describe: finalizers, pods "
                                                           "using it); resume once it is gone")
        time.sleep(next(pause))


def _claim_obj(rplan: ReplayPlan, p: VolumePlan) -> Obj | None:
    return rplan.staged_originals.get(Key("", "PersistentVolumeClaim", p.volume.namespace, p.volume.claim))


@dataclass
class _Planned:
    replay: ReplayPlan
    cut: list[Workload]
    problems: list[str]
    old_services: dict[tuple[str, str], Obj]  # as the old cluster runs them, to restore after a failed cut

    def services(self, w: Workload, *, old: bool) -> list[Obj]:
        """A workload's Services as the new cluster runs them after the cut, or as the old one runs them."""
        out = []
        for name in w.services:
            obj = self.old_services.get((w.namespace, name)) if old else \
                self.replay.staged_originals.get(Key("", "Service", w.namespace, name))
            if obj is None:
                raise StepFailed(f"Service {w.namespace}/{name} is not in the replay", where=f"{w.namespace}/{name}",
                                 hint="check replay.namespaces and replay.kinds: the cut needs the Services in "
                                      "front of its workloads")
            out.append(obj)
        return out

    def blocking(self, started: set[str]) -> list[str]:
        """What stops the cut, leaving out what belongs to workloads whose cut has started: their claims and
        Services are already changed by the cut (e.g. the new writer's PVC is bound)."""
        mine = {w.ref: [c.volume.ref for c in w.claims] for w in self.cut}
        skip = {c for ref in started for c in mine.get(ref, [])}
        own = {q for w in self.cut if w.ref in started for q in w.problems}
        return [q for q in self.problems if q not in own and q.split(": ", 1)[0] not in skip]


def _plan(ctx: Context, old: KubeClient, new: KubeClient) -> _Planned:
    cfg: Replay = ctx.env.replay
    exported = export(old, cfg)
    names = {"old": ctx.env.clusters.old.name, "new": ctx.env.clusters.new.name}
    rplan = build_plan(exported, cfg, names)
    vplans = plan_volumes(inventory(exported.objects, exported.volumes), cfg.volumes, new_zones(new),
                          ctx.env.aws.region if ctx.env.aws else None)
    cut, owners = workloads(vplans, exported.objects)
    old_services = {(str(dig(o, "metadata", "namespace")), str(dig(o, "metadata", "name"))): sanitize(o)[0]
                    for o in exported.objects if o.get("kind") == "Service"}
    return _Planned(rplan, cut, problems(vplans) + owners, old_services)


class SnapshotVolumesStep:
    """The warm-up: a first snapshot of each carried volume while the old writer still serves."""

    kind: ClassVar[str] = "snapshot-volumes"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        return None  # apply finds every warm snapshot by its tags: re-running it creates nothing

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        old, new = _clients(ctx)
        try:
            cut = _plan(ctx, old, new).cut
        finally:
            old.close()
            new.close()
        warm_csi = [c for w in cut for c in w.claims if c.strategy == "csi-snapshot"]
        if warm_csi:
            old, _new = _clients(ctx)
            try:
                for c in warm_csi:
                    if csi.snapshot_class(old, c.volume.csi_driver) is None:
                        ctx.log(f"volumes: {c.volume.ref}: no warm-up (no VolumeSnapshotClass for "
                                f"{c.volume.csi_driver}); the cut will stop before its freeze")
                        continue
                    csi.take(old, _claim_entry(c, None), ctx.run_id, 0, ctx.log, phase="warm")
            finally:
                old.close()
                _new.close()
        warm_pd = [c for w in cut for c in w.claims if c.strategy == "snapshot" and c.volume.source == "pd"]
        if warm_pd:
            pd = pd_client(ctx)
            for c in warm_pd:
                _name, created = pd.snapshot(str(c.volume.handle), pd_name(ctx.run_id, c.volume.ref, "warm", 0),
                                             tags_of(ctx.run_id, c.volume.ref, "warm"))
                at("snapshot-volumes/created")
            ctx.log(f"volumes: {len(warm_pd)} warm-up PD snapshot(s); the final ones at the cut are incremental")
        claims = [c for w in cut for c in w.claims if c.strategy == "snapshot" and c.volume.handle
                  and c.volume.source == "ebs"]
        if not claims:
            return {"snapshots": len(warm_csi) + len(warm_pd)}
        ebs, dest = ebs_client(ctx), dest_client(ctx)
        made = 0
        warm = []
        for c in claims:
            snap, created = ebs.snapshot(str(c.volume.handle), tags_of(ctx.run_id, c.volume.ref, "warm"),
                                         f"migrate {ctx.env_name}: warm-up snapshot of {c.volume.ref}")
            made += created
            warm.append((c.volume.ref, str(snap["SnapshotId"])))
            at("snapshot-volumes/created")
        copied = 0
        if dest is not None:
            # A region change: the warm-up is copied too, so that the final copy at the cut is incremental.
            # A copy needs a completed source; the copies themselves are not waited for.
            for ref, sid in warm:
                ebs.wait_snapshot(sid, ctx.env.replay.volumes.snapshot_timeout)
                _copy, created = dest.copy_snapshot(sid, ebs.region, tags_of(ctx.run_id, ref, "warm-copy"),
                                                    f"migrate {ctx.env_name}: warm-up of {ref} moved from "
                                                    f"{ebs.region}")
                copied += created
        ctx.log(f"volumes: {len(claims)} warm-up snapshot(s) ({made} new)"
                + (f", copied to {dest.region} ({copied} new)" if dest is not None else "")
                + "; the final ones at the cut are incremental")
        return {"snapshots": len(claims), "created": made, **({"copied": copied} if dest is not None else {})}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        return None  # snapshots are kept until an explicit cleanup: they hold the data


class CutVolumesStep:
    kind: ClassVar[str] = "cut-volumes"

    # For tests: called with each workload's record once its cut is done.
    on_workload: Callable[[dict[str, Any]], None] | None = None

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        return None  # apply resumes from the record and skips the workloads already cut

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        old, new = _clients(ctx)
        try:
            planned = _plan(ctx, old, new)
            run = _Cut(ctx, old, new, None)
            blocking = planned.blocking(set(run.record["workloads"])) + csi.missing_classes(
                old, new, [c for w in planned.cut if w.ref not in run.record["workloads"] for c in w.claims
                           if c.strategy == "csi-snapshot"])
            if blocking:
                raise StepFailed("the volume cut cannot start:\n    " + "\n    ".join(blocking),
                                 where=f"environments.{ctx.env_name}.replay.volumes",
                                 hint="fix the rules or the zones named above; nothing was frozen")
            cut = planned.cut
            if any(c.strategy == "snapshot" and c.volume.source == "ebs" for w in cut for c in w.claims):
                run.ebs = ebs_client(ctx)
                run.dest = dest_client(ctx)
            if any(c.strategy == "snapshot" and c.volume.source == "pd" for w in cut for c in w.claims):
                run.pd = pd_client(ctx)
            windows = {}
            for w in cut:
                e = run.run(w, planned)
                windows[w.ref] = e.get("window_s")
                if self.on_workload is not None:
                    self.on_workload(e)
        finally:
            old.close()
            new.close()
        return {"record": str(record_path(ctx)), "workloads": len(windows), "windows_s": windows,
                "claims": sum(len(w.claims) for w in cut)}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        """The old writers back up with their Services; the new ones at 0. The restored volumes are kept."""
        record = read_record(ctx)
        if not record.get("workloads"):
            return
        old, new = _clients(ctx)
        try:
            run = _Cut(ctx, old, new, None)
            for ref, e in record["workloads"].items():
                if e.get("phase") == DONE:
                    ctx.log(f"volumes: {ref}: writes taken by the new writer since the cut stay on the restored "
                            f"volumes ({', '.join(str(c.get('volume_id')) for c in e['claims'])}), kept")
                if e.get("phase") in (None, "planned"):
                    continue
                run.set(ref, phase="scaled" if e.get("phase") == DONE else e["phase"])
                run._unfreeze(ref, StepFailed("rolled back by the operator"))
                run.set(ref, rolled_back_at=time.time())
        finally:
            old.close()
            new.close()

