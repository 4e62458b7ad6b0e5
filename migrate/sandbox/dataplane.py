"""Each emulated cluster's data plane: answers HTTP for its Ingress hosts/paths and LoadBalancer Services.

A request is served with 200 and a body naming cluster, namespace, deployment and image only while the
backing workload is ready in that cluster's API emulator; otherwise 503, as a real load balancer with no
healthy targets would answer. Routing reads the emulator's store in-process (same daemon).

How a request finds its backend:
- ``X-Sandbox-Via: <lb hostname>`` (set by the router and the gateway proxy: the load balancer the request
  was sent to), else the Host header, names a LoadBalancer Service by its status hostname;
- when that Service fronts an ingress controller, the Ingress rules are matched by Host, then path;
- a Host that is an Ingress rule host is matched directly;
- a Service of type ExternalName is a DNS alias: the request goes on to the cluster whose load balancer has
  that hostname (how a cluster reaches a writer in another cluster, as during a stateful cut).

A StatefulSet behind ``/kv/<key>`` is the demo key-value store: PUT stores the body under the key, GET reads it.
The key picks the replica (crc32 modulo replicas) and its claim ``<template>-<sts>-<ordinal>``; the value lives
in that claim's volume, in the sandbox block store, so a snapshot carries it and a new empty volume has none.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

from .blockstore import BlockStore
from .faults import SandboxFaults
from .httpbase import BackgroundServer, QuietHandler
from .kubeapi import KubeAPIServer

Obj = dict[str, Any]
CLUSTER_HEADER = "X-Sandbox-Cluster"
VIA_HEADER = "X-Sandbox-Via"
KV_PREFIX = "/kv/"
MAX_HOPS = 3
_WORKLOAD_BUCKETS = (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"))


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def is_ready(kind: str, obj: Obj) -> bool:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 1):
        return False
    if kind == "daemonsets":
        want = int(status.get("desiredNumberScheduled", 0))
        return want > 0 and int(status.get("numberReady", 0)) >= want
    want = int(spec.get("replicas", 1))
    return want > 0 and int(status.get("readyReplicas", 0)) >= want


def is_ingress_controller(svc: Obj) -> bool:
    labels = svc["metadata"].get("labels") or {}
    return labels.get("app.kubernetes.io/component") == "controller" or "ingress" in svc["metadata"]["name"]


class Backend:
    """What a request resolved to: the Service, its workload (if any) and whether it may answer."""

    def __init__(self, service: Obj, kind: str | None, workload: Obj | None) -> None:
        self.service = service
        self.kind = kind
        self.workload = workload

    @property
    def external(self) -> str | None:
        spec = self.service.get("spec") or {}
        return str(spec.get("externalName")) if spec.get("type") == "ExternalName" else None

    @property
    def ready(self) -> bool:
        return self.workload is not None and self.kind is not None and is_ready(self.kind, self.workload)

    def describe(self) -> Obj:
        w = self.workload or {"metadata": {}}
        containers = (((w.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}]
        return {"namespace": self.service["metadata"]["namespace"], "service": self.service["metadata"]["name"],
                "kind": self.kind, "deployment": w["metadata"].get("name"), "image": containers[0].get("image")}


class Router:
    """Pure lookups over one emulator's store."""

    def __init__(self, server: KubeAPIServer) -> None:
        self.store = server.api.store

    def lb_service(self, hostname: str) -> Obj | None:
        for svc in self.store.objects(("", "services")):
            if (svc.get("spec") or {}).get("type") != "LoadBalancer":
                continue
            for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
                if hostname in (ing.get("hostname"), ing.get("ip")):
                    return svc
        return None

    def lb_hostnames(self) -> list[str]:
        out = []
        for svc in self.store.objects(("", "services")):
            for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
                if ing.get("hostname"):
                    out.append(str(ing["hostname"]))
        return out

    def backend_for_service(self, namespace: str, name: str) -> Backend | None:
        svc = self.store.get(("", "services"), namespace, name)
        if svc is None:
            return None
        selector = (svc.get("spec") or {}).get("selector") or {}
        if (svc.get("spec") or {}).get("type") == "ExternalName":
            return Backend(svc, None, None)
        for group, plural in _WORKLOAD_BUCKETS:
            for w in self.store.objects((group, plural), namespace):
                labels = ((((w.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}
                if _labels_match(selector, labels):
                    return Backend(svc, plural, w)
        return Backend(svc, None, None)

    def claim_volume(self, sts: Obj, key: str) -> tuple[int, str | None]:
        """(ordinal, volume id) of the replica that holds ``key``; the id is None while no volume is bound."""
        spec = sts.get("spec") or {}
        replicas = max(1, int(spec.get("replicas") or 1))
        n = zlib.crc32(key.encode()) % replicas
        templates = spec.get("volumeClaimTemplates") or []
        if not templates:
            return n, None
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        pvc = self.store.get(("", "persistentvolumeclaims"), ns, f"{templates[0]['metadata']['name']}-{name}-{n}")
        pv_name = ((pvc or {}).get("spec") or {}).get("volumeName")
        pv = self.store.get(("", "persistentvolumes"), "", pv_name) if pv_name else None
        source = (pv or {}).get("spec") or {}
        handle = (source.get("csi") or {}).get("volumeHandle") or \
            str((source.get("awsElasticBlockStore") or {}).get("volumeID") or "").rsplit("/", 1)[-1]
        return n, handle or None

    def ingress_backend(self, host: str | None, path: str) -> tuple[str, str] | None:
        """(namespace, service) of the best Ingress match: exact host first, longest path prefix wins."""
        best: tuple[int, int, str, str] | None = None
        for ing in self.store.objects(("networking.k8s.io", "ingresses")):
            ns = ing["metadata"]["namespace"]
            spec = ing.get("spec") or {}
            for rule in spec.get("rules") or []:
                rule_host = rule.get("host")
                if host is not None and rule_host not in (None, host):
                    continue
                host_score = 1 if rule_host and rule_host == host else 0
                for p in ((rule.get("http") or {}).get("paths")) or []:
                    prefix = p.get("path") or "/"
                    exact = p.get("pathType") == "Exact"
                    if (path == prefix) if exact else _prefix_match(prefix, path):
                        svc = ((p.get("backend") or {}).get("service") or {}).get("name")
                        cand = (host_score, len(prefix), ns, str(svc))
                        if svc and (best is None or cand[:2] > best[:2]):
                            best = cand
            default = ((spec.get("defaultBackend") or {}).get("service") or {}).get("name")
            if default and best is None:
                best = (-1, 0, ns, str(default))
        return (best[2], best[3]) if best else None


def _prefix_match(prefix: str, path: str) -> bool:
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


class DataPlane:
    """One HTTP listener per emulated cluster."""

    def __init__(self, cluster: str, api: KubeAPIServer, faults: SandboxFaults, blocks: BlockStore | None = None,
                 resolve: Callable[[str], DataPlane | None] | None = None) -> None:
        self.cluster = cluster
        self.lookup = Router(api)
        self.faults = faults
        self.blocks = blocks
        self.resolve = resolve or (lambda _host: None)
        plane = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                body = self.read_body()
                code, doc = plane.answer(self.headers.get("Host", ""), self.headers.get(VIA_HEADER), self.path,
                                         self.command, body)
                self.send_json(code, doc, {CLUSTER_HEADER: plane.cluster})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        self._server = BackgroundServer(Handler, name=f"dataplane-{cluster}")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> DataPlane:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def answer(self, host_header: str, via: str | None, raw_path: str, method: str = "GET", body: bytes = b"",
               hops: int = 0) -> tuple[int, Obj]:
        host = host_header.split(":")[0].lower()
        path = raw_path.split("?")[0] or "/"
        base: Obj = {"cluster": self.cluster, "host": host, "path": path}
        injected = self.faults.http_status(self.cluster, path)
        if injected is not None:
            return injected, {**base, "error": "injected fault"}
        entry = self.lookup.lb_service(via or host)
        target: Backend | None
        if entry is not None:
            front = self.lookup.backend_for_service(entry["metadata"]["namespace"], entry["metadata"]["name"])
            if front is not None and front.external:
                return self._forward(front.external, host_header, raw_path, method, body, hops, base)
            if front is None or not front.ready:
                return 503, {**base, **(front.describe() if front else {}),
                             "error": "no healthy targets: the load balancer's workload is not ready"}
            if not is_ingress_controller(entry):
                return self._serve(front, method, path, body, base)
            # Sent to the LB's own hostname (the gateway proxy does): any host's rules; else by Host, as nginx.
            match = self.lookup.ingress_backend(None if host == (via or host) else host, path)
        else:
            match = self.lookup.ingress_backend(host, path)
        if match is None:
            return 404, {**base, "error": "no Ingress rule or LoadBalancer matches"}
        target = self.lookup.backend_for_service(*match)
        if target is None:
            return 503, {**base, "error": f"backend Service {match[0]}/{match[1]} not found"}
        if target.external:
            return self._forward(target.external, host_header, raw_path, method, body, hops, base)
        if not target.ready:
            return 503, {**base, **target.describe(), "error": "backend workload is not ready"}
        return self._serve(target, method, path, body, base)

    def _forward(self, alias: str, host_header: str, raw_path: str, method: str, body: bytes, hops: int,
                 base: Obj) -> tuple[int, Obj]:
        other = self.resolve(alias) if hops < MAX_HOPS else None
        if other is None:
            return 502, {**base, "error": f"ExternalName {alias} does not resolve to a load balancer"}
        return other.answer(host_header, alias, raw_path, method, body, hops + 1)

    def _serve(self, target: Backend, method: str, path: str, body: bytes, base: Obj) -> tuple[int, Obj]:
        if not (target.kind == "statefulsets" and path.startswith(KV_PREFIX) and self.blocks and target.workload):
            return 200, {**base, **target.describe()}
        key = path[len(KV_PREFIX):]
        ordinal, volume = self.lookup.claim_volume(target.workload, key)
        where = {**base, **target.describe(), "ordinal": ordinal, "volume": volume}
        if volume is None:
            return 503, {**where, "error": "the replica's volume is not attached"}
        file = self.blocks.volume(volume)
        if method in ("PUT", "POST"):
            self.blocks.kv_put(file, key, body.decode("utf-8", "replace"))
            return 200, {**where, "stored": key}
        found, value = self.blocks.kv_get(file, key)
        return (200, {**where, "key": key, "value": value}) if found else (404, {**where, "error": "no such key"})


def body_of(raw: bytes) -> Obj:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
