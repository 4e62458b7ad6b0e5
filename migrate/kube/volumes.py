"""Persistent volumes: what each claim holds, which strategy carries its data, and how the replay stages it.

Pure: objects in, records out. The inventory reads the old cluster's PVCs, their PVs and the workloads that
mount them; `plan_volumes` gives each bound claim a strategy from `replay.volumes.rules` (first match wins)
and says what stops it. `stage` then changes the replay so that the new cluster never has a second writer:
- carried claims are not replayed (the cut creates them, bound to the carried data);
- their workloads are replayed with 0 replicas (the cut scales them up);
- the Services in front of them become ExternalName aliases of the old writer's load balancer, so the new
  cluster's clients reach the old writer until the cut.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from migrate.config import VolumeRule, Volumes
from migrate.kube.objects import Key, Obj, dig

REPLICAS_ANNOTATION = "migrate.dev/replicas"
WRITER_ANNOTATION = "migrate.dev/shared-writer"
ZONE_KEYS = ("topology.ebs.csi.aws.com/zone", "topology.kubernetes.io/zone", "topology.gke.io/zone",
             "failure-domain.beta.kubernetes.io/zone")
_CSI_SOURCES = {"ebs.csi.aws.com": "ebs", "pd.csi.storage.gke.io": "pd", "efs.csi.aws.com": "efs",
                "filestore.csi.storage.gke.io": "filestore", "nfs.csi.k8s.io": "nfs"}
SNAPSHOTTABLE = ("ebs", "pd")
FILE_SYSTEMS = ("efs", "filestore", "nfs")
CARRIED = ("snapshot", "csi-snapshot", "shared")
# A rough expectation shown in the plan: scale-down, an incremental final snapshot, the restore and the
# readiness wait. The run measures the real window and journals it.
FREEZE_ESTIMATE_S = {"snapshot": 45.0, "csi-snapshot": 45.0, "shared": 0.0, "fresh": 0.0}  # shared: no freeze
_WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job")


@dataclass(frozen=True)
class Volume:
    namespace: str
    claim: str
    pv: str | None
    storage_class: str | None
    provisioner: str | None
    source: str  # ebs | pd | efs | filestore | nfs | local | hostpath | csi | unknown | none (unbound)
    handle: str | None  # vol-…, a PD path, fs-…, server:/path
    access_modes: tuple[str, ...]
    size: str
    zone: str | None
    reclaim: str | None
    owner: str | None  # "StatefulSet/kv"
    ordinal: int | None
    bound: bool
    csi_driver: str | None = None
    fs_type: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.claim}"


@dataclass(frozen=True)
class VolumePlan:
    volume: Volume
    strategy: str | None
    rule: int | None  # index in replay.volumes.rules
    target_zone: str | None
    freeze_s: float
    problem: str | None = None
    pre_freeze: tuple[str, ...] = ()
    pre_freeze_timeout: float = 120.0

    @property
    def carried(self) -> bool:
        return self.strategy in CARRIED and self.problem is None

    def to_row(self) -> dict[str, Any]:
        v = self.volume
        return {"claim": v.ref, "pv": v.pv, "owner": f"{v.owner}#{v.ordinal}" if v.ordinal is not None else v.owner,
                "provisioner": v.provisioner, "source": v.source, "size": v.size,
                "access_modes": list(v.access_modes), "zone": v.zone, "reclaim": v.reclaim,
                "strategy": self.strategy, "target_zone": self.target_zone, "freeze_s": self.freeze_s,
                **({"problem": self.problem} if self.problem else {})}


@dataclass
class Workload:
    """A workload whose claims are carried: the unit of one cut."""

    kind: str
    namespace: str
    name: str
    replicas: int
    claims: list[VolumePlan] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # Services selecting its pods
    writer: dict[str, str] = field(default_factory=dict)  # service -> the old writer's hostname
    problems: list[str] = field(default_factory=list)  # what stops this workload's cut

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def _zone(pv: Obj) -> str | None:
    for term in dig(pv, "spec", "nodeAffinity", "required", "nodeSelectorTerms") or []:
        for expr in (term or {}).get("matchExpressions") or []:
            if expr.get("key") in ZONE_KEYS and expr.get("values"):
                return str(expr["values"][0])
    labels = dig(pv, "metadata", "labels") or {}
    for k in ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"):
        if labels.get(k):
            return str(labels[k])
    vid = str(dig(pv, "spec", "awsElasticBlockStore", "volumeID") or "")
    m = re.match(r"aws://([^/]+)/", vid)
    return m.group(1) if m else None


def _source(pv: Obj) -> tuple[str, str | None, str | None, str | None]:
    """(source, handle, csi driver, fsType) of a PV's volume source."""
    spec = pv.get("spec") or {}
    csi = spec.get("csi")
    if isinstance(csi, dict):
        driver = str(csi.get("driver") or "")
        return _CSI_SOURCES.get(driver, "csi"), csi.get("volumeHandle"), driver, csi.get("fsType")
    if isinstance(spec.get("awsElasticBlockStore"), dict):
        src = spec["awsElasticBlockStore"]
        return "ebs", str(src.get("volumeID") or "").rsplit("/", 1)[-1] or None, None, src.get("fsType")
    if isinstance(spec.get("gcePersistentDisk"), dict):
        src = spec["gcePersistentDisk"]
        return "pd", src.get("pdName"), None, src.get("fsType")
    if isinstance(spec.get("nfs"), dict):
        return "nfs", f"{spec['nfs'].get('server')}:{spec['nfs'].get('path')}", None, None
    if isinstance(spec.get("local"), dict):
        return "local", spec["local"].get("path"), None, None
    if isinstance(spec.get("hostPath"), dict):
        return "hostpath", spec["hostPath"].get("path"), None, None
    return "unknown", None, None, None


def _owners(objects: list[Obj]) -> dict[tuple[str, str], tuple[str, int | None]]:
    """(namespace, claim) -> ("Kind/name", ordinal) from StatefulSet templates and pod-template volumes."""
    out: dict[tuple[str, str], tuple[str, int | None]] = {}
    for o in objects:
        kind = o.get("kind")
        if kind not in _WORKLOAD_KINDS:
            continue
        ns, name = str(dig(o, "metadata", "namespace") or ""), str(dig(o, "metadata", "name"))
        if kind == "StatefulSet":
            replicas = int(dig(o, "spec", "replicas") if dig(o, "spec", "replicas") is not None else 1)
            for tpl in dig(o, "spec", "volumeClaimTemplates") or []:
                for n in range(max(replicas, 0) + 16):  # claims outlive a scale-down: look past replicas
                    out.setdefault((ns, f"{dig(tpl, 'metadata', 'name')}-{name}-{n}"), (f"{kind}/{name}", n))
        for vol in dig(o, "spec", "template", "spec", "volumes") or []:
            claim = dig(vol, "persistentVolumeClaim", "claimName")
            if claim:
                out.setdefault((ns, str(claim)), (f"{kind}/{name}", None))
    return out


def inventory(objects: list[Obj], pvs: list[Obj]) -> list[Volume]:
    """One record per PVC among ``objects``, joined with its PV from ``pvs``."""
    by_pv = {str(dig(pv, "metadata", "name")): pv for pv in pvs}
    owners = _owners(objects)
    out = []
    for o in objects:
        if o.get("kind") != "PersistentVolumeClaim":
            continue
        ns, name = str(dig(o, "metadata", "namespace")), str(dig(o, "metadata", "name"))
        pv_name = dig(o, "spec", "volumeName")
        pv = by_pv.get(str(pv_name)) if pv_name else None
        bound = dig(o, "status", "phase") == "Bound" and pv is not None
        source, handle, driver, fs = _source(pv) if pv else ("none", None, None, None)
        ann = dig(pv, "metadata", "annotations") or {} if pv else {}
        owner, ordinal = owners.get((ns, name), (None, None))
        out.append(Volume(
            namespace=ns, claim=name, pv=str(pv_name) if pv_name else None,
            storage_class=dig(o, "spec", "storageClassName") or (dig(pv, "spec", "storageClassName") if pv else None),
            provisioner=ann.get("pv.kubernetes.io/provisioned-by") or driver,
            source=source, handle=handle, access_modes=tuple(dig(o, "spec", "accessModes") or ()),
            size=str(dig(pv, "spec", "capacity", "storage") if pv else None
                     or dig(o, "spec", "resources", "requests", "storage") or "?"),
            zone=_zone(pv) if pv else None,
            reclaim=dig(pv, "spec", "persistentVolumeReclaimPolicy") if pv else None,
            owner=owner, ordinal=ordinal, bound=bound, csi_driver=driver, fs_type=fs))
    return sorted(out, key=lambda v: (v.namespace, v.claim))


def _matches(rule: VolumeRule, v: Volume) -> bool:
    m = rule.match
    return (fnmatch.fnmatchcase(v.namespace, m.namespace) and fnmatch.fnmatchcase(v.claim, m.name)
            and fnmatch.fnmatchcase(v.storage_class or "", m.storage_class))


def _refusal(strategy: str, v: Volume) -> str | None:
    """Why this strategy cannot carry this volume, if it cannot."""
    if strategy == "fresh":
        return None
    if v.source in ("local", "hostpath"):
        return (f"a {v.source} volume lives on one node's disk and no cloud snapshot of it exists: copy the data "
                "at the application level and mark the claim `fresh`, or move it to a cloud volume first")
    if strategy == "snapshot" and v.source not in SNAPSHOTTABLE:
        return f"`snapshot` needs an EBS volume or a PD; this claim's volume is {v.source}"
    if strategy == "csi-snapshot" and not v.csi_driver:
        return f"`csi-snapshot` needs a CSI volume; this claim's volume is in-tree {v.source}"
    if strategy == "shared":
        if v.source not in FILE_SYSTEMS:
            return f"`shared` needs a file system (EFS, Filestore, NFS); this claim's volume is {v.source}"
        if "ReadWriteMany" not in v.access_modes and "ReadOnlyMany" not in v.access_modes:
            return "`shared` needs a ReadWriteMany claim: two clusters would mount it at once during the cut"
    return _not_yet(strategy, v)


def _not_yet(strategy: str, v: Volume) -> str | None:
    """Strategies this version plans and validates but cannot carry yet: refused, never half-done."""
    return None


def target_zone(v: Volume, cfg: Volumes, new_zones: list[str] | None,
                region: str | None = None) -> tuple[str | None, str | None]:
    """(zone, problem): the old zone where the new cluster has nodes there, else the configured or a
    spread (by ordinal) zone of the new cluster. ``region``: the old volumes' region; a zone outside the
    region the restore runs in (``cfg.region``, else that one) is a problem."""
    zone, problem = _target_zone(v, cfg, new_zones)
    want = cfg.region or region
    if new_zones is None and zone == v.zone and want and zone and not zone.startswith(want):
        return None, None  # a region change, planned before the new cluster has nodes: chosen at the cut
    if zone is not None and problem is None and want and not zone.startswith(want):
        hint = ("set replay.volumes.region to the new cluster's region, so that each snapshot is copied there"
                if not cfg.region else "fix replay.volumes.region or replay.volumes.zone_map")
        return zone, f"the target zone {zone} is outside {want}, the region the volume would be restored in: {hint}"
    return zone, problem


def _target_zone(v: Volume, cfg: Volumes, new_zones: list[str] | None) -> tuple[str | None, str | None]:
    if v.zone is None:
        return None, None
    mapped = cfg.zone_map.get(v.zone)
    if mapped is not None:
        if new_zones is not None and mapped not in new_zones:
            return mapped, (f"replay.volumes.zone_map sends {v.zone} to {mapped}, a zone the new cluster lacks "
                            f"(its nodes are in {', '.join(new_zones) or 'no zone'})")
        return mapped, None
    if new_zones is None or v.zone in new_zones:
        return v.zone, None
    if not new_zones:
        return None, "the new cluster has no nodes with a zone label: a restored volume would have nowhere to attach"
    return new_zones[(v.ordinal or 0) % len(new_zones)], None


def plan_volumes(volumes: list[Volume], cfg: Volumes, new_zones: list[str] | None = None,
                 region: str | None = None) -> list[VolumePlan]:
    """``region``: the old cluster's (for EBS, aws.region); a restore elsewhere needs ``cfg.region``."""
    out = []
    for v in volumes:
        idx = next((i for i, r in enumerate(cfg.rules) if _matches(r, v)), None)
        rule = cfg.rules[idx] if idx is not None else None
        if rule is None:
            # An unbound claim holds no data: the new cluster provisions it as the old one would have.
            problem = None if not v.bound else "no strategy: no rule of replay.volumes.rules matches this claim"
            out.append(VolumePlan(v, "fresh" if not v.bound else None, None, None, 0.0, problem))
            continue
        problem = _refusal(rule.strategy, v)
        if rule.strategy == "csi-snapshot" and cfg.region and region and cfg.region != region:
            problem = problem or ("`csi-snapshot` cannot change region (a CSI snapshot lives in its region); use "
                                  "`snapshot`, which copies each snapshot to replay.volumes.region")
        zone, zone_problem = (target_zone(v, cfg, new_zones, region) if rule.strategy in ("snapshot", "csi-snapshot")
                              else (v.zone, None))
        out.append(VolumePlan(v, rule.strategy, idx, zone, FREEZE_ESTIMATE_S[rule.strategy],
                              problem or zone_problem, tuple(rule.pre_freeze),
                              rule.pre_freeze_timeout))
    return out


def problems(plans: list[VolumePlan]) -> list[str]:
    return [f"{p.volume.ref}: {p.problem}" for p in plans if p.problem]


def _selects(svc: Obj, labels: dict[str, str]) -> bool:
    sel = dig(svc, "spec", "selector") or {}
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def writer_host(svc: Obj) -> str | None:
    """The old writer's address another cluster can reach: its load balancer's hostname or IP."""
    for ing in dig(svc, "status", "loadBalancer", "ingress") or []:
        if ing.get("hostname") or ing.get("ip"):
            return str(ing.get("hostname") or ing.get("ip"))
    return None


def workloads(plans: list[VolumePlan], objects: list[Obj]) -> tuple[list[Workload], list[str]]:
    """The workloads to cut, with the Services in front of them, and what stops a cut (a claim with no
    owner, a Service the new cluster cannot reach the old writer through)."""
    by_ref: dict[tuple[str, str, str], Workload] = {}
    problems_: list[str] = []
    index = {(o.get("kind"), dig(o, "metadata", "namespace"), dig(o, "metadata", "name")): o for o in objects}
    for p in plans:
        if not p.carried or p.strategy == "shared":
            continue  # a shared file system has no cut: both clusters mount it, nothing is frozen or copied
        v = p.volume
        if v.owner is None:
            problems_.append(f"{v.ref}: no workload mounts this claim, so there is no writer to freeze; "
                             "mount it, or mark it `fresh` after copying its data")
            continue
        kind, name = v.owner.split("/", 1)
        w = by_ref.get((kind, v.namespace, name))
        if w is None:
            src = index.get((kind, v.namespace, name)) or {}
            spec_replicas = dig(src, "spec", "replicas")
            w = by_ref[(kind, v.namespace, name)] = Workload(kind, v.namespace, name,
                                                             int(spec_replicas if spec_replicas is not None else 1))
            labels = dig(src, "spec", "template", "metadata", "labels") or {}
            for o in objects:
                if o.get("kind") == "Service" and dig(o, "metadata", "namespace") == v.namespace and \
                        _selects(o, labels):
                    svc = str(dig(o, "metadata", "name"))
                    w.services.append(svc)
                    host = writer_host(o)
                    if host:
                        w.writer[svc] = host
                    else:
                        w.problems.append(
                            f"Service {v.namespace}/{svc} (in front of {kind}/{name}): the new cluster cannot "
                            "reach the old writer through it before the cut, as it has no load balancer; give "
                            "it one (an internal LoadBalancer), so that only one writer ever exists")
        w.claims.append(p)
    cut = sorted(by_ref.values(), key=lambda w: w.ref)
    return cut, problems_ + [q for w in cut for q in w.problems]


def stage(items: list[tuple[Key, Obj]], plans: list[VolumePlan], cut: list[Workload],
          done: set[str] | None = None) -> dict[Key, Obj | str]:
    """How the replay's objects change for the cut: key -> the object to apply instead, or why it is not
    replayed. ``done`` holds the workloads (Workload.ref) already cut: the replay must not put them back to 0
    replicas or to the old writer."""
    done = done or set()
    carried = {(p.volume.namespace, p.volume.claim): p for p in plans if p.carried and p.strategy != "shared"}
    workloads_ = {(w.kind, w.namespace, w.name): w for w in cut}
    services = {(w.namespace, s): w for w in cut for s in w.services}
    out: dict[Key, Obj | str] = {}
    for key, obj in items:
        if key.kind == "PersistentVolumeClaim" and (key.namespace, key.name) in carried:
            out[key] = f"carried by the volume cut ({carried[(key.namespace, key.name)].strategy})"
            continue
        w = workloads_.get((key.kind, key.namespace, key.name)) or \
            (services.get((key.namespace, key.name)) if key.kind == "Service" else None)
        if w is None:
            continue
        if w.ref in done:
            out[key] = "taken over by the volume cut (already cut)"
        elif key.kind == "Service":
            host = w.writer.get(key.name)
            if host:
                out[key] = shared_writer(obj, host)
        else:
            meta = dict(obj.get("metadata") or {})
            meta["annotations"] = {**(meta.get("annotations") or {}), REPLICAS_ANNOTATION: str(w.replicas)}
            out[key] = {**obj, "metadata": meta, "spec": {**obj.get("spec", {}), "replicas": 0}}
    return out


def shared_writer(svc: Obj, host: str) -> Obj:
    """A Service as an alias of the old writer's load balancer: its clients on the new cluster reach it."""
    meta = dict(svc.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), WRITER_ANNOTATION: host}
    ports = [{k: v for k, v in p.items() if k in ("name", "port", "protocol", "targetPort")}
             for p in dig(svc, "spec", "ports") or []]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"type": "ExternalName", "externalName": host, **({"ports": ports} if ports else {})}}


def shared_pv_name(v: Volume, old_pv: Obj) -> str:
    """A static PV keeps its name on the new cluster; a provisioned one (``pvc-<uid>``) gets a stable one."""
    ann = dig(old_pv, "metadata", "annotations") or {}
    return str(v.pv) if "pv.kubernetes.io/provisioned-by" not in ann else f"migrate-{v.namespace}-{v.claim}"[:253]


def shared_pv(v: Volume, old_pv: Obj) -> Obj:
    """The new cluster's PV for a `shared` claim: the same file system (the old PV's source, mount options and
    attributes), pre-bound to the claim, and Retain, so that no claim deletion on either side deletes it."""
    spec = {k: val for k, val in (old_pv.get("spec") or {}).items()
            if k not in ("claimRef", "persistentVolumeReclaimPolicy", "nodeAffinity")}
    labels = dig(old_pv, "metadata", "labels") or {}
    # Static on the new cluster (no provisioned-by): its CSI driver never deletes what it did not make.
    meta: Obj = {"name": shared_pv_name(v, old_pv), "annotations": {"migrate.dev/shared-with": str(v.pv)},
                 **({"labels": dict(labels)} if labels else {})}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta,
            "spec": {**spec, "persistentVolumeReclaimPolicy": "Retain",
                     "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": v.namespace,
                                  "name": v.claim}}}


def shared_claim(pvc: Obj, pv_name: str) -> Obj:
    """The claim, bound by name to the shared PV (no dataSource: nothing is provisioned)."""
    spec = {k: val for k, val in (pvc.get("spec") or {}).items() if k not in ("dataSource", "dataSourceRef")}
    return {**pvc, "spec": {**spec, "volumeName": pv_name}}


# --- decommission: what happens to each old claim's data when the old cluster goes --------------------


@dataclass(frozen=True)
class Leftover:
    """One old claim at decommission. ``at_risk``: destroying the cluster deletes data the new cluster does
    not have (a ``Delete`` volume whose data was not carried), so the operator must accept it by name."""

    volume: Volume
    strategy: str | None
    carried_as: str | None  # where its data lives now: the cut's restored volume, or the shared file system
    snapshot: bool  # a final snapshot is taken before the cluster goes
    at_risk: bool
    reason: str

    def to_row(self) -> dict[str, Any]:
        v = self.volume
        return {"claim": v.ref, "pv": v.pv, "source": v.source, "handle": v.handle, "reclaim": v.reclaim,
                "strategy": self.strategy, "carried_as": self.carried_as, "snapshot": self.snapshot,
                "at_risk": self.at_risk, "reason": self.reason}


def leftovers(plans: list[VolumePlan], carried: dict[str, str]) -> list[Leftover]:
    """Each bound old claim: carried (``carried``: claim -> its restored volume, from the cut's record),
    snapshotted, or neither, and whether its data dies with the cluster."""
    out = []
    for p in plans:
        v = p.volume
        if not v.bound:
            continue  # an unbound claim holds no data
        deletes = v.reclaim not in ("Retain",)
        if v.ref in carried:
            out.append(Leftover(v, p.strategy, carried[v.ref], False, False,
                                f"carried at the cut (restored as {carried[v.ref]}); the old volume holds no "
                                "newer data"))
            continue
        if p.strategy == "shared" and p.problem is None:
            out.append(Leftover(v, p.strategy, v.handle, False, False,
                                "shared: the new cluster mounts the same file system; the old PV is set to Retain "
                                "first, so that destroying the cluster cannot delete it"))
            continue
        can = v.source in SNAPSHOTTABLE and bool(v.handle)
        why = "no rule of replay.volumes.rules" if p.strategy is None else f"strategy {p.strategy}"
        fate = (f"reclaim {v.reclaim or 'Delete'}: destroying the cluster deletes its volume, and the new cluster "
                f"does not have its data ({why})" if deletes else
                f"reclaim Retain: the volume outlives the cluster, unmanaged ({why})")
        out.append(Leftover(v, p.strategy, None, can, deletes,
                            fate + ("; a final snapshot is taken first" if can else
                                    f"; a {v.source} volume cannot be snapshotted")))
    return out


def accepted(risky: list[Leftover], patterns: tuple[str, ...]) -> tuple[list[Leftover], list[str]]:
    """(claims at risk that no ``NAMESPACE/PVC`` glob accepts, patterns that accept no claim at risk)."""
    at_risk = [x for x in risky if x.at_risk]
    left = [x for x in at_risk if not any(fnmatch.fnmatchcase(x.volume.ref, pat) for pat in patterns)]
    unused = [pat for pat in patterns if not any(fnmatch.fnmatchcase(x.volume.ref, pat) for x in at_risk)]
    return left, unused
