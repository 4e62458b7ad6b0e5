"""EBS snapshots and volumes for carrying a claim's data: find by tags, create, copy, wait.

Every object this creates carries the tags ``migrate-run``, ``migrate-volume`` and ``migrate-phase``, and
the create calls look them up first: a run killed between a create and its journal record finds the object
on resume instead of making a second one. CreateVolume also sends a ClientToken (EC2 makes the call itself
idempotent with it; moto ignores it, so the tag lookup is what the sandbox exercises).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import boto3

from migrate.cloud.aws.session import aws_errors, client
from migrate.cloud.poll import poll
from migrate.errors import ProviderError

RUN_TAG = "migrate-run"
VOLUME_TAG = "migrate-volume"
PHASE_TAG = "migrate-phase"
ATTEMPT_TAG = "migrate-attempt"


def tags_of(run_id: str, volume: str, phase: str, attempt: int = 1) -> dict[str, str]:
    """A cut undone after its freeze takes new snapshots at its next attempt: the old ones miss the writes
    taken since, so each attempt tags (and finds) only its own."""
    return {RUN_TAG: run_id, VOLUME_TAG: volume, PHASE_TAG: phase, ATTEMPT_TAG: str(attempt)}


def _spec(resource: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": resource, "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}]


def _filters(tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


class Ebs:
    """One region's EBS API."""

    def __init__(self, session: boto3.Session) -> None:
        self.region = str(session.region_name)
        self.ec2 = client(session, "ec2")

    def find_snapshot(self, tags: dict[str, str]) -> dict[str, Any] | None:
        with aws_errors("looking up a snapshot by its tags", self.region):
            snaps = self.ec2.describe_snapshots(OwnerIds=["self"], Filters=_filters(tags))["Snapshots"]
        live = sorted((s for s in snaps if s.get("State") != "error"), key=lambda s: str(s.get("StartTime")))
        return live[0] if live else None

    def snapshot(self, volume_id: str, tags: dict[str, str], description: str) -> tuple[dict[str, Any], bool]:
        """(snapshot, created): the tagged snapshot if it exists, else a new one of ``volume_id``."""
        found = self.find_snapshot(tags)
        if found is not None:
            return found, False
        with aws_errors(f"snapshotting {volume_id}", self.region):
            snap = self.ec2.create_snapshot(VolumeId=volume_id, Description=description,
                                            TagSpecifications=_spec("snapshot", tags))
        return snap, True

    def copy_snapshot(self, source_id: str, source_region: str, tags: dict[str, str],
                      description: str) -> tuple[dict[str, Any], bool]:
        """Copy a snapshot into this region (a region change), once."""
        found = self.find_snapshot(tags)
        if found is not None:
            return found, False
        with aws_errors(f"copying snapshot {source_id} from {source_region}", self.region):
            out = self.ec2.copy_snapshot(SourceSnapshotId=source_id, SourceRegion=source_region,
                                         Description=description, TagSpecifications=_spec("snapshot", tags))
        return {"SnapshotId": out["SnapshotId"], "State": "pending"}, True

    def wait_snapshot(self, snapshot_id: str, timeout: float, interval: float = 0.5,
                      on_wait: Callable[[str, float], None] | None = None) -> dict[str, Any]:
        def check() -> tuple[bool, dict[str, Any]]:
            with aws_errors(f"reading snapshot {snapshot_id}", self.region):
                snap = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
            if snap.get("State") == "error":
                raise ProviderError(f"snapshot {snapshot_id} failed: {snap.get('StateMessage') or 'error'}",
                                    where=self.region, hint="see the EC2 console; the old writer is scaled back up")
            return snap.get("State") == "completed", snap
        return poll(check, timeout=timeout, what=f"snapshot {snapshot_id} to complete", where=self.region,
                    interval=interval, max_interval=5.0,
                    describe=lambda s: f"{s.get('State')} at {s.get('Progress') or '0%'}",
                    on_wait=(lambda s, left: on_wait(str(s.get("Progress") or "0%"), left)) if on_wait else None)

    def find_volume(self, tags: dict[str, str]) -> dict[str, Any] | None:
        with aws_errors("looking up a volume by its tags", self.region):
            vols = self.ec2.describe_volumes(Filters=_filters(tags))["Volumes"]
        live = [v for v in vols if v.get("State") not in ("deleting", "deleted", "error")]
        return live[0] if live else None

    def restore(self, snapshot_id: str, zone: str, tags: dict[str, str], volume_type: str | None = None,
                ) -> tuple[dict[str, Any], bool]:
        """(volume, created): a volume of ``snapshot_id`` in ``zone``, once."""
        found = self.find_volume(tags)
        if found is not None:
            return found, False
        token = hashlib.sha256("|".join(f"{k}={v}" for k, v in sorted(tags.items())).encode()).hexdigest()[:64]
        kw: dict[str, Any] = {"SnapshotId": snapshot_id, "AvailabilityZone": zone, "ClientToken": token,
                              "TagSpecifications": _spec("volume", tags)}
        if volume_type:
            kw["VolumeType"] = volume_type
        with aws_errors(f"restoring snapshot {snapshot_id} in {zone}", zone):
            return self.ec2.create_volume(**kw), True

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        with aws_errors(f"reading volume {volume_id}", self.region):
            vols = self.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Volumes"]
        return vols[0] if vols else None

    def wait_volume(self, volume_id: str, timeout: float) -> dict[str, Any]:
        def check() -> tuple[bool, dict[str, Any]]:
            vol = self.volume(volume_id) or {"State": "missing"}
            return vol.get("State") in ("available", "in-use"), vol
        return poll(check, timeout=timeout, what=f"volume {volume_id} to be available", where=self.region,
                    interval=0.5, max_interval=5.0, describe=lambda v: str(v.get("State")))
