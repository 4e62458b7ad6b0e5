"""Read every object the replay should copy from the old cluster, and say why the others are left behind.

`skip_reason` is pure: the skip rules of reference/replay.md, each with the reason shown in the review.
`select` applies the configuration's include/exclude lists. `export` lists every served type page by page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from migrate.config import Replay, Selection
from migrate.kube.client import KubeApiError, KubeClient
from migrate.kube.discovery import Discovery, ResourceType, discover, listable
from migrate.kube.objects import Key, Obj, annotations_of, dig, key_of, labels_of

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
# Left out whole unless replay.include_system_namespaces: what the control plane writes there (cluster-info,
# node heartbeats). kube-system is reviewed object by object instead: add-ons users install live there.
SKIPPED_NAMESPACES = ("kube-public", "kube-node-lease")
# Labels of the control plane's and the providers' add-on managers.
ADDON_LABELS = {
    "addonmanager.kubernetes.io/mode": "managed by the cluster's addon manager",
    "eks.amazonaws.com/component": "an EKS component; the new cluster runs its own",
    "components.gke.io/component-name": "a GKE component; the new cluster runs its own",
}
# What the control plane and the providers' built-in add-ons create in kube-system without such a label,
# per kind (EKS, GKE, kubeadm). The rest of kube-system is planned for replay and listed for review.
KUBE_SYSTEM_BUILTIN = {
    "ConfigMap": {"extension-apiserver-authentication", "kube-proxy", "kube-proxy-config", "coredns", "aws-auth",
                  "amazon-vpc-cni", "kubeadm-config", "kubelet-config", "kube-dns", "kube-dns-autoscaler",
                  "cluster-autoscaler-status", "kube-apiserver-legacy-service-account-token-tracking",
                  "ingress-uid", "gke-common-webhook-lock", "cluster-kubestore", "clustermetrics"},
    "ServiceAccount": {"coredns", "kube-proxy", "aws-node", "kube-dns", "kube-dns-autoscaler",
                       "eks-vpc-resource-controller",
                       "eks-pod-identity-agent", "ebs-csi-controller-sa", "ebs-csi-node-sa", "konnectivity-agent",
                       "metadata-agent",
                       # kube-controller-manager's own, one per controller (--use-service-account-credentials)
                       *(f"{c}-controller" for c in (
                           "attachdetach", "certificate", "clusterrole-aggregation", "cronjob", "daemon-set",
                           "deployment", "disruption", "endpoint", "endpointslice", "endpointslicemirroring",
                           "ephemeral-volume", "expand", "job", "namespace", "node", "pv-protection",
                           "pvc-protection", "replicaset", "replication", "resourcequota", "service-account",
                           "service", "statefulset", "ttl-after-finished", "ttl", "route",
                           "validatingadmissionpolicy-status", "selinux-warning")),
                       "generic-garbage-collector", "horizontal-pod-autoscaler", "pod-garbage-collector",
                       "persistent-volume-binder", "root-ca-cert-publisher", "token-cleaner", "bootstrap-signer",
                       "cloud-provider", "legacy-service-account-token-cleaner"},
    "Deployment": {"coredns", "kube-dns", "kube-dns-autoscaler", "ebs-csi-controller", "l7-default-backend",
                   "konnectivity-agent", "event-exporter-gke"},
    "DaemonSet": {"kube-proxy", "aws-node", "ebs-csi-node", "eks-pod-identity-agent", "fluentbit-gke",
                  "gke-metrics-agent", "pdcsi-node", "konnectivity-agent", "ip-masq-agent"},
    "Service": {"kube-dns", "default-http-backend", "eks-extension-metrics-api"},
    "PodDisruptionBudget": {"coredns", "kube-dns", "konnectivity-agent"},
}
# Control-plane RBAC without the rbac-defaults label: provider prefixes, and kubeadm's and the DNS add-ons'.
_BUILTIN_RBAC_PREFIXES = ("eks:", "gce:", "kubeadm:", "cloud-provider:")
_BUILTIN_RBAC_NAMES = {"system:coredns", "system:kube-dns", "system:kube-proxy", "system:aws-cloud-provider",
                       "aws-node", "vpc-resource-controller-role"}
_RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
_LEADER = "control-plane.alpha.kubernetes.io/leader"
# Kinds that describe the old cluster itself, or that the new cluster's control plane writes.
NEVER_COPIED = {
    ("", "Node"): "nodes belong to the old cluster",
    ("", "Event"): "events are history, not configuration",
    ("events.k8s.io", "Event"): "events are history, not configuration",
    ("storage.k8s.io", "CSINode"): "written by each node's kubelet",
    ("storage.k8s.io", "VolumeAttachment"): "attachments of old nodes",
    ("", "ComponentStatus"): "old control plane's health",
    ("coordination.k8s.io", "Lease"): "leader-election and heartbeat leases are runtime state",
    ("", "Binding"): "scheduling decisions",
    ("certificates.k8s.io", "CertificateSigningRequest"): "requests of old nodes and clients",
    ("apps", "ControllerRevision"): "history kept by the old controllers",
    ("metrics.k8s.io", "PodMetrics"): "live metrics",
    ("metrics.k8s.io", "NodeMetrics"): "live metrics",
    # Records of the old cluster's claims (and their cloud snapshots): claims carry data by replay.volumes.
    ("snapshot.storage.k8s.io", "VolumeSnapshot"): "snapshots of the old cluster's claims",
    ("snapshot.storage.k8s.io", "VolumeSnapshotContent"): "bound to the old cluster's snapshots",
}
_TOKEN_SECRET = "kubernetes.io/service-account-token"


@dataclass(frozen=True)
class Skipped:
    key: Key
    reason: str


@dataclass
class Exported:
    objects: list[Obj] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    discovery: Discovery = field(default_factory=Discovery)
    warnings: list[str] = field(default_factory=list)
    # Served kinds that are not even listed ("Kind.group" -> reason): nodes, events, the config's kind filter.
    skipped_kinds: dict[str, str] = field(default_factory=dict)
    # Every PersistentVolume, replayed or not: the volume inventory joins claims with them.
    volumes: list[Obj] = field(default_factory=list)


# --- skip rules (pure) --------------------------------------------------------------------------------


def _completed_pod(obj: Obj) -> str | None:
    if obj.get("kind") == "Pod" and dig(obj, "status", "phase") in ("Succeeded", "Failed"):
        return f"completed pod ({dig(obj, 'status', 'phase')})"
    if obj.get("kind") == "Pod" and "kubernetes.io/config.mirror" in annotations_of(obj):
        return "mirror pod of a static pod on an old node"
    return None


def _completed_job(obj: Obj) -> str | None:
    if obj.get("kind") != "Job":
        return None
    for c in dig(obj, "status", "conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return f"Job already ran ({c['type']}); re-running it on the new cluster is not idempotent"
    return None


def skip_reason(obj: Obj, *, include_system_namespaces: bool = False) -> str | None:
    """Why `obj` must not be copied, or None. The order puts the most telling reason first."""
    key = key_of(obj)
    if (key.group, key.kind) in NEVER_COPIED:
        return NEVER_COPIED[(key.group, key.kind)]
    owners = dig(obj, "metadata", "ownerReferences") or []
    if owners:
        o = owners[0]
        return f"owned by {o.get('kind')}/{o.get('name')}; its controller recreates it"
    if not include_system_namespaces and key.namespace in SKIPPED_NAMESPACES:
        return "system namespace (set replay.include_system_namespaces to copy it)"
    if key.kind == "Namespace" and key.group == "" and key.name in ("default", *SYSTEM_NAMESPACES):
        return "exists on every cluster"
    labels = labels_of(obj)
    for label, why in ADDON_LABELS.items():
        if label in labels:
            return why
    builtin = _kube_system_builtin(key) if key.namespace == "kube-system" and not include_system_namespaces else None
    if builtin:
        return builtin
    if key.kind == "Service" and key.group == "" and (key.namespace, key.name) == ("default", "kubernetes"):
        return "the API server's own service"
    if key.kind == "ConfigMap" and key.name == "kube-root-ca.crt":
        return "published in every namespace by the new cluster"
    if key.kind == "ServiceAccount" and key.name == "default":
        return "created in every namespace by the new cluster"
    if key.kind == "Secret" and obj.get("type") == _TOKEN_SECRET:
        return "service-account token; the new cluster issues its own"
    if key.kind in _RBAC_KINDS and key.group == "rbac.authorization.k8s.io" and (
            labels.get("kubernetes.io/bootstrapping") == "rbac-defaults" or key.name in _BUILTIN_RBAC_NAMES
            or key.name.startswith(_BUILTIN_RBAC_PREFIXES)):
        return "built-in RBAC of the control plane"
    if key.kind == "Secret" and obj.get("type") == "bootstrap.kubernetes.io/token":
        return "bootstrap token of the old cluster's nodes"
    if key.kind in ("Endpoints", "ConfigMap") and _LEADER in annotations_of(obj):
        return "leader-election record of the old control plane"
    if key.kind == "PriorityClass" and key.name.startswith("system-"):
        return "built-in priority class"
    if key.kind == "APIService" and labels_of(obj).get("kube-aggregator.kubernetes.io/automanaged"):
        return "registered automatically by the API server"
    if key.kind == "PersistentVolume" and "pv.kubernetes.io/provisioned-by" in annotations_of(obj) and \
            dig(obj, "spec", "claimRef"):
        return "dynamically provisioned; its claim's data is carried by its replay.volumes strategy"
    if key.kind == "Endpoints" and "endpoints.kubernetes.io/last-change-trigger-time" in annotations_of(obj):
        return "maintained by the endpoints controller for a service with a selector"
    return _completed_pod(obj) or _completed_job(obj)


def _kube_system_builtin(key: Key) -> str | None:
    names = KUBE_SYSTEM_BUILTIN.get(key.kind)
    if names and key.name in names:
        return f"kube-system {key.kind} the new cluster's control plane or provider creates"
    return None


def reason_group(reason: str) -> str:
    """A skip reason without the object-specific part, for counts per reason: "owned by ReplicaSet/web-5d8;
    …" becomes "owned by a ReplicaSet; …"."""
    return re.sub(r"^owned by (\w+)/\S+;", r"owned by a \1;", reason)


def is_owned_reason(reason: str) -> bool:
    """Objects skipped for having an owner come and go with their controllers (pods, ReplicaSets)."""
    return reason.startswith("owned by ")


# --- selection (pure) ---------------------------------------------------------------------------------


_SELECTOR = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*(\S*))?\s*$")


def label_matches(expr: str, lbls: dict[str, str]) -> bool:
    """One selector term: `k=v`, `k==v`, `k!=v`, `k` (exists), `!k` (absent). Comma means and."""
    for term in expr.split(","):
        m = _SELECTOR.match(term)
        if not m:
            raise ValueError(f"label selector {term!r} is not of the form k=v, k!=v, k or !k")
        neg, k, op, v = m.groups()
        if op in ("=", "=="):
            ok = lbls.get(k) == v
        elif op == "!=":
            ok = lbls.get(k) != v
        else:
            ok = k in lbls
        if ok == bool(neg):
            return False
    return True


def _kind_matches(pattern: str, key: Key, plural: str) -> bool:
    p = pattern.lower()
    names = {key.kind.lower(), plural.lower(), f"{key.kind}.{key.group}".lower(), f"{plural}.{key.group}".lower()}
    return any(fnmatchcase(n, p) for n in names)


def _selected(sel: Selection, test: Callable[[str], bool]) -> str | None:
    if sel.include and not any(test(p) for p in sel.include):
        return "not in the include list"
    hit = next((p for p in sel.exclude if test(p)), None)
    return f"excluded by {hit!r}" if hit is not None else None


def select_reason(obj: Obj, cfg: Replay, plural: str = "") -> str | None:
    """Why the configuration leaves `obj` out, or None."""
    key = key_of(obj)
    ns = key.name if key.kind == "Namespace" and key.group == "" else key.namespace
    if ns:  # cluster-scoped objects are not in any namespace, so namespace lists do not filter them
        why = _selected(cfg.namespaces, lambda p: fnmatchcase(ns, p))
        if why:
            return f"namespace {why}"
    why = _selected(cfg.kinds, lambda p: _kind_matches(p, key, plural))
    if why:
        return f"kind {why}"
    why = _selected(cfg.labels, lambda p: label_matches(p, labels_of(obj)))
    if why:
        return f"labels {why}"
    return None


def classify(obj: Obj, cfg: Replay, plural: str = "") -> str | None:
    return skip_reason(obj, include_system_namespaces=cfg.include_system_namespaces) or select_reason(obj, cfg, plural)


# --- listing ------------------------------------------------------------------------------------------


LIST_WORKERS = 4  # types listed at once: a busy API server answers several lists faster than one after another


def iter_objects(kube: KubeClient, types: list[ResourceType],
                 warnings: list[str]) -> Iterator[tuple[ResourceType, Obj]]:
    """Every object of `types`, in type order. Types are listed LIST_WORKERS at a time."""
    def fetch(t: ResourceType) -> tuple[list[Obj], str | None]:
        try:
            return list(kube.list_pages(t.path())), None
        except KubeApiError as e:
            if e.status in (403, 404, 405):
                return [], f"cannot list {t.plural}.{t.group or 'core'}: {e.summary()}"
            raise

    with ThreadPoolExecutor(max_workers=LIST_WORKERS, thread_name_prefix="export") as pool:
        for t, (objs, warning) in zip(types, pool.map(fetch, types), strict=True):
            if warning:
                warnings.append(warning)
            for obj in objs:
                yield t, obj


def _kind_skipped(t: ResourceType, cfg: Replay) -> str | None:
    """Why a whole type is not listed (a big cluster's events or pods cost real time), or None."""
    key = Key(t.group, t.kind, "", "")
    if (t.group, t.kind) in NEVER_COPIED:
        return NEVER_COPIED[(t.group, t.kind)]
    why = _selected(cfg.kinds, lambda p: _kind_matches(p, key, t.plural))
    return f"kind {why}" if why else None


def export(kube: KubeClient, cfg: Replay, discovery: Discovery | None = None) -> Exported:
    d = discovery or discover(kube)
    out = Exported(discovery=d)
    out.warnings.extend(f"API {gv} is unavailable: {why}" for gv, why in d.unavailable.items())
    types = []
    for t in listable(d):
        why = _kind_skipped(t, cfg)
        if why:
            out.skipped_kinds[f"{t.kind}.{t.group}" if t.group else t.kind] = why
        else:
            types.append(t)
    for t, obj in iter_objects(kube, types, out.warnings):
        if t.kind == "PersistentVolume" and not t.group:
            out.volumes.append(obj)
        why = classify(obj, cfg, t.plural)
        if why:
            out.skipped.append(Skipped(key_of(obj), why))
        else:
            out.objects.append(obj)
    return out
