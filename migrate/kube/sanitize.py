"""Strip what the old cluster's server filled in, so that the object can be created on the new one.

Each rule is a small named function that edits the object in place and returns True if it changed
something; `sanitize` runs them all in order on a copy. The rules follow reference/replay.md
(velero restore actions, crane's kubernetes transform, kubectl-neat).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from migrate.kube.objects import Obj, annotations_of, clone, dig

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SERVER_METADATA = ("uid", "selfLink", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "managedFields", "ownerReferences")
PVC_BINDING_ANNOTATIONS = ("pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller",
                           "volume.beta.kubernetes.io/storage-provisioner", "volume.kubernetes.io/storage-provisioner",
                           "volume.kubernetes.io/selected-node")
JOB_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
# Annotations a controller writes on the objects it manages; the new cluster's controllers write their own.
CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)

Rule = Callable[[Obj], bool]


def _d(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _drop(d: Any, *keys: str) -> bool:
    if not isinstance(d, dict):
        return False
    hit = False
    for k in keys:
        if k in d:
            del d[k]
            hit = True
    return hit


def _last_applied(obj: Obj) -> Obj:
    raw = annotations_of(obj).get(LAST_APPLIED)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _tidy_metadata(obj: Obj) -> None:
    # Empty maps left by other rules would show as spurious diffs.
    m = _d(obj.get("metadata"))
    for k in ("annotations", "labels"):
        if k in m and not m[k]:
            del m[k]


# --- every object -------------------------------------------------------------------------------------


def strip_server_metadata(obj: Obj) -> bool:
    """uid, resourceVersion, managedFields, ...: the new server assigns its own."""
    return _drop(obj.get("metadata"), *SERVER_METADATA)


def strip_last_applied(obj: Obj) -> bool:
    """The old client-side-apply record would make a later `kubectl apply` compute wrong deletions."""
    return _drop(annotations_of(obj), LAST_APPLIED)


def strip_status(obj: Obj) -> bool:
    """Status belongs to the new cluster's controllers."""
    return _drop(obj, "status")


def strip_controller_annotations(obj: Obj) -> bool:
    """deployment.kubernetes.io/revision counts the old cluster's rollouts; the new controller starts at 1."""
    return _drop(annotations_of(obj), *CONTROLLER_ANNOTATIONS)


# --- Service ------------------------------------------------------------------------------------------


def service_cluster_ip(obj: Obj) -> bool:
    """Cluster IPs come from the new cluster's range (velero #2810, #4098); headless `None` stays."""
    if obj.get("kind") != "Service":
        return False
    spec = _d(obj.get("spec"))
    if spec.get("clusterIP") == "None":
        return _drop(spec, "clusterIPs") if spec.get("clusterIPs") not in (None, ["None"]) else False
    return _drop(spec, "clusterIP", "clusterIPs")


def service_node_ports(obj: Obj) -> bool:
    """Allocated node ports collide on the new cluster (velero #2308); keep only those the user set.

    "Set by the user" is read from the last-applied configuration, so this rule runs before it is stripped.
    """
    if obj.get("kind") != "Service":
        return False
    spec = _d(obj.get("spec"))
    user = _d(dig(_last_applied(obj), "spec"))
    user_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                  for p in _l(user.get("ports")) if isinstance(p, dict)}
    changed = False
    for p in _l(spec.get("ports")):
        if isinstance(p, dict) and "nodePort" in p and not user_ports.get((p.get("port"), p.get("protocol", "TCP"))):
            del p["nodePort"]
            changed = True
    if "healthCheckNodePort" in spec and not user.get("healthCheckNodePort"):
        del spec["healthCheckNodePort"]
        changed = True
    return changed


def service_lb_external_ips(obj: Obj) -> bool:
    """A LoadBalancer's external IPs belong to the old load balancer."""
    if obj.get("kind") != "Service" or dig(obj, "spec", "type") != "LoadBalancer":
        return False
    return _drop(obj.get("spec"), "externalIPs")


# --- Pod and ServiceAccount ---------------------------------------------------------------------------


_TOKEN_VOLUME = re.compile(r"^(.+-token-[a-z0-9]{5}|kube-api-access-[a-z0-9]{5})$")


def pod_node_binding(obj: Obj) -> bool:
    """nodeName names an old node and is immutable (velero #6828); priority is derived from priorityClassName."""
    if obj.get("kind") != "Pod":
        return False
    return _drop(obj.get("spec"), "nodeName", "priority")


def pod_token_volumes(obj: Obj) -> bool:
    """Service-account token volumes are injected by admission on the new cluster with new tokens."""
    if obj.get("kind") != "Pod":
        return False
    spec = _d(obj.get("spec"))
    vols = _l(spec.get("volumes"))
    drop = {v.get("name") for v in vols if isinstance(v, dict) and _TOKEN_VOLUME.match(str(v.get("name", "")))}
    if not drop:
        return False
    spec["volumes"] = [v for v in vols if not isinstance(v, dict) or v.get("name") not in drop]
    if not spec["volumes"]:
        del spec["volumes"]
    for field in ("initContainers", "containers"):
        for c in _l(spec.get(field)):
            mounts = _l(c.get("volumeMounts")) if isinstance(c, dict) else []
            if mounts:
                c["volumeMounts"] = [m for m in mounts if not isinstance(m, dict) or m.get("name") not in drop]
                if not c["volumeMounts"]:
                    del c["volumeMounts"]
    return True


def serviceaccount_token_refs(obj: Obj) -> bool:
    """`<sa>-token-*` secrets are not copied, so the ServiceAccount must not point at them."""
    if obj.get("kind") != "ServiceAccount":
        return False
    name = str(dig(obj, "metadata", "name") or "")
    secrets = _l(obj.get("secrets"))
    if not secrets:
        return False
    keep = [s for s in secrets if not str(_d(s).get("name", "")).startswith(f"{name}-token-")]
    if len(keep) == len(secrets):
        return False
    if keep:
        obj["secrets"] = keep
    else:
        del obj["secrets"]
    return True


# --- Job ----------------------------------------------------------------------------------------------


def job_selector(obj: Obj) -> bool:
    """controller-uid labels name the old Job's uid and are rejected on 1.27+ (velero #6711)."""
    if obj.get("kind") != "Job":
        return False
    spec = _d(obj.get("spec"))
    changed = False
    tpl_labels = dig(spec, "template", "metadata", "labels")
    if _drop(tpl_labels, *JOB_UID_LABELS):
        changed = True
    if spec.get("manualSelector"):
        return _drop(dig(spec, "selector", "matchLabels"), *JOB_UID_LABELS) or changed
    return _drop(spec, "selector") or changed


def job_labels(obj: Obj) -> bool:
    """The Job's own labels carry the same controller-uid labels."""
    if obj.get("kind") != "Job":
        return False
    return _drop(_d(obj.get("metadata")).get("labels"), *JOB_UID_LABELS)


# --- storage ------------------------------------------------------------------------------------------


def pvc_binding(obj: Obj) -> bool:
    """Binding annotations describe the old volume; a dynamically provisioned volume is provisioned anew."""
    if obj.get("kind") != "PersistentVolumeClaim":
        return False
    ann = annotations_of(obj)
    dynamic = ann.get("pv.kubernetes.io/bound-by-controller") == "yes" or any(
        k in ann for k in ("volume.kubernetes.io/storage-provisioner", "volume.beta.kubernetes.io/storage-provisioner"))
    changed = _drop(ann, *PVC_BINDING_ANNOTATIONS)
    if dynamic:
        changed = _drop(obj.get("spec"), "volumeName") or changed
    return changed


def pv_claim_ref(obj: Obj) -> bool:
    """A static PV's claimRef names the old claim's uid; without it the PV binds to the new claim by name."""
    if obj.get("kind") != "PersistentVolume":
        return False
    return _drop(dig(obj, "spec", "claimRef"), "uid", "resourceVersion")


def workload_template_hash(obj: Obj) -> bool:
    """pod-template-hash is written by the Deployment controller onto ReplicaSets and Pods, not by users."""
    if obj.get("kind") != "Deployment":
        return False
    return _drop(dig(obj, "spec", "template", "metadata", "labels"), "pod-template-hash")


# Order matters: node ports read last-applied before it is stripped.
RULES: tuple[Rule, ...] = (
    service_node_ports,
    service_cluster_ip,
    service_lb_external_ips,
    strip_server_metadata,
    strip_last_applied,
    strip_controller_annotations,
    strip_status,
    pod_node_binding,
    pod_token_volumes,
    serviceaccount_token_refs,
    job_selector,
    job_labels,
    pvc_binding,
    pv_claim_ref,
    workload_template_hash,
)


def sanitize(obj: Obj) -> tuple[Obj, list[str]]:
    """A sanitized copy of `obj` and the names of the rules that changed it."""
    out = clone(obj)
    applied = [rule.__name__ for rule in RULES if rule(out)]
    _tidy_metadata(out)
    return out, applied
