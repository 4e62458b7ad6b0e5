"""The production entry point: resolves a hostname from the Route 53 weighted records held in moto, the way
a DNS client would, and forwards the request to the cluster the chosen record points at.

- Record sets are read through the Route 53 API and cached for their TTL (ALIAS records: 60 s, as Route 53
  answers them), so a weight change takes effect only after the TTL, as for a real resolver's clients.
- Each request picks one record by weight (share = weight / sum). If every weight is 0, the records share
  traffic equally (Route 53 semantics). Picking per request models many independent clients.
- A CNAME (or ALIAS DNSName) value names a cluster's load balancer hostname; the cluster registry maps it to
  that cluster's data plane. The response carries ``X-Sandbox-Cluster`` (who answered) and
  ``X-Sandbox-Record`` (the SetIdentifier chosen).

Clients send ``Host: app.dev.sandbox.internal`` to the router URL, or use it as an HTTP proxy
(absolute-form request targets).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3

from .clusters import ClusterRegistry
from .forward import Reply, forward
from .httpbase import BackgroundServer, QuietHandler

RECORD_HEADER = "X-Sandbox-Record"
ALIAS_TTL = 60
NEGATIVE_TTL = 1.0


@dataclass(frozen=True)
class Answer:
    set_id: str | None
    weight: int | None
    target: str  # a load balancer hostname


@dataclass(frozen=True)
class CachedRecords:
    answers: tuple[Answer, ...]
    expires: float


def pick(answers: tuple[Answer, ...], rng: random.Random) -> Answer | None:
    if not answers:
        return None
    weighted = [a for a in answers if a.weight is not None]
    if not weighted:
        return answers[0]
    total = sum(a.weight or 0 for a in weighted)
    if total == 0:  # every weight 0: Route 53 splits equally
        return rng.choice(weighted)
    x = rng.uniform(0, total)
    for a in weighted:
        x -= a.weight or 0
        if x < 0:
            return a
    return next(a for a in reversed(weighted) if a.weight)


class DnsResolver:
    """Route 53 (in moto) as seen by a caching resolver."""

    def __init__(self, aws_url: str, region: str = "us-east-1", seed: int | None = None) -> None:
        self._r53 = boto3.client("route53", endpoint_url=aws_url, region_name=region,
                                 aws_access_key_id="testing", aws_secret_access_key="testing")
        self._cache: dict[str, CachedRecords] = {}
        self._zones: tuple[float, list[tuple[str, str]]] = (0.0, [])
        self._lock = threading.Lock()
        self.rng = random.Random(seed)
        self.lookups = 0  # Route 53 reads, for tests of the TTL cache

    def records(self, host: str) -> tuple[Answer, ...]:
        name = host.rstrip(".").lower() + "."
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit.expires > now:
                return hit.answers
        answers, ttl = self._query(name)
        with self._lock:
            self._cache[name] = CachedRecords(answers, now + (ttl if answers else NEGATIVE_TTL))
        return answers

    def resolve(self, host: str) -> Answer | None:
        answers = self.records(host)
        with self._lock:
            return pick(answers, self.rng)

    def flush(self) -> None:
        with self._lock:
            self._cache.clear()

    def _zone_for(self, name: str) -> str | None:
        now = time.monotonic()
        if self._zones[0] < now:
            zones = []
            for page in self._r53.get_paginator("list_hosted_zones").paginate():
                zones += [(z["Name"].lower(), z["Id"]) for z in page["HostedZones"]]
            self._zones = (now + NEGATIVE_TTL, zones)
        best = max((z for z in self._zones[1] if name == z[0] or name.endswith("." + z[0])),
                   key=lambda z: len(z[0]), default=None)
        return best[1] if best else None

    def _query(self, name: str) -> tuple[tuple[Answer, ...], float]:
        self.lookups += 1
        zone = self._zone_for(name)
        if zone is None:
            return (), NEGATIVE_TTL
        resp = self._r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=name, MaxItems="300")
        answers: list[Answer] = []
        ttls: list[float] = []
        for rr in resp["ResourceRecordSets"]:
            if rr["Name"].lower() != name or rr["Type"] not in ("CNAME", "A", "AAAA"):
                continue
            target = _target(rr)
            if target is None:
                continue
            answers.append(Answer(rr.get("SetIdentifier"), int(rr["Weight"]) if "Weight" in rr else None, target))
            ttls.append(float(rr.get("TTL", ALIAS_TTL)))
        return tuple(answers), min(ttls, default=NEGATIVE_TTL)


def _target(rr: dict[str, Any]) -> str | None:
    if "AliasTarget" in rr:
        return str(rr["AliasTarget"]["DNSName"]).rstrip(".").lower()
    values = [v["Value"] for v in rr.get("ResourceRecords") or []]
    return str(values[0]).rstrip(".").lower() if values else None


class TrafficRouter:
    def __init__(self, registry: ClusterRegistry, aws_url: str, region: str = "us-east-1") -> None:
        self.registry = registry
        self.dns = DnsResolver(aws_url, region)
        router = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                body = self.read_body()
                reply = router.handle(self.command, self.path, dict(self.headers), body)
                self.send_bytes(reply.status, reply.body, reply.headers.pop("Content-Type", "application/json"),
                                reply.headers)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        self._server = BackgroundServer(Handler, name="router")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> TrafficRouter:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        if target.startswith(("http://", "https://")):  # used as an HTTP proxy: absolute-form
            parts = urlsplit(target)
            host, path = parts.netloc, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        else:
            host, path = headers.get("Host", ""), target
        answer = self.dns.resolve(host.split(":")[0])
        if answer is None:
            return Reply(502, f'{{"error":"{host}: no such record in Route 53 (NXDOMAIN)"}}'.encode(),
                         {"Content-Type": "application/json"})
        reply = forward(self.registry, answer.target, method, path, headers, body, host)
        if answer.set_id is not None:
            reply.headers[RECORD_HEADER] = answer.set_id
        return reply
