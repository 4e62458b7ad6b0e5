"""Persistent disks and their snapshots, for the `snapshot` strategy on GKE (google-cloud-compute, REST).

Names are the idempotency keys: GCE refuses a second disk or snapshot of the same name (409), so a cut killed
between a create and its record finds the object by name on resume. Labels (``migrate-run``,
``migrate-volume``, ``migrate-phase``) say what made each one; GCE label values are lowercase.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from migrate.cloud.gcp.auth import credentials
from migrate.cloud.gcp.gke import gcp_errors
from migrate.cloud.poll import poll
from migrate.errors import ProviderError

_HANDLE = re.compile(r"projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/disks/(?P<disk>[^/]+)$")


def parse_handle(handle: str) -> tuple[str, str, str]:
    """(project, zone, disk) of a PD CSI volumeHandle (or an in-tree pdName with the default project)."""
    m = _HANDLE.search(handle)
    if m is None:
        raise ProviderError(f"{handle!r} is not a PD handle (projects/P/zones/Z/disks/D)", where=handle)
    return m["project"], m["zone"], m["disk"]


def resource_name(*parts: str) -> str:
    """A GCE name (lowercase, <= 63) that stays unique for the parts: a readable head and a digest."""
    head = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:48].rstrip("-")
    return f"{head}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:10]}"


def labels_of(tags: dict[str, str]) -> dict[str, str]:
    return {k: re.sub(r"[^a-z0-9_-]+", "_", v.lower())[:63] for k, v in tags.items()}


class Pd:
    def __init__(self, project: str, endpoint: str | None = None) -> None:
        from google.cloud import compute_v1

        self.project = project
        self.region = project  # the log's "where"
        options = {"api_endpoint": endpoint} if endpoint else None
        with gcp_errors("creating the Compute Engine clients", where=f"projects/{project}"):
            creds = credentials(endpoint)
            self.disks = compute_v1.DisksClient(credentials=creds, client_options=options)
            self.snapshots = compute_v1.SnapshotsClient(credentials=creds, client_options=options)
        self._types = compute_v1

    def _get_snapshot(self, name: str) -> Any | None:
        from google.api_core import exceptions as gexc

        try:
            with gcp_errors(f"reading snapshot {name}", where=f"projects/{self.project}"):
                return self.snapshots.get(project=self.project, snapshot=name)
        except ProviderError as e:
            if isinstance(e.__cause__, gexc.NotFound):
                return None
            raise

    def snapshot(self, handle: str, name: str, tags: dict[str, str]) -> tuple[str, bool]:
        """(snapshot name, created): a snapshot named ``name`` of the disk, once."""
        from google.api_core import exceptions as gexc

        if self._get_snapshot(name) is not None:
            return name, False
        project, zone, disk = parse_handle(handle)
        body = self._types.Snapshot(name=name, labels=labels_of(tags))
        try:
            with gcp_errors(f"snapshotting {handle}", where=handle):
                self.disks.create_snapshot_unary(project=project, zone=zone, disk=disk, snapshot_resource=body)
        except ProviderError as e:
            if not isinstance(e.__cause__, gexc.Conflict):
                raise
            return name, False  # taken by a killed attempt between our lookup and now
        return name, True

    def wait_snapshot(self, name: str, timeout: float) -> Any:
        def check() -> tuple[bool, Any]:
            snap = self._get_snapshot(name)
            if snap is None:
                raise ProviderError(f"snapshot {name} is gone", where=f"projects/{self.project}")
            if snap.status == "FAILED":
                raise ProviderError(f"snapshot {name} failed", where=f"projects/{self.project}",
                                    hint="see the Compute Engine console; the old writer is scaled back up")
            return snap.status == "READY", snap
        return poll(check, timeout=timeout, what=f"snapshot {name} to be ready", where=f"projects/{self.project}",
                    interval=0.5, max_interval=5.0, describe=lambda s: str(s.status))

    def _get_disk(self, zone: str, name: str) -> Any | None:
        from google.api_core import exceptions as gexc

        try:
            with gcp_errors(f"reading disk {name}", where=f"projects/{self.project}/zones/{zone}"):
                return self.disks.get(project=self.project, zone=zone, disk=name)
        except ProviderError as e:
            if isinstance(e.__cause__, gexc.NotFound):
                return None
            raise

    def restore(self, snapshot: str, zone: str, name: str, tags: dict[str, str]) -> tuple[str, bool]:
        """(the new disk's handle, created): a disk named ``name`` from ``snapshot`` in ``zone``, once."""
        from google.api_core import exceptions as gexc

        handle = f"projects/{self.project}/zones/{zone}/disks/{name}"
        if self._get_disk(zone, name) is not None:
            return handle, False
        body = self._types.Disk(name=name, labels=labels_of(tags),
                                source_snapshot=f"projects/{self.project}/global/snapshots/{snapshot}")
        try:
            with gcp_errors(f"restoring snapshot {snapshot} in {zone}", where=handle):
                self.disks.insert_unary(project=self.project, zone=zone, disk_resource=body)
        except ProviderError as e:
            if not isinstance(e.__cause__, gexc.Conflict):
                raise
            return handle, False
        return handle, True

    def wait_disk(self, handle: str, timeout: float) -> Any:
        _project, zone, name = parse_handle(handle)

        def check() -> tuple[bool, Any]:
            d = self._get_disk(zone, name)
            return d is not None and d.status == "READY", d
        return poll(check, timeout=timeout, what=f"disk {handle} to be ready", where=handle, interval=0.5,
                    max_interval=5.0, describe=lambda d: str(getattr(d, "status", "missing")))
