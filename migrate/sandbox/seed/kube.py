"""Apply manifests to an emulated cluster through its HTTP API, as `kubectl apply` (client-side) would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ..kubeapi import KubeAPIServer

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def collection_path(server: KubeAPIServer, obj: dict[str, Any]) -> str:
    rt = server.api.registry.by_kind(obj["apiVersion"], obj["kind"])
    if rt is None:
        raise ValueError(f"{obj['apiVersion']}/{obj['kind']} is not served by the emulator")
    base = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    ns = obj["metadata"].get("namespace")
    return f"{base}/namespaces/{ns}/{rt.plural}" if rt.namespaced and ns else f"{base}/{rt.plural}"


def apply(server: KubeAPIServer, objs: list[dict[str, Any]], timeout: float = 5.0) -> int:
    """Create every object (409s are kept: seeding is idempotent). Returns how many were created."""
    created = 0
    for obj in objs:
        doc = json.loads(json.dumps(obj))
        doc["metadata"].setdefault("annotations", {})[LAST_APPLIED] = json.dumps(obj, separators=(",", ":"),
                                                                                 sort_keys=True)
        url = f"{server.url}{collection_path(server, obj)}?fieldManager=kubectl-client-side-apply"
        req = urllib.request.Request(url,
                                     data=json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout):
                created += 1
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise RuntimeError(f"seeding {obj['kind']} {obj['metadata'].get('name')}: "
                                   f"{e.code} {e.read()[:300]!r}") from e
    return created
