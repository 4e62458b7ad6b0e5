"""The daemon's control API (loopback HTTP, JSON): status, fault injection and probes.

    GET    /healthz                  ok
    GET    /status                   pid, uptime, clusters, faults, probes
    GET    /faults                   the active faults
    POST   /faults                   {"kind": "http"|"never_ready"|"state_write"|"eks_delay"|"snapshot_pending"|
                                      "gke_create_error", ...}
    DELETE /faults                   clear every fault
    POST   /probes                   {"host", "path"?, "rate"?, "duration"?, "max_requests"?} -> {"id"}
    GET    /probes/<id>?since=&until=   summary (window in unix seconds)
    GET    /probes/<id>/samples      every sample
    DELETE /probes/<id>              stop it; returns the summary
    POST   /shutdown                 stop the daemon (what `sandbox down` asks first)
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .clusters import ClusterRegistry
from .faults import SandboxFaults
from .httpbase import BackgroundServer, QuietHandler
from .probe import Probe

MAX_PROBES = 16


class HttpError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Control:
    def __init__(self, registry: ClusterRegistry, faults: SandboxFaults, router_url: str,
                 on_shutdown: Callable[[], None]) -> None:
        self.registry = registry
        self.faults = faults
        self.router_url = router_url
        self.on_shutdown = on_shutdown
        self.started = time.time()
        self.probes: dict[str, Probe] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        control = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                try:
                    body = self.read_json() if self.command in ("POST", "PUT") else {}
                    url = urlsplit(self.path)
                    code, doc = control.handle(self.command, url.path.rstrip("/") or "/",
                                               dict(parse_qsl(url.query)), body)
                    self.send_json(code, doc)
                except HttpError as e:
                    self.send_json(e.code, {"error": str(e)})
                except (ValueError, KeyError, TypeError) as e:
                    self.send_json(400, {"error": f"bad request: {type(e).__name__}: {e}"})

            do_GET = do_POST = do_DELETE = do_PUT = _any

        self._server = BackgroundServer(Handler, name="control")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> Control:
        self._server.start()
        return self

    def stop(self) -> None:
        for p in list(self.probes.values()):
            p.stop()
        self._server.stop()

    def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "uptime_s": round(time.time() - self.started, 3),
                "clusters": {c.name: c.info() for c in self.registry.all()}, "faults": self.faults.snapshot(),
                "probes": {pid: p.summary() for pid, p in self.probes.items()}}

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if path == "/healthz":
            return 200, {"ok": True}
        if path == "/status" and method == "GET":
            return 200, self.status()
        if path == "/faults":
            if method == "POST":
                self.faults.add(str(body.get("kind")), body)
                if body.get("kind") == "never_ready":  # a cluster that exists gets it now, later ones on create
                    self.registry.apply_workload_fault(str(body["cluster"]), str(body.get("resource", "deployments")),
                                                       str(body.get("namespace", "default")), str(body["name"]))
                return 200, self.faults.snapshot()
            if method == "DELETE":
                self.faults.clear()
                for c in self.registry.all():
                    c.api.faults.clear()
            return 200, self.faults.snapshot()
        if parts[:1] == ["probes"]:
            return self._probes(method, parts[1:], query, body)
        if path == "/shutdown" and method == "POST":
            threading.Thread(target=self.on_shutdown, daemon=True).start()
            return 200, {"stopping": True}
        raise HttpError(404, f"no such endpoint: {method} {path}")

    def _probes(self, method: str, rest: list[str], query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not rest and method == "POST":
            with self._lock:
                if sum(p.running for p in self.probes.values()) >= MAX_PROBES:
                    raise HttpError(429, f"at most {MAX_PROBES} probes may run at once")
                probe = Probe(self.router_url, str(body["host"]), str(body.get("path", "/")),
                              float(body.get("rate", 50)), float(body.get("duration", 60)),
                              int(body.get("max_requests", 10_000)), float(body.get("timeout", 2.0)))
                pid = f"p{next(self._ids)}"
                self.probes[pid] = probe.start()
            return 201, {"id": pid, "summary": probe.summary()}
        if not rest and method == "GET":
            return 200, {pid: p.summary() for pid, p in self.probes.items()}
        probe_or_none = self.probes.get(rest[0]) if rest else None
        if probe_or_none is None:
            raise HttpError(404, "no such probe")
        probe = probe_or_none
        since = float(query["since"]) if "since" in query else None
        until = float(query["until"]) if "until" in query else None
        if len(rest) == 2 and rest[1] == "samples" and method == "GET":
            return 200, {"samples": [asdict(s) for s in probe.samples(since, until)]}
        if len(rest) == 1 and method == "GET":
            return 200, probe.summary(since, until)
        if len(rest) == 1 and method == "DELETE":
            probe.stop()
            return 200, probe.summary()
        raise HttpError(404, "no such probe endpoint")
