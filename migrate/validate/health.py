"""Cluster health (API answers, nodes Ready, kube-system present) and workload parity, old against new."""

from __future__ import annotations

from typing import Any

from migrate.validate.result import CheckResult

# Kinds compared for parity when the replay's own inventory diff is not available.
PARITY_KINDS = (("apps/v1", "deployments"), ("apps/v1", "statefulsets"), ("apps/v1", "daemonsets"),
                ("v1", "services"), ("networking.k8s.io/v1", "ingresses"), ("v1", "configmaps"))
SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}


def health(kube: Any, name: str) -> CheckResult:
    """``kube`` is a migrate.kube KubeClient."""
    problems: list[str] = []
    from migrate.errors import MigrateError

    try:
        nodes = list(kube.list_pages("/api/v1/nodes"))
        namespaces = {n["metadata"]["name"] for n in kube.list_pages("/api/v1/namespaces")}
    except MigrateError as e:
        return CheckResult(f"health: {name}", "health", False, f"the Kubernetes API does not answer: {e.what}")
    ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                     for c in (n.get("status") or {}).get("conditions") or [])]
    if not ready:
        problems.append("no node is Ready")
    if "kube-system" not in namespaces:
        problems.append("namespace kube-system is missing")
    return CheckResult(f"health: {name}", "health", not problems,
                       "; ".join(problems) or f"{len(ready)}/{len(nodes)} nodes Ready",
                       {"nodes": len(nodes), "ready": len(ready)})


def inventory(kube: Any) -> set[tuple[str, str, str]]:
    out = set()
    for api_version, plural in PARITY_KINDS:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        for o in kube.list_pages(f"{base}/{plural}"):
            m = o.get("metadata") or {}
            if m.get("namespace") in SYSTEM_NAMESPACES or m.get("name") == "kube-root-ca.crt":
                continue
            out.add((plural, str(m.get("namespace", "")), str(m.get("name", ""))))
    return out


def parity_from_clusters(old: Any, new: Any) -> CheckResult:
    """Every workload/service/ingress/configmap of the old cluster exists in the new one (by kind/ns/name)."""
    missing = sorted(inventory(old) - inventory(new))
    shown = ", ".join(f"{k}/{ns}/{n}" for k, ns, n in missing[:10])
    return CheckResult("parity: workloads", "parity", not missing,
                       f"{len(missing)} missing in the new cluster: {shown}" if missing else "every object is there",
                       {"missing": [list(m) for m in missing]})


def parity_from_replay(outputs: dict[str, Any]) -> CheckResult | None:
    """The replay step's own verdict, when it ran in this run."""
    if "parity" not in outputs:
        return None
    ok = bool(outputs["parity"])
    return CheckResult("parity: workloads", "parity", ok,
                       "the replay's inventory diff shows parity" if ok else "the replay reports missing objects",
                       {"inventory": outputs.get("inventory"), "report": outputs.get("report")})
