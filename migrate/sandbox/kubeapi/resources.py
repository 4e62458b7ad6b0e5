"""The table of API resources the emulator serves, and the registry that adds CRD-defined ones."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    singular: str = ""
    subresources: tuple[str, ...] = ()  # "status", "scale"
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()
    # CRD-defined kinds carry their openAPIV3Schema; built-ins use kubernetes-validate's schemas.
    crd_schema: dict | None = field(default=None, hash=False, compare=False)
    # For CRDs: the .spec.scope "scale" subresource paths.
    scale_paths: tuple[str, str] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def is_custom(self) -> bool:
        return self.crd_schema is not None

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    def qualified(self) -> str:
        """`deployments.apps` style name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def kind_qualified(self) -> str:
        """`Deployment.apps` style name used in 422 messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


def _r(group: str, version: str, plural: str, kind: str, namespaced: bool = True,
       short: tuple[str, ...] = (), sub: tuple[str, ...] = ("status",), verbs: tuple[str, ...] = ALL_VERBS,
       cats: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, short, kind.lower(), sub, verbs, cats)


_NOSTATUS: tuple[str, ...] = ()
_ALL = ("all",)

# Built-in kinds the toolkit exports, replays or waits for (see reference/replay.md), with the
# shortNames and scopes of a real 1.29 server so that kubectl resolves `deploy`, `svc`, ... the same way.
BUILTIN: tuple[ResourceType, ...] = (
    _r("", "v1", "namespaces", "Namespace", False, ("ns",), verbs=(
        "create", "delete", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "pods", "Pod", True, ("po",), cats=_ALL),
    _r("", "v1", "services", "Service", True, ("svc",), cats=_ALL),
    _r("", "v1", "configmaps", "ConfigMap", True, ("cm",), _NOSTATUS),
    _r("", "v1", "secrets", "Secret", True, (), _NOSTATUS),
    _r("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",), _NOSTATUS),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
    _r("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",)),
    _r("", "v1", "endpoints", "Endpoints", True, ("ep",), _NOSTATUS),
    _r("", "v1", "events", "Event", True, ("ev",), _NOSTATUS),
    _r("", "v1", "nodes", "Node", False, ("no",)),
    _r("", "v1", "limitranges", "LimitRange", True, ("limits",), _NOSTATUS),
    _r("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",)),
    _r("", "v1", "replicationcontrollers", "ReplicationController", True, ("rc",), ("status", "scale"),
       cats=_ALL),
    _r("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale"), cats=_ALL),
    _r("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale"), cats=_ALL),
    _r("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale"), cats=_ALL),
    _r("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), cats=_ALL),
    _r("apps", "v1", "controllerrevisions", "ControllerRevision", True, (), _NOSTATUS),
    _r("batch", "v1", "jobs", "Job", True, (), cats=_ALL),
    _r("batch", "v1", "cronjobs", "CronJob", True, ("cj",), cats=_ALL),
    _r("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",), cats=_ALL),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",)),
    _r("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",)),
    _r("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False, (), _NOSTATUS),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",), _NOSTATUS),
    _r("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, (), _NOSTATUS),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role", True, (), _NOSTATUS),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, (), _NOSTATUS),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, (), _NOSTATUS),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, (), _NOSTATUS),
    _r("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",), _NOSTATUS),
    _r("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",), _NOSTATUS),
    _r("coordination.k8s.io", "v1", "leases", "Lease", True, (), _NOSTATUS),
    _r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       ("crd", "crds")),
    _r("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
       "ValidatingWebhookConfiguration", False, (), _NOSTATUS),
    _r("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
       "MutatingWebhookConfiguration", False, (), _NOSTATUS),
    _r("apiregistration.k8s.io", "v1", "apiservices", "APIService", False),
    # Reviews: answered at once, never stored (`kubectl auth can-i`, `kubectl auth whoami`).
    _r("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, (), _NOSTATUS,
       ("create",)),
    _r("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False, (), _NOSTATUS,
       ("create",)),
    _r("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False, (), _NOSTATUS,
       ("create",)),
    _r("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", True, (), _NOSTATUS,
       ("create",)),
    _r("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, (), _NOSTATUS,
       ("create",)),
)
REVIEW_KINDS = frozenset({"SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview",
                          "LocalSubjectAccessReview", "SelfSubjectReview"})


class Registry:
    """Which (group, version, plural) are served. CRDs add and remove entries at run time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        # crd name -> keys it registered, so deleting the CRD removes exactly those.
        self._by_crd: dict[str, list[tuple[str, str, str]]] = {}
        for rt in BUILTIN:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rt in self._types.values():
                if rt.group == group and rt.version == version and rt.kind == kind:
                    return rt
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions in preference order (first is preferred)."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for rt in self._types.values():
                versions = out.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        return out

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        with self._lock:
            for key in self._by_crd.pop(crd_name, []):
                self._types.pop(key, None)
            keys = []
            for rt in types:
                key = (rt.group, rt.version, rt.plural)
                self._types[key] = rt
                keys.append(key)
            self._by_crd[crd_name] = keys

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        with self._lock:
            return [self._types.pop(k) for k in self._by_crd.pop(crd_name, []) if k in self._types]
