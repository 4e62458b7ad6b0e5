"""The volume inventory and strategy planning, pure, on objects in the shapes of public examples:
- the aws-ebs-csi-driver's dynamic-provisioning example (StorageClass `ebs-sc`, claim `ebs-claim`) and its PV as
  the driver provisions it (`topology.ebs.csi.aws.com/zone` affinity);
- an in-tree `kubernetes.io/aws-ebs` PV (`aws://zone/vol-…`, the beta zone label);
- the GKE PD CSI driver's PV (`pd.csi.storage.gke.io`, `topology.gke.io/zone`);
- the aws-efs-csi-driver's static-provisioning example (`efs-pv`, RWX);
- the Kubernetes docs' "Configure a Pod to Use a PersistentVolume for Storage" (`task-pv-volume`, hostPath) and
  local-volume (`example-pv`) examples;
- the docs' StatefulSet basics (`web`, template `www`: claims `www-web-0`, `www-web-1`).
"""

from __future__ import annotations

from typing import Any

from migrate.config import Volumes
from migrate.kube.objects import Key
from migrate.kube.volumes import (
    accepted,
    inventory,
    leftovers,
    plan_volumes,
    shared_claim,
    shared_pv,
    stage,
    workloads,
)

Obj = dict[str, Any]


def _pvc(ns: str, name: str, pv: str, sc: str, modes: tuple[str, ...] = ("ReadWriteOnce",), size: str = "4Gi") -> Obj:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"namespace": ns, "name": name},
            "spec": {"accessModes": list(modes), "storageClassName": sc, "volumeName": pv,
                     "resources": {"requests": {"storage": size}}}, "status": {"phase": "Bound"}}


def _pv(name: str, spec: Obj, *, by: str | None = None, labels: Obj | None = None, reclaim: str = "Delete") -> Obj:
    meta: Obj = {"name": name, "labels": labels or {}}
    if by:
        meta["annotations"] = {"pv.kubernetes.io/provisioned-by": by}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta,
            "spec": {"capacity": {"storage": "4Gi"}, "persistentVolumeReclaimPolicy": reclaim, **spec}}


def _affinity(key: str, zone: str) -> Obj:
    return {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": key, "operator": "In", "values": [zone]}]}]}}}


EBS_CSI = _pv("pvc-ebs", {"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-0a1b2c", "fsType": "ext4"},
                          **_affinity("topology.ebs.csi.aws.com/zone", "us-east-1a")}, by="ebs.csi.aws.com")
IN_TREE = _pv("pvc-gp2", {"awsElasticBlockStore": {"volumeID": "aws://us-east-1b/vol-0d4e5f", "fsType": "ext4"}},
              by="kubernetes.io/aws-ebs", labels={"failure-domain.beta.kubernetes.io/zone": "us-east-1b"})
PD = _pv("pvc-pd", {"csi": {"driver": "pd.csi.storage.gke.io",
                            "volumeHandle": "projects/p/zones/europe-west1-b/disks/pvc-pd"},
                    **_affinity("topology.gke.io/zone", "europe-west1-b")}, by="pd.csi.storage.gke.io")
EFS = _pv("efs-pv", {"csi": {"driver": "efs.csi.aws.com", "volumeHandle": "fs-92107410"},
                     "accessModes": ["ReadWriteMany"]}, reclaim="Retain")
HOSTPATH = _pv("task-pv-volume", {"hostPath": {"path": "/mnt/data"}}, labels={"type": "local"}, reclaim="Retain")
LOCAL = _pv("example-pv", {"local": {"path": "/mnt/disks/ssd1"},
                           **_affinity("kubernetes.io/hostname", "example-node")}, reclaim="Delete")

WEB = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"namespace": "default", "name": "web"},
       "spec": {"replicas": 2, "serviceName": "nginx", "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}
WEB_SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "default", "name": "nginx"},
           "spec": {"type": "LoadBalancer", "selector": {"app": "nginx"}, "ports": [{"port": 80}]},
           "status": {"loadBalancer": {"ingress": [{"hostname": "web-123.elb.us-east-1.amazonaws.com"}]}}}


def _objects() -> tuple[list[Obj], list[Obj]]:
    claims = [_pvc("default", "www-web-0", "pvc-ebs", "ebs-sc"), _pvc("default", "www-web-1", "pvc-gp2", "gp2"),
              _pvc("gke", "data", "pvc-pd", "standard-rwo"), _pvc("shared", "efs-claim", "efs-pv", "efs-sc",
                                                                  ("ReadWriteMany",)),
              _pvc("default", "task-pv-claim", "task-pv-volume", "manual"),
              _pvc("default", "local-claim", "example-pv", "local-storage")]
    return [WEB, WEB_SVC, *claims], [EBS_CSI, IN_TREE, PD, EFS, HOSTPATH, LOCAL]


def _rules(*rules: Obj, **kw: Any) -> Volumes:
    return Volumes.model_validate({"rules": list(rules), **kw})


def test_inventory_reads_provisioner_zone_owner_and_ordinal() -> None:
    objects, pvs = _objects()
    rows = {v.ref: v for v in inventory(objects, pvs)}
    ebs = rows["default/www-web-0"]
    assert (ebs.source, ebs.handle, ebs.zone, ebs.provisioner, ebs.reclaim) == (
        "ebs", "vol-0a1b2c", "us-east-1a", "ebs.csi.aws.com", "Delete")
    assert (ebs.owner, ebs.ordinal) == ("StatefulSet/web", 0)
    gp2 = rows["default/www-web-1"]
    assert (gp2.source, gp2.handle, gp2.zone, gp2.csi_driver, gp2.ordinal) == (
        "ebs", "vol-0d4e5f", "us-east-1b", None, 1)
    pd = rows["gke/data"]
    assert (pd.source, pd.zone, pd.owner) == ("pd", "europe-west1-b", None)
    efs = rows["shared/efs-claim"]
    assert (efs.source, efs.handle, efs.access_modes, efs.reclaim) == (
        "efs", "fs-92107410", ("ReadWriteMany",), "Retain")
    assert rows["default/task-pv-claim"].source == "hostpath"
    assert rows["default/local-claim"].source == "local"


def test_no_default_loses_data_and_unsnapshottable_volumes_are_refused() -> None:
    objects, pvs = _objects()
    plans = {p.volume.ref: p for p in plan_volumes(inventory(objects, pvs), _rules(
        {"match": {"name": "www-*"}, "strategy": "snapshot"},
        {"match": {"name": "task-pv-claim"}, "strategy": "snapshot"},
        {"match": {"namespace": "shared"}, "strategy": "shared"}))}
    assert plans["default/www-web-0"].problem is None and plans["default/www-web-0"].carried
    assert "no strategy" in (plans["gke/data"].problem or "")
    assert "no strategy" in (plans["default/local-claim"].problem or "")
    assert "one node's disk" in (plans["default/task-pv-claim"].problem or "")
    assert plans["shared/efs-claim"].problem is None and plans["shared/efs-claim"].freeze_s == 0


def test_shared_efs_gets_a_static_pv_on_the_same_file_system_and_no_cut() -> None:
    objects, pvs = _objects()
    plans = plan_volumes(inventory(objects, pvs), _rules({"match": {"namespace": "shared"}, "strategy": "shared"},
                                                          {"match": {"name": "*"}, "strategy": "fresh"}))
    efs = next(p for p in plans if p.volume.ref == "shared/efs-claim")
    cut, owners = workloads(plans, objects)
    assert cut == [] and owners == []  # nothing to freeze: both clusters mount it
    pv = shared_pv(efs.volume, EFS)
    assert pv["metadata"]["name"] == "efs-pv"  # a static PV keeps its name
    assert pv["spec"]["csi"] == {"driver": "efs.csi.aws.com", "volumeHandle": "fs-92107410"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "shared",
                                      "name": "efs-claim"}
    dyn = {**EFS, "metadata": {"name": "pvc-1", "annotations": {"pv.kubernetes.io/provisioned-by": "efs.csi.aws.com"}}}
    assert shared_pv(efs.volume, dyn)["metadata"] == {"name": "migrate-shared-efs-claim",
                                                      "annotations": {"migrate.dev/shared-with": "efs-pv"}}
    claim = shared_claim({"kind": "PersistentVolumeClaim", "spec": {"dataSource": {"kind": "X"}}}, "efs-pv")
    assert claim["spec"] == {"volumeName": "efs-pv"}


def test_zone_remap_spreads_by_ordinal_and_a_missing_mapped_zone_is_a_problem() -> None:
    objects, pvs = _objects()
    vols = [v for v in inventory(objects, pvs) if v.owner == "StatefulSet/web"]
    rule = {"match": {"name": "www-*"}, "strategy": "snapshot"}
    remapped = plan_volumes(vols, _rules(rule), ["us-east-1c", "us-east-1d"])
    assert [p.target_zone for p in remapped] == ["us-east-1c", "us-east-1d"]
    kept = plan_volumes(vols, _rules(rule), ["us-east-1a", "us-east-1b"])
    assert [p.target_zone for p in kept] == ["us-east-1a", "us-east-1b"]
    bad = plan_volumes(vols, _rules(rule, zone_map={"us-east-1a": "us-east-1f"}), ["us-east-1a", "us-east-1b"])
    assert "us-east-1f, a zone the new cluster lacks" in (bad[0].problem or "")


def test_staging_keeps_one_writer() -> None:
    objects, pvs = _objects()
    vols = [v for v in inventory(objects, pvs) if v.owner == "StatefulSet/web"]
    plans = plan_volumes(vols, _rules({"match": {"name": "www-*"}, "strategy": "snapshot"}))
    cut, probs = workloads(plans, objects)
    assert probs == [] and [w.ref for w in cut] == ["StatefulSet/default/web"]
    items = [(Key("apps", "StatefulSet", "default", "web"), WEB), (Key("", "Service", "default", "nginx"), WEB_SVC),
             (Key("", "PersistentVolumeClaim", "default", "www-web-0"), objects[2])]
    changes = stage(items, plans, cut)
    sts = changes[Key("apps", "StatefulSet", "default", "web")]
    assert isinstance(sts, dict) and sts["spec"]["replicas"] == 0
    assert sts["metadata"]["annotations"]["migrate.dev/replicas"] == "2"
    svc = changes[Key("", "Service", "default", "nginx")]
    assert isinstance(svc, dict) and svc["spec"] == {
        "type": "ExternalName", "externalName": "web-123.elb.us-east-1.amazonaws.com", "ports": [{"port": 80}]}
    assert isinstance(changes[Key("", "PersistentVolumeClaim", "default", "www-web-0")], str)
    # Once cut, the replay leaves the workload to the cut.
    done = stage(items, plans, cut, {"StatefulSet/default/web"})
    assert all(isinstance(v, str) for v in done.values())


def test_a_service_without_a_load_balancer_stops_the_cut() -> None:
    objects, pvs = _objects()
    clusterip = {**WEB_SVC, "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80}]}, "status": {}}
    objects = [o if o is not WEB_SVC else clusterip for o in objects]
    vols = [v for v in inventory(objects, pvs) if v.owner == "StatefulSet/web"]
    _cut, probs = workloads(plan_volumes(vols, _rules({"match": {"name": "www-*"}, "strategy": "snapshot"})),
                            objects)
    assert probs and "no load balancer" in probs[0]


def test_decommission_leftovers_snapshot_what_was_not_carried_and_flag_deleted_data() -> None:
    objects, pvs = _objects()
    plans = plan_volumes(inventory(objects, pvs), _rules(
        {"match": {"name": "www-web-0"}, "strategy": "snapshot"},
        {"match": {"name": "www-web-1"}, "strategy": "fresh"},
        {"match": {"namespace": "gke"}, "strategy": "fresh"}))
    left = {x.volume.ref: x for x in leftovers(plans, {"default/www-web-0": "vol-restored"})}
    carried = left["default/www-web-0"]
    assert (carried.carried_as, carried.snapshot, carried.at_risk) == ("vol-restored", False, False)
    gp2 = left["default/www-web-1"]  # fresh, in-tree EBS, Delete: snapshotted, and its loss must be accepted
    assert (gp2.snapshot, gp2.at_risk) == (True, True) and "strategy fresh" in gp2.reason
    assert left["gke/data"].snapshot and left["gke/data"].at_risk  # a PD: snapshotted, and still refused
    efs = left["shared/efs-claim"]  # no rule, but Retain: outlives the cluster
    assert (efs.snapshot, efs.at_risk) == (False, False) and "Retain" in efs.reason
    local = left["default/local-claim"]  # Delete, and no snapshot can be taken of a node's disk
    assert (local.snapshot, local.at_risk) == (False, True) and "cannot be snapshotted" in local.reason
    assert not left["default/task-pv-claim"].at_risk  # hostPath, Retain

    risky, unused = accepted(list(left.values()), ("default/www-web-*", "gke/nope"))
    assert sorted(x.volume.ref for x in risky) == ["default/local-claim", "gke/data"]
    assert unused == ["gke/nope"]
    assert accepted(list(left.values()), ("*/*",)) == ([], [])
