"""Terraform state and workspaces: pure state model and surgery, native backends
(local, s3, gcs), ownership facts from HCL, plan gates, and a CLI runner.

SDKs (boto3, google-cloud-storage, python-hcl2) are imported lazily inside the
functions that need them, so importing this package costs nothing.
"""

from migrate.terraform.address import Address, parse_address
from migrate.terraform.backends.base import Backend, LockHandle, LockInfo, StateBlob, WriteResult
from migrate.terraform.state import State, check_push
from migrate.terraform.workspaces import (
    DetachResult,
    DuplicateResult,
    HandoverResult,
    ObjectComparison,
    RetireResult,
    compare_objects,
    detach,
    duplicate_workspace,
    handover,
    removable_copies,
    retire,
)

__all__ = [
    "Address",
    "Backend",
    "DetachResult",
    "DuplicateResult",
    "HandoverResult",
    "LockHandle",
    "LockInfo",
    "ObjectComparison",
    "RetireResult",
    "State",
    "StateBlob",
    "WriteResult",
    "check_push",
    "compare_objects",
    "detach",
    "duplicate_workspace",
    "handover",
    "parse_address",
    "removable_copies",
    "retire",
]
