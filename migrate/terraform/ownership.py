"""Which addresses belong to the cluster (rebuilt in the copy) and which are shared.

Cluster-owned: the cluster resource(s) (``aws_eks_cluster``, ``google_container_cluster``,
or addresses named in config), everything that depends on them (node groups,
add-ons, OIDC provider, IRSA roles ...), every ``kubernetes_*``/``helm_*``/``kubectl_*``
resource, and every resource served by a provider configured from the cluster
(found in the root module's HCL). Everything else is shared (VPC, zones, IAM ...).
Explicit config lists win over all of that.

``read_root_module`` does the file I/O; ``classify`` is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.errors import ConfigError, StateError
from migrate.terraform.address import parse_address
from migrate.terraform.state import State

CLUSTER_TYPES = frozenset({"aws_eks_cluster", "google_container_cluster", "azurerm_kubernetes_cluster"})
K8S_TYPE_PREFIXES = ("kubernetes_", "helm_", "kubectl_")
_CLUSTER_MODULE_SOURCES = re.compile(r"(^|/)(eks|gke)([/_-]|$)|kubernetes-engine", re.I)
# References to a cluster: the cluster resource, its data source twins, or a cluster module's outputs.
_REF = re.compile(r"\b(?:data\.)?(?:aws_eks_cluster(?:_auth)?|google_container_cluster|google_client_config"
                  r"|azurerm_kubernetes_cluster)\.[A-Za-z0-9_-]+|\bmodule\.([A-Za-z0-9_-]+)\.")
_STATE_PROVIDER = re.compile(r'provider\["(?:[^"]*/)?([^"/]+)"\](?:\.([A-Za-z0-9_-]+))?$')


@dataclass(frozen=True)
class RootFacts:
    """What the root module's HCL says about the cluster."""

    cluster_resources: tuple[str, ...] = ()      # e.g. aws_eks_cluster.this
    cluster_modules: tuple[str, ...] = ()        # module calls whose source looks like EKS/GKE
    cluster_providers: tuple[str, ...] = ()      # provider configs fed by the cluster: "kubernetes", "helm.blue"
    workspace_named: tuple[str, ...] = ()        # resources whose arguments use terraform.workspace
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ownership:
    """Plain result for the planner: two disjoint address lists and why."""

    cluster: tuple[str, ...]
    shared: tuple[str, ...]
    roots: tuple[str, ...]
    reasons: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": list(self.cluster), "shared": list(self.shared), "roots": list(self.roots),
                "reasons": dict(self.reasons), "warnings": list(self.warnings)}


def _walk_strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v)


def _refers_to_cluster(value: Any, cluster_modules: set[str]) -> bool:
    for text in _walk_strings(value):
        for m in _REF.finditer(text):
            if m.group(1) is None or m.group(1) in cluster_modules:
                return True
    return False


def parse_hcl(text: str, where: str) -> dict[str, Any]:
    import hcl2

    opts = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    try:
        data = hcl2.loads(text, serialization_options=opts)
    except Exception as e:  # lark raises several unrelated types
        raise ConfigError(f"cannot parse HCL: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                          where=where, hint="run `terraform validate` in that directory") from e
    return data if isinstance(data, dict) else {}


def facts_from_hcl(docs: Mapping[str, dict[str, Any]], *, extra_cluster_modules: Iterable[str] = ()) -> RootFacts:
    """Pure part of ``read_root_module``: ``docs`` maps file name -> parsed HCL."""
    resources: list[str] = []
    modules: set[str] = set(extra_cluster_modules)
    providers: list[str] = []
    ws_named: list[str] = []
    for doc in docs.values():
        for block in doc.get("module", []):
            for name, body in block.items():
                if _CLUSTER_MODULE_SOURCES.search(str((body or {}).get("source", ""))):
                    modules.add(name)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in (named or {}).items():
                    if rtype in CLUSTER_TYPES:
                        resources.append(f"{rtype}.{name}")
                    if any("terraform.workspace" in s for s in _walk_strings(body)):
                        ws_named.append(f"{rtype}.{name}")
    for doc in docs.values():
        for block in doc.get("provider", []):
            for ptype, body in block.items():
                body = body or {}
                if _refers_to_cluster(body, modules):
                    alias = body.get("alias")
                    providers.append(f"{ptype}.{alias}" if alias else ptype)
    return RootFacts(tuple(sorted(set(resources))), tuple(sorted(modules)), tuple(sorted(set(providers))),
                     tuple(sorted(set(ws_named))), tuple(sorted(docs)))


def read_root_module(directory: str | Path, *, extra_cluster_modules: Iterable[str] = ()) -> RootFacts:
    """Parse every ``*.tf`` file of the environment's root module."""
    root = Path(directory)
    files = sorted(root.glob("*.tf"))
    if not files:
        raise ConfigError("no *.tf files in the root module", where=str(root),
                          hint="point the environment's terraform directory at its root module")
    docs = {str(f): parse_hcl(f.read_text(encoding="utf-8"), str(f)) for f in files}
    return facts_from_hcl(docs, extra_cluster_modules=extra_cluster_modules)


def _provider_key(provider: str) -> str | None:
    """``provider["registry.terraform.io/hashicorp/helm"].blue`` -> ``helm.blue``."""
    m = _STATE_PROVIDER.search(provider or "")
    if not m:
        return None
    return f"{m.group(1)}.{m.group(2)}" if m.group(2) else m.group(1)


def classify(
    state: State,
    facts: RootFacts | None = None,
    *,
    cluster: Iterable[str] = (),
    shared: Iterable[str] = (),
    include_cluster_modules: bool = False,
    where: str = "ownership overrides",
) -> Ownership:
    """Split the state's addresses into cluster-owned and shared. Pure."""
    facts = facts or RootFacts()
    forced_cluster, forced_shared = list(cluster), list(shared)
    try:
        fc = state.select(forced_cluster, missing_ok=False) if forced_cluster else []
        fs = set(state.select(forced_shared, missing_ok=False)) if forced_shared else set()
    except StateError as e:
        raise ConfigError(e.what, where=where, hint="list addresses as `terraform state list` prints them") from e
    both = sorted(set(fc) & fs)
    if both:
        raise ConfigError(f"listed as both cluster and shared: {', '.join(both)}", where=where,
                          hint="keep each address in one list")

    reasons: dict[str, str] = {}
    roots: list[str] = []
    for inst in state.instances():
        addr = str(inst.address)
        if inst.address.type in CLUSTER_TYPES and inst.address.mode == "managed":
            roots.append(addr)
            reasons.setdefault(addr, f"cluster resource ({inst.address.type})")
    roots += [a for a in state.select(facts.cluster_resources) if a not in roots]
    if include_cluster_modules:
        for a in state.select([f"module.{m}" for m in facts.cluster_modules]):
            reasons.setdefault(a, "inside a cluster module")
            roots.append(a)
    for a in fc:
        reasons[a] = "listed as cluster-owned in config"
        if a not in roots:
            roots.append(a)

    owned = set(state.dependents(roots)) if roots else set()
    for a in owned:
        reasons.setdefault(a, "depends on the cluster")
    cluster_providers = set(facts.cluster_providers)
    for inst in state.instances():
        addr = str(inst.address)
        rtype = inst.address.type or ""
        pkey = _provider_key(inst.resource.get("provider", ""))
        if pkey and pkey in cluster_providers:
            owned.add(addr)
            reasons.setdefault(addr, f"uses provider {pkey}, configured from the cluster")
        if rtype.startswith(K8S_TYPE_PREFIXES):
            owned.add(addr)
            reasons.setdefault(addr, "Kubernetes/Helm object inside the cluster")
    # Dependents of cluster-provider resources go with them.
    owned = set(state.dependents(sorted(owned))) if owned else set()
    for a in owned:
        reasons.setdefault(a, "depends on the cluster")

    warnings: list[str] = []
    for a in sorted(owned & fs):
        warnings.append(f"{a} is listed as shared but depends on the cluster ({reasons.get(a)}); "
                        "the copy will keep it and it will point at the old cluster")
        reasons[a] = "listed as shared in config"
    owned -= fs
    owned |= set(fc)
    ordered = state.addresses()
    shared_out = [a for a in ordered if a not in owned]
    for a in shared_out:
        if a in fs:
            reasons[a] = "listed as shared in config"
    ws_named = set(facts.workspace_named)
    for a in shared_out:
        cfg = parse_address(a)
        if not cfg.module and f"{cfg.type}.{cfg.name}" in ws_named:
            warnings.append(f"{a} uses terraform.workspace in its arguments and stays in both states: "
                            "the copy's plan will want to replace it (the plan gate refuses that)")
    if not roots:
        warnings.append("no cluster resource found in the state; nothing is cluster-owned by detection "
                        "(list the cluster's addresses in config)")
    return Ownership(tuple(a for a in ordered if a in owned), tuple(shared_out), tuple(roots), reasons,
                     tuple(warnings))
