"""Routers: one interface over "how much traffic goes to the new cluster".

- ``Route53Router``: a weighted record pair; both weights change in one batch of UPSERTs, then INSYNC.
  Clients see the change up to one TTL later (``settle_s``).
- ``GatewayRouter``: the production HTTP API's ``HTTP_PROXY`` integration is switched from the old load
  balancer to the new one. HTTP APIs have no canary weights, so a split is all-or-nothing: the side with the
  larger weight gets everything (an even split stays on the old cluster). The switch takes effect at once.
"""

from __future__ import annotations

import time
from typing import Protocol

from migrate.cloud.aws.apigw import ApiGateway
from migrate.cloud.aws.route53 import Route53, WeightedRecord, upsert_change
from migrate.errors import ProviderError
from migrate.traffic.weights import ALL_OLD, Split, validate

ALIAS_TTL = 60  # Route 53 answers ALIAS records to a load balancer with a 60 s TTL


class Router(Protocol):
    kind: str
    settle_s: float  # after the change is in sync, how long until every client sees it

    def current(self) -> Split: ...
    def effective(self, split: Split) -> Split: ...
    def set(self, split: Split) -> float: ...  # returns the seconds spent waiting for INSYNC
    def describe(self) -> str: ...


class Route53Router:
    kind = "route53"

    def __init__(self, r53: Route53, zone_id: str, name: str, *, old_set_id: str, new_set_id: str, ttl: int,
                 new_target: str | None = None, insync_timeout: float = 300.0) -> None:
        self.r53 = r53
        self.zone_id = zone_id
        self.name = name
        self.old_set_id = old_set_id
        self.new_set_id = new_set_id
        self.ttl = ttl
        self.new_target = new_target
        self.insync_timeout = insync_timeout
        self.settle_s = float(ttl)

    def describe(self) -> str:
        return f"Route 53 {self.name} ({self.old_set_id}/{self.new_set_id})"

    def records(self) -> tuple[WeightedRecord, WeightedRecord | None]:
        recs = self.r53.weighted(self.zone_id, self.name)
        old = recs.get(self.old_set_id)
        if old is None:
            raise ProviderError(f"weighted record {self.name} has no set {self.old_set_id!r} (the old cluster)",
                                where=f"record {self.name}",
                                hint=f"sets found: {sorted(recs) or 'none'}; check traffic.record.old_set_id")
        return old, recs.get(self.new_set_id)

    def current(self) -> Split:
        old, new = self.records()
        return Split(old=old.weight, new=new.weight if new else 0)

    def effective(self, split: Split) -> Split:
        return split

    def old_target(self) -> str:
        return self.records()[0].value

    def set(self, split: Split) -> float:
        validate(split)
        old, new = self.records()
        if old.alias_zone is not None:
            self.settle_s = float(ALIAS_TTL)
        if new is None:
            if not self.new_target:
                raise ProviderError(f"weighted record {self.name} has no set {self.new_set_id!r} and the new "
                                    "cluster's load balancer is unknown", where=f"record {self.name}",
                                    hint="run open-gateway (it finds the new ingress) or check the new cluster")
            # Same shape as the old record, pointing at the new load balancer.
            new = WeightedRecord(self.new_set_id, old.type, 0, old.ttl, self.new_target, old.alias_zone)
        # Both records in one all-or-nothing batch: there is never a moment with only one of them changed.
        changes = [upsert_change(self.name, old, split.old, ttl=self.ttl),
                   upsert_change(self.name, new, split.new, value=self.new_target or new.value, ttl=self.ttl)]
        t0 = time.monotonic()
        change_id = self.r53.change(self.zone_id, changes, f"migrate: weights old/new {split.old}/{split.new}")
        self.r53.wait_insync(change_id, timeout=self.insync_timeout)
        return time.monotonic() - t0


class GatewayRouter:
    kind = "gateway"
    settle_s = 0.0  # an integration update applies to the next request

    def __init__(self, apigw: ApiGateway, api_id: str, *, old_uri: str, new_uri: str) -> None:
        self.apigw = apigw
        self.api_id = api_id
        self.old_uri = old_uri
        self.new_uri = new_uri

    def describe(self) -> str:
        return f"API Gateway {self.api_id} integration"

    def effective(self, split: Split) -> Split:
        return Split(old=0, new=100) if split.new_share > 0.5 else ALL_OLD

    def current(self) -> Split:
        uri = self.apigw.integration_uri(self.api_id)
        return Split(old=0, new=100) if uri == self.new_uri else ALL_OLD

    def set(self, split: Split) -> float:
        t0 = time.monotonic()
        self.apigw.set_integration_uri(self.api_id, self.new_uri if self.effective(split).new else self.old_uri)
        return time.monotonic() - t0


def swap_host(uri: str, old_host: str, new_host: str) -> str:
    """The old integration URI with the new load balancer in place of the old one (path template kept)."""
    if old_host not in uri:
        raise ValueError(f"{old_host} does not appear in {uri}")
    return uri.replace(old_host, new_host, 1)
