"""Is an admission webhook's backend up on the new cluster? Checked before the webhook is registered.

A webhook registered before its service answers makes every write it intercepts fail (velero #4524,
#2443), so a webhook whose backend is missing or not ready is held back and reported, not applied.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from migrate.kube.client import KubeApiError, KubeClient
from migrate.kube.discovery import Discovery
from migrate.kube.export import label_matches
from migrate.kube.objects import Obj, dig
from migrate.kube.ready import evaluate

_WORKLOADS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"), ("v1", "Pod"))


def services_of(obj: Obj) -> Iterator[tuple[str, str, str]]:
    """(webhook name, service namespace, service name) for each webhook that calls an in-cluster service."""
    for w in obj.get("webhooks") or []:
        svc = dig(w, "clientConfig", "service")
        if isinstance(svc, dict) and svc.get("name"):
            yield str(w.get("name", "")), str(svc.get("namespace") or "default"), str(svc["name"])
    svc = dig(obj, "spec", "service")  # APIService
    if obj.get("kind") == "APIService" and isinstance(svc, dict) and svc.get("name"):
        yield str(dig(obj, "metadata", "name")), str(svc.get("namespace") or "default"), str(svc["name"])


def _selector_expr(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


def backend_problem(kube: KubeClient, disc: Discovery, namespace: str, name: str) -> str | None:
    """None if the service exists and something ready backs it; otherwise what is wrong."""
    svc_t = disc.find("v1", "Service")
    if svc_t is None:
        return "the cluster serves no Services"
    try:
        svc = kube.request("GET", svc_t.path(namespace, name))
    except KubeApiError as e:
        if e.status == 404:
            return f"service {namespace}/{name} does not exist"
        return f"service {namespace}/{name}: {e.summary()}"
    selector = dig(svc, "spec", "selector") or {}
    if not selector:
        return None  # endpoints managed by hand; nothing to check against
    ep_t = disc.find("v1", "Endpoints")
    if ep_t is not None:
        try:
            ep = kube.request("GET", ep_t.path(namespace, name))
            if any(s.get("addresses") for s in ep.get("subsets") or []):
                return None
        except KubeApiError:
            pass  # no endpoints controller (or not yet): look at the workloads instead
    expr = _selector_expr(selector)
    seen = []
    for api_version, kind in _WORKLOADS:
        t = disc.find(api_version, kind)
        if t is None:
            continue
        for o in kube.list_pages(t.path(namespace)):
            tpl_labels = dig(o, "metadata", "labels") if kind == "Pod" else dig(o, "spec", "template", "metadata",
                                                                                   "labels")
            if not label_matches(expr, tpl_labels or {}):
                continue
            v = evaluate(o)
            if v.ready:
                return None
            seen.append(f"{kind} {o['metadata']['name']}: {v.reason}")
    if not seen:
        return f"no workload in {namespace} matches the selector of service {name} ({expr})"
    return f"service {namespace}/{name} has no ready backend ({'; '.join(seen[:3])})"


def wait_backends(kube: KubeClient, disc: Discovery, obj: Obj, timeout: float, poll: float = 0.2) -> str | None:
    """Wait up to `timeout` for every service `obj`'s webhooks call; the remaining problem, or None."""
    deadline = time.monotonic() + timeout
    while True:
        problems = [f"webhook {w}: {p}" for w, ns, n in services_of(obj)
                    if (p := backend_problem(kube, disc, ns, n)) is not None]
        if not problems:
            return None
        if time.monotonic() >= deadline:
            return "; ".join(problems)
        time.sleep(poll)
