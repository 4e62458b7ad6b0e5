"""Which addresses belong to the cluster being migrated (left out of the copy, destroyed at decommission)
and which are shared (kept in both states until the handover; the copy's plan may not touch them).

The model, per address (docs/terraform.md):

* ``cluster``: the one cluster resource whose ``name`` is ``clusters.old.name``;
* ``cluster-module``: inside the module instance that holds it, when that module is a known cluster
  module (by source: terraform-aws-modules/eks, aws-ia eks-blueprints, terraform-google-modules
  kubernetes-engine, cloudposse eks-cluster, a local ``eks``/``gke`` directory, or the config's globs);
* ``dependent``: depends on a cluster-owned address, directly or through others;
* ``exclusive``: a cluster-owned address depends on it and nothing else does (what only qualifies it,
  such as a role's policy attachments or a security group's rules, goes with it). Networks, subnets,
  DNS zones and service enablement are shared by kind and never exclusive. Only with ``provisioner:
  terraform``: the API provisioner reuses the old cluster's roles, subnets and security groups for the
  new one, so there they stay shared;
* ``provider``: served by a provider configured from the cluster (0.12 ``provider.kubernetes`` and 0.13+
  ``provider["…/kubernetes"]`` forms), or a Kubernetes/Helm object in a workspace with one cluster;
* ``reads``: a data source that reads the cluster (by its ``name``), depends on it, or feeds a provider
  configured from it (``google_client_config``);
* ``override``: ``terraform.ownership.cluster`` / ``.shared``;
* ``shared``: everything else.

The reference graph joins the state's ``dependencies`` with the root module's references (python-hcl2),
since many states lack complete ``dependencies``; where the two disagree the result says so.
``classify`` is pure; the HCL is read by ``migrate.terraform.hclroot``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrate.errors import ConfigError, StateError
from migrate.terraform.address import ModuleStep, parse_address
from migrate.terraform.hclroot import RootFacts, cluster_module_kind, parse_hcl, read_root_module
from migrate.terraform.state import Instance, State, parse_module

__all__ = ["CATEGORIES", "CLUSTER_TYPES", "Ownership", "RootFacts", "classify", "parse_hcl", "read_root_module"]

CLUSTER_TYPES = frozenset({"aws_eks_cluster", "google_container_cluster", "azurerm_kubernetes_cluster"})
# Data sources that read one cluster, matched to it by their name attribute.
_READS_TYPES = frozenset({"aws_eks_cluster", "aws_eks_cluster_auth", "google_container_cluster",
                          "azurerm_kubernetes_cluster", "aws_eks_node_group", "aws_eks_node_groups",
                          "aws_eks_addon", "aws_eks_access_entry"})
K8S_TYPE_PREFIXES = ("kubernetes_", "helm_", "kubectl_")
# Shared by nature, never an exclusive dependency even when only the cluster uses them: networks and
# subnets, DNS zones, what enables a service for a whole account or project, and key rings (GCP cannot
# delete those). Only a dependency on the cluster, or an override, makes one cluster-owned.
SHARED_BY_KIND = frozenset({
    "aws_vpc", "aws_subnet", "aws_route53_zone", "aws_iam_service_linked_role", "aws_vpc_ipv4_cidr_block_association",
    "google_compute_network", "google_compute_subnetwork", "google_dns_managed_zone", "google_project",
    "google_project_service", "google_project_services", "google_folder", "google_kms_key_ring",
    "azurerm_virtual_network", "azurerm_subnet", "azurerm_resource_group", "azurerm_dns_zone",
})
# Types that only qualify another object (a role's policy attachment, a group's rule, a key's alias, an IAM
# binding on an account): when nothing else uses one, it goes where the object it qualifies goes.
_SATELLITE_TYPE = re.compile(r"(_attachment|_association|_rule|_iam_member|_iam_binding|_iam_policy|_alias"
                             r"|_role_policy|_tag|_tags)$")
CATEGORIES = ("cluster", "cluster-module", "dependent", "exclusive", "provider", "reads", "override", "shared")
# provider["registry.terraform.io/hashicorp/helm"].blue (0.13+) and provider.helm.blue (0.12), root only.
_STATE_PROVIDER = re.compile(r'^(?:provider\["(?:[^"]*/)?([^"/]+)"\]|provider\.([A-Za-z0-9_-]+))'
                             r'(?:\.([A-Za-z0-9_-]+))?$')


@dataclass(frozen=True)
class Ownership:
    """Plain result for the planner: two disjoint address lists, and per address its category and why."""

    cluster: tuple[str, ...]
    shared: tuple[str, ...]
    roots: tuple[str, ...]
    reasons: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    categories: Mapping[str, str] = field(default_factory=dict)
    disagreements: tuple[str, ...] = ()
    clusters_found: tuple[tuple[str, str], ...] = ()   # (address, name) of every cluster in the state
    cluster_module: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": list(self.cluster), "shared": list(self.shared), "roots": list(self.roots),
                "reasons": dict(self.reasons), "categories": dict(self.categories),
                "warnings": list(self.warnings), "disagreements": list(self.disagreements),
                "clusters_found": [{"address": a, "name": n} for a, n in self.clusters_found],
                "cluster_module": self.cluster_module}


def provider_key(provider: str) -> str | None:
    """``provider["registry.terraform.io/hashicorp/helm"].blue`` or ``provider.helm.blue`` -> ``helm.blue``;
    None for a provider configured inside a module (``module.x.provider[...]``)."""
    m = _STATE_PROVIDER.match(provider or "")
    if not m:
        return None
    ptype = m.group(1) or m.group(2)
    return f"{ptype}.{m.group(3)}" if m.group(3) else ptype


def _cluster_name(attrs: Mapping[str, Any]) -> str:
    # aws_eks_cluster's id is its name; google_container_cluster's ends with it (projects/…/clusters/<name>).
    return str(attrs.get("name") or attrs.get("cluster_name") or str(attrs.get("id") or "").rsplit("/", 1)[-1])


# ---- the reference graph ---------------------------------------------------------------------------


class _Graph:
    """Resources of the state as nodes (one per resource, all its instances), plus hub nodes standing for a
    module call's arguments and outputs, so that a module-level reference costs |X| + |Y| edges, not |X|·|Y|."""

    def __init__(self, state: State, facts: RootFacts) -> None:
        self.resources = state.resources
        self.labels: list[str] = []
        self.kinds: list[str] = []                       # managed | data | hub
        self.modules: list[tuple[ModuleStep, ...]] = []
        self.instances: list[list[Instance]] = [[] for _ in self.resources]
        self.deps: list[set[int]] = []
        for res in self.resources:
            mod = parse_module(res.get("module", ""))
            self.modules.append(mod)
            mode = res.get("mode", "managed")
            prefix = "".join(f"{s}." for s in mod)
            self.labels.append(f"{prefix}{'data.' if mode == 'data' else ''}{res['type']}.{res['name']}")
            self.kinds.append("data" if mode == "data" else "managed")
        # state.instances() walks the resources in order, so an instance's resource dict identifies its node.
        index = {id(r): i for i, r in enumerate(self.resources)}
        for inst in state.instances():
            self.instances[index[id(inst.resource)]].append(inst)
        # Instance addresses as text, formatted once: the classifier looks them up many times.
        self.names: list[list[str]] = [[str(i.address) for i in insts] for insts in self.instances]
        self.state_deps = state.dependency_edges()
        self.has_state_deps = [any(i.obj.get("dependencies") or i.obj.get("depends_on") for i in insts)
                               for insts in self.instances]
        self.deps = [set(d) for d in self.state_deps]
        self._by_root: dict[str, list[int]] = {}
        self._by_module: dict[str, list[int]] = {}
        for i in range(len(self.resources)):
            if not self.modules[i]:
                self._by_root.setdefault(self.labels[i], []).append(i)
            else:
                self._by_module.setdefault(self.modules[i][0].name, []).append(i)
        self._hub_out: dict[str, int] = {}
        self._add_config_edges(facts)
        self.rdeps: list[set[int]] = [set() for _ in self.deps]
        for a, targets in enumerate(self.deps):
            for b in targets:
                self.rdeps[b].add(a)

    def _hub(self, label: str) -> int:
        self.labels.append(label)
        self.kinds.append("hub")
        self.modules.append(())
        self.instances.append([])
        self.names.append([])
        self.deps.append(set())
        self.state_deps.append(set())
        self.has_state_deps.append(False)
        return len(self.labels) - 1

    def entity_nodes(self, address: str) -> list[int]:
        """State resources of a root-level configuration address (``module.x``: everything under it)."""
        if address.startswith("module."):
            return self._by_module.get(address[len("module."):], [])
        return self._by_root.get(address, [])

    def _targets(self, ref: str) -> list[int]:
        if ref.startswith("module."):
            name = ref[len("module."):]
            if name not in self._hub_out:
                hub = self._hub(f"module.{name}")
                self._hub_out[name] = hub
                self.deps[hub].update(self._by_module.get(name, []))
            return [self._hub_out[name]]
        return self._by_root.get(ref, [])

    def _add_config_edges(self, facts: RootFacts) -> None:
        for addr, ent in facts.entities.items():
            if not ent.refs:
                continue
            sources = self.entity_nodes(addr)
            if addr.startswith("module."):
                # Inside a module only the state can say which resources use an argument; a module-wide
                # edge is the fallback for states that record no dependencies there at all (0.12).
                if not sources or any(self.has_state_deps[n] for n in sources):
                    continue
                hub = self._hub(f"{addr} (arguments)")
                self.deps[hub] |= {t for ref in ent.refs for t in self._targets(ref)}
                for n in sources:
                    self.deps[n].add(hub)
                continue
            targets = {t for ref in ent.refs for t in self._targets(ref)}
            for n in sources:
                self.deps[n] |= targets

    def disagreements(self, facts: RootFacts) -> list[str]:
        """Root-level references the configuration makes and the state's recorded dependencies lack."""
        out: list[str] = []
        undocumented: list[str] = []
        for addr, ent in sorted(facts.entities.items()):
            if addr.startswith(("module.", "data.")):
                continue
            for n in self.entity_nodes(addr):
                managed_refs = [r for r in ent.refs if not r.startswith("data.")]
                if not managed_refs:
                    continue
                if not self.has_state_deps[n]:
                    undocumented.append(addr)
                    continue
                for ref in managed_refs:
                    want = set(self.entity_nodes(ref))
                    if want and not (want & self.state_deps[n]):
                        out.append(f"configuration: {addr} references {ref}; the state records no such "
                                   f"dependency (the configuration's reference is used)")
        if undocumented:
            out.insert(0, f"the state records no dependencies for {len(undocumented)} address(es) that reference "
                          f"others in the configuration ({', '.join(undocumented[:5])}"
                          f"{' …' if len(undocumented) > 5 else ''}); their edges come from the configuration")
        return out


# ---- classification ---------------------------------------------------------------------------------


def _select(state: State, patterns: list[str], where: str) -> list[str]:
    try:
        return state.select(patterns, missing_ok=False) if patterns else []
    except StateError as e:
        raise ConfigError(e.what, where=where, hint="list addresses as `terraform state list` prints them") from e


def _find_root(found: list[tuple[str, str]], cluster_name: str | None, forced: list[str],
               name_where: str) -> list[str]:
    """The named cluster's instance address (or the overrides' when no cluster resource has the name)."""
    listing = "; ".join(f"{a} (name {n!r})" for a, n in found) or "none"
    if cluster_name is None:
        if len(found) == 1:
            return [found[0][0]]
        if not found and forced:
            return forced
        raise ConfigError(f"the state holds {len(found)} clusters and none is named: {listing}", where=name_where,
                          hint="set clusters.old.name to the cluster to migrate")
    matches = [a for a, n in found if n == cluster_name]
    if len(matches) == 1:
        return matches
    if len(matches) > 1:
        raise ConfigError(f"{len(matches)} clusters in the state are named {cluster_name!r}: {', '.join(matches)}",
                          where=name_where, hint="list the one to migrate under terraform.ownership.cluster")
    if forced:
        return forced  # the operator names the cluster's addresses (a cluster built from other resources)
    raise ConfigError(f"no cluster named {cluster_name!r} in the state; clusters found: {listing}",
                      where=name_where, hint="set clusters.old.name to one of these, or list the cluster's address "
                      "under terraform.ownership.cluster")


class _Classifier:
    def __init__(self, g: _Graph, facts: RootFacts, *, cluster_name: str | None, exclusive: bool,
                 cluster_modules: Iterable[str], fc: list[str], fs: set[str], roots: list[str]) -> None:
        self.g = g
        self.facts = facts
        self.name = cluster_name
        self.exclusive = exclusive
        self.extra_modules = tuple(cluster_modules)
        self.fc, self.fs, self.roots = fc, fs, roots
        self.owned: dict[int, tuple[str, str]] = {}      # node -> (category, reason)
        self.queue: list[int] = []
        self._hub_users: dict[int, set[int]] = {}
        self.warnings: list[str] = []
        g = self.g
        self.blocked = {n for n in range(len(g.resources))
                        if g.names[n] and all(a in fs for a in g.names[n])}
        self.cluster_providers: set[str] = set()
        self.other_providers: set[str] = set()
        self.cluster_module: str | None = None

    # -- helpers --

    def add(self, n: int, category: str, reason: str) -> None:
        if n in self.owned or n in self.blocked:
            return
        self.owned[n] = (category, reason)
        self.queue.append(n)

    def _propagate(self) -> None:
        g = self.g
        while self.queue:
            n = self.queue.pop()
            via = g.labels[n]
            reason = f"{via} {self.owned[n][1]}" if g.kinds[n] == "hub" and via.endswith(")") else \
                f"references {via}" if g.kinds[n] == "hub" else f"depends on {via}"
            for m in g.rdeps[n]:
                if m not in self.owned:
                    self.add(m, "reads" if g.kinds[m] == "data" else "dependent", reason)

    def _users_via_hub(self, hub: int) -> set[int]:
        """The resources that may use what ``hub`` stands for (a module-wide reference), through hubs."""
        if hub in self._hub_users:
            return self._hub_users[hub]
        out: set[int] = set()
        todo, seen = [hub], {hub}
        while todo:
            for r in self.g.rdeps[todo.pop()]:
                if r in seen:
                    continue
                seen.add(r)
                if self.g.kinds[r] == "hub":
                    todo.append(r)
                else:
                    out.add(r)
        self._hub_users[hub] = out
        return out

    def _eligible(self, n: int) -> bool:
        g = self.g
        return (n not in self.owned and n not in self.blocked and g.kinds[n] != "hub"
                and g.resources[n]["type"] not in SHARED_BY_KIND)

    def exclusives(self) -> dict[int, str]:
        """The largest set of addresses that only the cluster uses: reached from cluster-owned addresses
        through precise edges (the state's dependencies, root-level references), with every user
        cluster-owned or in the set, plus leaves that hang off the set alone (a role's policy attachments).
        A module-wide reference can rule an address out, never in."""
        g, owned = self.g, self.owned
        reach: set[int] = set()
        stack = [d for n in owned for d in g.deps[n]]
        while stack:
            d = stack.pop()
            if d in reach or not self._eligible(d):
                continue
            reach.add(d)
            stack.extend(g.deps[d])

        def hangs_off(m: int, group: set[int]) -> bool:
            return (g.kinds[m] == "managed" and not g.rdeps[m] and bool(_SATELLITE_TYPE.search(g.resources[m]["type"]))
                    and bool(g.deps[m] & group)
                    and all(d in owned or d in group or g.kinds[d] == "data" for d in g.deps[m]))

        leaves = {m for m in range(len(g.resources)) if m not in reach and self._eligible(m) and hangs_off(m, reach)}
        group = reach | leaves

        def used_only_inside(x: int) -> bool:
            if x in leaves:
                return hangs_off(x, group)
            for r in g.rdeps[x]:
                users = self._users_via_hub(r) if g.kinds[r] == "hub" else {r}
                if any(u not in owned and u not in group for u in users):
                    return False
            return True

        while True:
            kept = {x for x in group if used_only_inside(x)}
            # Still reached from the cluster through what is kept (a pruned address cuts the way).
            inside: set[int] = set()
            stack = [d for n in owned for d in g.deps[n] if d in kept]
            while stack:
                d = stack.pop()
                if d not in inside and d in kept and d not in leaves:
                    inside.add(d)
                    stack.extend(g.deps[d])
            inside |= {m for m in leaves & kept if g.deps[m] & inside}
            if inside == group:
                break
            group = inside
        out = {}
        for x in sorted(group):
            users = sorted(g.labels[r] for r in g.rdeps[x] if g.kinds[r] != "hub")
            shown = ", ".join(users[:3]) + (" …" if len(users) > 3 else "")
            out[x] = f"only the cluster uses it ({shown})" if users else \
                f"hangs off {', '.join(sorted(g.labels[d] for d in g.deps[x] if d in group)[:2])}, which only " \
                "the cluster uses"
        return out

    def _providers(self) -> None:
        """Mark the provider configurations fed by the cluster, and the data sources that feed them."""
        g = self.g
        for p in self.facts.providers:
            if p.key in self.cluster_providers:
                continue
            hits = [t for ref in p.refs for t in g.entity_nodes(ref)]
            if any(t in self.owned for t in hits):
                self.cluster_providers.add(p.key)
                self.other_providers.discard(p.key)
                for ref in p.refs:
                    if ref.startswith("data."):
                        for t in g.entity_nodes(ref):
                            self.add(t, "reads", f"feeds provider {p.key}, configured from the cluster")
            elif any(g.kinds[t] != "hub" and g.resources[t]["type"] in CLUSTER_TYPES for t in hits):
                self.other_providers.add(p.key)

    def _provider_reason(self, n: int, single_cluster: bool) -> str | None:
        """Why node ``n`` is the cluster's by the provider that serves it, or None."""
        res = self.g.resources[n]
        key = provider_key(res.get("provider", ""))
        if key in self.cluster_providers:
            return f"uses provider {key}, configured from the cluster"
        if str(res["type"]).startswith(K8S_TYPE_PREFIXES) and key not in self.other_providers and single_cluster:
            return "Kubernetes/Helm object, and the workspace has one cluster"
        return None

    def _provider_members(self, single_cluster: bool) -> None:
        for n in range(len(self.g.resources)):
            why = None if n in self.owned else self._provider_reason(n, single_cluster)
            if why:
                self.add(n, "provider", why)

    # -- the run --

    def seed(self, found: list[tuple[str, str]]) -> None:
        g = self.g
        root_addrs = set(self.roots)
        for n in range(len(g.resources)):
            for inst, a in zip(g.instances[n], g.names[n], strict=True):
                if a in root_addrs:
                    if a in self.fc:
                        self.add(n, "override", "listed as cluster-owned in config")
                    else:
                        self.add(n, "cluster", f"the cluster {self.name or ''!r} ({inst.address.type})")
        self._seed_module(found)
        if self.name:
            for n in range(len(g.resources)):
                res = g.resources[n]
                if g.kinds[n] == "data" and res["type"] in _READS_TYPES and any(
                        self.name in (_cluster_name(i.obj.get("attributes") or {}),
                                      str((i.obj.get("attributes") or {}).get("id", "")))
                        for i in g.instances[n]):
                    self.add(n, "reads", f"data source reading cluster {self.name!r}")
        fc = set(self.fc)
        for n in range(len(g.resources)):
            if g.names[n] and all(a in fc for a in g.names[n]):
                self.add(n, "override", "listed as cluster-owned in config")

    def _seed_module(self, found: list[tuple[str, str]]) -> None:
        g = self.g
        if len(self.roots) != 1:
            return
        root = parse_address(self.roots[0])
        if not root.module:
            return
        for k in range(1, len(root.module) + 1):
            path = ".".join(s.name for s in root.module[:k])
            source = self.facts.module_sources.get(path)
            kind = cluster_module_kind(source, self.extra_modules) if source else None
            if kind is None:
                continue
            prefix = root.module[:k]
            mod_addr = ".".join(str(s) for s in prefix)
            others = [a for a, _ in found if a != self.roots[0] and parse_address(a).module[:k] == prefix]
            if others:
                self.warnings.append(f"{mod_addr} holds other clusters too ({', '.join(others)}); its contents "
                                     "are classified one by one")
                return
            self.cluster_module = mod_addr
            for n in range(len(g.resources)):
                if g.modules[n][:k] == prefix:
                    self.add(n, "cluster-module", f"in {mod_addr} ({kind}), the module that holds the cluster")
            return
        self.warnings.append(f"the source of {'.'.join(str(s) for s in root.module)} is not a known cluster module; "
                             "its other contents are classified one by one (terraform.ownership.cluster_modules "
                             "adds patterns)")

    def would_own(self, n: int, single_cluster: bool) -> tuple[str, str] | None:
        """Why a node the config lists as shared would be cluster-owned otherwise (for a warning)."""
        g = self.g
        hit = next((d for d in g.deps[n] if d in self.owned), None)
        if hit is not None:
            return "dependent", f"depends on {g.labels[hit]}"
        why = self._provider_reason(n, single_cluster)
        return ("provider", why) if why else None

    def run(self, single_cluster: bool) -> None:
        while True:
            self._propagate()
            self._providers()
            self._provider_members(single_cluster)
            if self.queue:
                continue
            if self.exclusive:
                for x, reason in self.exclusives().items():
                    self.add(x, "exclusive", reason)
            if not self.queue:
                return


def classify(
    state: State,
    facts: RootFacts | None = None,
    *,
    cluster_name: str | None = None,
    cluster: Iterable[str] = (),
    shared: Iterable[str] = (),
    exclusive: bool = True,
    cluster_modules: Iterable[str] = (),
    where: str = "ownership overrides",
    name_where: str = "clusters.old.name",
) -> Ownership:
    """Split the state's addresses into the named cluster's and shared ones. Pure."""
    facts = facts or RootFacts()
    fc = _select(state, list(cluster), where)
    fs = set(_select(state, list(shared), where))
    both = sorted(set(fc) & fs)
    if both:
        raise ConfigError(f"listed as both cluster and shared: {', '.join(both)}", where=where,
                          hint="keep each address in one list")
    g = _Graph(state, facts)
    nodes = range(len(g.resources))
    found = [(a, _cluster_name(i.obj.get("attributes") or {})) for n in nodes
             if g.kinds[n] == "managed" and g.resources[n]["type"] in CLUSTER_TYPES
             for i, a in zip(g.instances[n], g.names[n], strict=True) if "deposed" not in i.obj]
    roots = _find_root(found, cluster_name, fc, name_where)
    root_insts = set(roots)
    c = _Classifier(g, facts, cluster_name=cluster_name, exclusive=exclusive, cluster_modules=cluster_modules,
                    fc=fc, fs=fs, roots=roots)
    keyed: Any = None
    for n in nodes:
        keys = [i.address.key for i, a in zip(g.instances[n], g.names[n], strict=True) if a in root_insts]
        if keys and len(g.instances[n]) > 1 and keys[0] is not None:
            keyed = keys[0]
    if keyed is not None and exclusive:
        c.exclusive = False
        c.warnings.append(f"the cluster is one instance ([{keyed!r}]) of a resource with several; its "
                          "dependencies are kept shared (they may serve the other instances)")
    c.seed(found)
    c.run(single_cluster=len(found) <= 1)

    categories: dict[str, str] = {}
    reasons: dict[str, str] = {}
    owned: set[str] = set()
    for n, (category, reason) in c.owned.items():
        pairs = list(zip(g.instances[n], g.names[n], strict=True))
        if keyed is not None and category not in ("cluster-module", "override") and pairs:
            mine = [(i, a) for i, a in pairs if a in root_insts or (i.address.has_key and i.address.key == keyed)]
            if not mine:
                c.warnings.append(f"{g.labels[n]} is {category} ({reason}) but none of its instances has the "
                                  f"cluster's key {keyed!r}; kept shared (list it under "
                                  "terraform.ownership.cluster if it belongs to this cluster alone)")
            pairs = mine
        for _, a in pairs:
            owned.add(a)
            categories[a], reasons[a] = category, reason
    # Instance-level facts: a subnet tag naming the cluster, and instance overrides.
    tags = [n for n in nodes if g.resources[n]["type"] == "aws_ec2_tag"] if cluster_name else []
    for n in tags:
        for inst, a in zip(g.instances[n], g.names[n], strict=True):
            attrs = inst.obj.get("attributes") or {}
            if attrs.get("key") == f"kubernetes.io/cluster/{cluster_name}" and a not in owned and a not in fs:
                owned.add(a)
                categories[a] = "dependent"
                reasons[a] = f"tags {attrs.get('resource_id', '?')} for cluster {cluster_name!r}"
    for a in fc:
        if a not in owned or categories.get(a) not in ("cluster", "override"):
            owned.add(a)
            categories[a], reasons[a] = "override", "listed as cluster-owned in config"
    for n in sorted(c.blocked):
        why = c.would_own(n, single_cluster=len(found) <= 1)
        if why:
            for a in g.names[n]:
                owned.add(a)
                categories[a], reasons[a] = why
    for a in sorted(owned & fs):
        c.warnings.append(f"{a} is listed as shared but is {categories[a]} ({reasons[a]}); the copy keeps it "
                          "and it will point at the old cluster")
    owned -= fs
    api_kept = {} if c.exclusive or keyed is not None else {
        n: f"{why}; kept shared because provisioner api reuses it for the new cluster"
        for n, why in c.exclusives().items()}
    ordered = list(dict.fromkeys(a for n in nodes for a in g.names[n]))  # as `terraform state list` prints
    shared_out = [a for a in ordered if a not in owned]
    by_addr_node = {a: n for n in nodes for a in g.names[n]}
    for a in shared_out:
        node = by_addr_node.get(a)
        if a in fs:
            categories[a], reasons[a] = "override", "listed as shared in config"
        elif node is not None and node in api_kept:
            categories[a], reasons[a] = "shared", api_kept[node]
        else:
            categories[a], reasons[a] = "shared", "nothing ties it to the cluster alone"
    ws_named = set(facts.workspace_named)
    for a in shared_out if ws_named else ():
        node = by_addr_node.get(a)
        if node is not None and not g.modules[node] and g.labels[node] in ws_named:
            c.warnings.append(f"{a} uses terraform.workspace in its arguments and stays in both states: "
                              "the copy's plan will want to replace it (the plan gate refuses that)")
    return Ownership(tuple(a for a in ordered if a in owned), tuple(shared_out), tuple(roots), reasons,
                     tuple(dict.fromkeys(c.warnings)), categories, tuple(g.disagreements(facts)), tuple(found),
                     c.cluster_module)
