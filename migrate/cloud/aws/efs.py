"""EFS: whether the file system a `shared` claim points at exists, and where it can be mounted."""

from __future__ import annotations

import boto3

from migrate.cloud.aws.session import aws_errors, client
from migrate.errors import ProviderError


def file_system_id(handle: str) -> str:
    """The file system of an EFS CSI volumeHandle: `fs-1`, `fs-1:/path`, `fs-1::fsap-2`, `fs-1:/path:fsap-2`."""
    return handle.split(":", 1)[0]


def mount_zones(session: boto3.Session, fs_id: str) -> list[str] | None:
    """The zones of the file system's mount targets, or None when it does not exist."""
    efs = client(session, "efs")
    try:
        with aws_errors(f"reading EFS file system {fs_id}", str(session.region_name)):
            efs.describe_file_systems(FileSystemId=fs_id)
            targets = efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"]
    except ProviderError as e:
        if "FileSystemNotFound" in e.what:
            return None
        raise
    return sorted({str(t.get("AvailabilityZoneName")) for t in targets if t.get("AvailabilityZoneName")})
