"""Find the new cluster's ingress: the LoadBalancer Service that matches the one the old record points at.

The old record's value is the old load balancer's hostname. The old cluster's Service with that
``status.loadBalancer`` hostname is the ingress; the Service of the same namespace/name in the new cluster is
its counterpart, and its hostname is where the new record, the gateway and the switch must point.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from migrate.errors import StepFailed

Obj = dict[str, Any]


def lb_hostnames(svc: Obj) -> list[str]:
    ing = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(i.get("hostname") or i.get("ip")) for i in ing if i.get("hostname") or i.get("ip")]


def _key(svc: Obj) -> tuple[str, str]:
    m = svc.get("metadata") or {}
    return str(m.get("namespace", "")), str(m.get("name", ""))


def match_new_ingress(old_services: Iterable[Obj], new_services: Iterable[Obj], old_hostname: str) -> tuple[str, str]:
    """(namespace/name, new hostname). Raises StepFailed saying which link of the chain is missing."""
    want = old_hostname.rstrip(".").lower()
    old = [s for s in old_services if want in [h.lower() for h in lb_hostnames(s)]]
    if not old:
        raise StepFailed(f"no LoadBalancer Service in the old cluster has the hostname {old_hostname}",
                         hint="the old record must point at the old cluster's ingress load balancer")
    key = _key(old[0])
    new = {_key(s): s for s in new_services}
    twin = new.get(key)
    if twin is None:
        raise StepFailed(f"the new cluster has no Service {key[0]}/{key[1]} (the old ingress)",
                         hint="replay the workloads first, then resume")
    hosts = lb_hostnames(twin)
    if not hosts:
        raise StepFailed(f"Service {key[0]}/{key[1]} in the new cluster has no load balancer hostname yet",
                         hint="wait for the cloud to assign one, then resume")
    return f"{key[0]}/{key[1]}", hosts[0]


def list_services(kube: Any) -> list[Obj]:
    """Every Service of a cluster (a migrate.kube KubeClient)."""
    return [s for s in kube.list_pages("/api/v1/services")
            if (s.get("spec") or {}).get("type") == "LoadBalancer"]
