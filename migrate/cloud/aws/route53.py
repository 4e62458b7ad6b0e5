"""Route 53 weighted records: read the pair, shift both weights in one UPSERT batch, wait for INSYNC.

Never DELETE a weighted record here: besides being unnecessary for a weight shift, moto's DELETE with a
SetIdentifier removes every record carrying that identifier, whatever its name (DESIGN.md section 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from migrate.cloud.aws.session import aws_errors, client
from migrate.cloud.poll import poll
from migrate.errors import ProviderError


@dataclass(frozen=True)
class WeightedRecord:
    set_id: str
    type: str  # CNAME, A, AAAA
    weight: int
    ttl: int | None  # None for ALIAS records (Route 53 uses the target's TTL, 60 s for an ELB)
    value: str  # the CNAME/A value or the ALIAS DNSName, without the trailing dot
    alias_zone: str | None = None  # the ALIAS target's HostedZoneId


def fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def record_from_api(rr: dict[str, Any]) -> WeightedRecord:
    alias = rr.get("AliasTarget")
    value = str(alias["DNSName"]) if alias else str((rr.get("ResourceRecords") or [{"Value": ""}])[0]["Value"])
    return WeightedRecord(set_id=str(rr.get("SetIdentifier", "")), type=str(rr["Type"]),
                          weight=int(rr.get("Weight", 0)), ttl=int(rr["TTL"]) if "TTL" in rr else None,
                          value=value.rstrip("."), alias_zone=str(alias["HostedZoneId"]) if alias else None)


def upsert_change(name: str, rec: WeightedRecord, weight: int, value: str | None = None,
                  ttl: int | None = None) -> dict[str, Any]:
    """One UPSERT that keeps everything of ``rec`` but the weight (and optionally value and TTL)."""
    rrset: dict[str, Any] = {"Name": fqdn(name), "Type": rec.type, "SetIdentifier": rec.set_id, "Weight": weight}
    target = value if value is not None else rec.value
    if rec.alias_zone is not None:
        rrset["AliasTarget"] = {"HostedZoneId": rec.alias_zone, "DNSName": target, "EvaluateTargetHealth": False}
    else:
        rrset["TTL"] = ttl if ttl is not None else (rec.ttl if rec.ttl is not None else 60)
        rrset["ResourceRecords"] = [{"Value": target}]
    return {"Action": "UPSERT", "ResourceRecordSet": rrset}


class Route53:
    def __init__(self, session: boto3.Session, endpoint_url: str | None = None) -> None:
        self.api = client(session, "route53", endpoint_url)

    def zone_id(self, zone: str) -> str:
        """The hosted zone's id from its name (or the id itself when given one)."""
        if zone.startswith(("/hostedzone/", "Z")) and "." not in zone:
            return zone.split("/")[-1]
        with aws_errors("looking up the hosted zone", where=f"zone {zone}"):
            resp = self.api.list_hosted_zones_by_name(DNSName=fqdn(zone), MaxItems="10")
        for z in resp.get("HostedZones", []):
            if z["Name"].lower() == fqdn(zone):
                return str(z["Id"]).split("/")[-1]
        raise ProviderError(f"hosted zone {zone} not found", where=f"zone {zone}",
                            hint="check traffic.record.zone and the account the credentials belong to")

    def weighted(self, zone_id: str, name: str) -> dict[str, WeightedRecord]:
        """The weighted records of ``name``, by SetIdentifier."""
        with aws_errors("reading the weighted records", where=f"record {name}"):
            resp = self.api.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=fqdn(name),
                                                      MaxItems="300")
        out: dict[str, WeightedRecord] = {}
        for rr in resp.get("ResourceRecordSets", []):
            if rr["Name"].lower() == fqdn(name) and "SetIdentifier" in rr and "Weight" in rr:
                rec = record_from_api(rr)
                out[rec.set_id] = rec
        return out

    def change(self, zone_id: str, changes: list[dict[str, Any]], comment: str) -> str:
        """Submit one all-or-nothing batch; returns the change id."""
        if any(c["Action"] != "UPSERT" for c in changes):
            raise ValueError("weight shifts use UPSERTs only")
        with aws_errors("changing the weighted records", where=f"zone {zone_id}"):
            resp = self.api.change_resource_record_sets(HostedZoneId=zone_id,
                                                        ChangeBatch={"Comment": comment, "Changes": changes})
        return str(resp["ChangeInfo"]["Id"]).split("/")[-1]

    def status(self, change_id: str) -> str:
        with aws_errors("reading the change status", where=f"change {change_id}"):
            return str(self.api.get_change(Id=change_id)["ChangeInfo"]["Status"])

    def wait_insync(self, change_id: str, timeout: float = 300.0, interval: float = 0.5) -> None:
        # Real Route 53 takes ~30-60 s to reach INSYNC; moto answers INSYNC at once.
        poll(lambda: ((s := self.status(change_id)) == "INSYNC", s), timeout=timeout, interval=interval,
             max_interval=5.0, what=f"Route 53 change {change_id} to be INSYNC", where=f"change {change_id}")
