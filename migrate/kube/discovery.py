"""Which resource types a cluster serves: core, every API group (aggregated APIs included), CRDs."""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate.kube.client import KubeApiError, KubeClient, object_path
from migrate.kube.objects import group_of


@dataclass(frozen=True)
class ResourceType:
    api_version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def group(self) -> str:
        return group_of(self.api_version)

    def path(self, namespace: str = "", name: str = "") -> str:
        return object_path(self.api_version, self.plural, namespace if self.namespaced else "", name)


@dataclass
class Discovery:
    types: list[ResourceType] = field(default_factory=list)
    # Groups whose discovery failed (e.g. an aggregated API whose backend is down): reported, not fatal.
    unavailable: dict[str, str] = field(default_factory=dict)

    def by_kind(self) -> dict[tuple[str, str], ResourceType]:
        """(group, kind) -> type; the preferred version wins, as `kubectl get` resolves it."""
        out: dict[tuple[str, str], ResourceType] = {}
        for t in self.types:
            out.setdefault((t.group, t.kind), t)
        return out

    def find(self, api_version: str, kind: str) -> ResourceType | None:
        for t in self.types:
            if t.api_version == api_version and t.kind == kind:
                return t
        return self.by_kind().get((group_of(api_version), kind))


def _resources(kube: KubeClient, path: str, api_version: str) -> list[ResourceType]:
    doc = kube.request("GET", path)
    out = []
    for r in doc.get("resources") or []:
        if "/" in str(r.get("name", "")):
            continue  # subresources: status, scale, log, ...
        out.append(ResourceType(api_version, str(r["kind"]), str(r["name"]), bool(r.get("namespaced")),
                                frozenset(r.get("verbs") or ())))
    return out


def discover(kube: KubeClient) -> Discovery:
    """Preferred version of every group first, then the other versions (so `find` resolves any apiVersion)."""
    d = Discovery()
    for v in kube.request("GET", "/api").get("versions") or ["v1"]:
        d.types.extend(_resources(kube, f"/api/{v}", v))
    groups = kube.request("GET", "/apis").get("groups") or []
    later: list[ResourceType] = []
    for g in groups:
        preferred = (g.get("preferredVersion") or {}).get("groupVersion")
        for v in g.get("versions") or []:
            gv = v.get("groupVersion")
            try:
                types = _resources(kube, f"/apis/{gv}", gv)
            except KubeApiError as e:
                if e.status in (0, 429) or e.status >= 500 or e.status == 404:
                    d.unavailable[gv] = e.summary()
                    continue
                raise
            (d.types if gv == preferred else later).extend(types)
    d.types.extend(later)
    return d


def listable(d: Discovery) -> list[ResourceType]:
    """One type per (group, kind), in its preferred version, that can be listed and created."""
    seen: set[tuple[str, str]] = set()
    out = []
    for t in d.types:
        if (t.group, t.kind) in seen or not {"list", "create"} <= t.verbs:
            continue
        seen.add((t.group, t.kind))
        out.append(t)
    return out
