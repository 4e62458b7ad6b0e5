"""Terraform's ``s3`` backend, natively with boto3.

Layout: the default workspace at ``key``, others at ``<workspace_key_prefix>/<ws>/<key>``
(prefix ``env:`` by default). Locks, as Terraform takes them:

* DynamoDB: item ``LockID = <bucket>/<path>`` with ``Info`` (lock JSON), put with
  ``attribute_not_exists(LockID)``; beside it ``<bucket>/<path>-md5`` whose ``Digest``
  is the hex MD5 of the state, rewritten after every put (a stale digest makes
  Terraform fail with "state data in S3 does not have the expected content").
* ``use_lockfile`` (Terraform >= 1.10): object ``<path>.tflock`` put with
  ``If-None-Match: *``. moto (5.x) honours that header on PutObject, so the tests
  exercise the real conditional write. When both are configured both are taken,
  lockfile first, as Terraform does.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from migrate.errors import ConfigError, CredentialsError, LockError, ProviderError
from migrate.terraform.backends.base import (
    DEFAULT_WORKSPACE,
    Backend,
    LockHandle,
    LockInfo,
    backup_file,
    held_error,
)

_MD5_HEX = re.compile(r"[0-9a-f]{32}")
_RETRYABLE = {"Throttling", "ThrottlingException", "RequestTimeout", "SlowDown", "InternalError",
              "ServiceUnavailable", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}


def aws_error(e: Exception, what: str, where: str) -> ProviderError:
    """Turn a botocore exception into the project's error (``raise ... from e``)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(e, NoCredentialsError):
        return CredentialsError(f"{what}: no AWS credentials", where=where,
                                hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    if isinstance(e, EndpointConnectionError):
        return ProviderError(f"{what}: cannot reach {e.kwargs.get('endpoint_url', 'the endpoint')}",
                             where=where, hint="check the endpoint and network", retryable=True)
    if isinstance(e, ClientError):
        code = e.response.get("Error", {}).get("Code", "?")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return CredentialsError(f"{what}: {code}", where=where,
                                    hint="check the credentials and their IAM permissions")
        return ProviderError(f"{what}: {code} {e.response.get('Error', {}).get('Message', '')}".rstrip(),
                             where=where, hint="see the AWS error above",
                             retryable=code in _RETRYABLE or status >= 500)
    return ProviderError(f"{what}: {e}", where=where, retryable=False)


def _code(e: Exception) -> str:
    resp = getattr(e, "response", None) or {}
    return str(resp.get("Error", {}).get("Code", ""))


class S3Backend(Backend):
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        region: str = "us-east-1",
        workspace_key_prefix: str = "env:",
        dynamodb_table: str | None = None,
        use_lockfile: bool = False,
        endpoint_url: str | None = None,
        dynamodb_endpoint_url: str | None = None,
        s3_client: Any = None,
        dynamodb_client: Any = None,
        backup_dir: str | Path | None = None,
        encrypt: bool = False,
        kms_key_id: str | None = None,
        checksum_algorithm: str | None = "CRC32",
    ) -> None:
        if not dynamodb_table and not use_lockfile:
            raise ConfigError(
                "the s3 backend has no lock configured",
                where=f"s3://{bucket}/{key}",
                hint="set dynamodb_table or use_lockfile: state is never written without a lock",
            )
        if not key or key.startswith("/") or key.endswith("/"):
            raise ConfigError(f"invalid s3 backend key {key!r}", where=f"s3://{bucket}",
                              hint="key must be a relative object path like platform/terraform.tfstate")
        self.bucket = bucket
        self.key = key
        self.prefix = workspace_key_prefix
        self.table = dynamodb_table
        self.use_lockfile = use_lockfile
        self.encrypt = encrypt
        self.kms_key_id = kms_key_id
        self.checksum_algorithm = checksum_algorithm  # None for S3-compatible stores without checksums
        self.backup_dir = Path(backup_dir or ".migrate/backups").absolute() / "s3" / bucket
        if s3_client is None or (dynamodb_table and dynamodb_client is None):
            from migrate.cloud.aws.session import client, make_session

            session = make_session(region)
            if s3_client is None:
                s3_client = client(session, "s3", endpoint_url)
            if dynamodb_table and dynamodb_client is None:
                dynamodb_client = client(session, "dynamodb", dynamodb_endpoint_url or endpoint_url)
        self.s3 = s3_client
        self.ddb = dynamodb_client

    # ---- layout --------------------------------------------------------------

    def path(self, ws: str) -> str:
        if ws == DEFAULT_WORKSPACE:
            return self.key
        return f"{self.prefix}/{ws}/{self.key}" if self.prefix else f"{ws}/{self.key}"

    def where(self, ws: str) -> str:
        return f"s3://{self.bucket}/{self.path(ws)}"

    def lock_id_key(self, ws: str) -> str:
        return f"{self.bucket}/{self.path(ws)}"

    def _workspace_of(self, obj_key: str) -> str | None:
        # Mirrors Terraform's keyEnv: only <prefix>/<ws>/<key> exactly counts.
        if self.prefix:
            head = self.prefix + "/"
            if not obj_key.startswith(head):
                return None
            rest = obj_key[len(head):]
        else:
            rest = obj_key
        ws, sep, tail = rest.partition("/")
        return ws if sep and tail == self.key and ws else None

    def workspaces(self) -> list[str]:
        names: set[str] = set()
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=(self.prefix + "/") if self.prefix else "")
            for page in pages:
                for obj in page.get("Contents", []):
                    ws = self._workspace_of(obj["Key"])
                    if ws:
                        names.add(ws)
        except Exception as e:
            raise aws_error(e, "cannot list workspaces", f"s3://{self.bucket}") from e
        names.discard(DEFAULT_WORKSPACE)
        return [DEFAULT_WORKSPACE, *sorted(names)]

    def exists(self, ws: str) -> bool:
        if ws == DEFAULT_WORKSPACE:
            return True
        return self._head(self.path(ws)) is not None

    def _head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata (HeadObject), or None when there is no such object."""
        try:
            return dict(self.s3.head_object(Bucket=self.bucket, Key=key))
        except Exception as e:
            if _code(e) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise aws_error(e, "cannot check the state object", f"s3://{self.bucket}/{key}") from e

    # ---- state objects -------------------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as e:
            if _code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise aws_error(e, "cannot read the object", f"s3://{self.bucket}/{key}") from e

    def _read_raw(self, ws: str, lock: LockHandle | None = None) -> bytes | None:
        return self._get(self.path(ws))

    def _put(self, ws: str, data: bytes, lock: LockHandle) -> None:
        extra: dict[str, Any] = {}
        if self.checksum_algorithm:
            extra["ChecksumAlgorithm"] = self.checksum_algorithm
        if self.encrypt:
            extra["ServerSideEncryption"] = "aws:kms" if self.kms_key_id else "AES256"
        if self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        try:
            # An explicit checksum keeps botocore from buffering extra copies of a large body.
            self.s3.put_object(Bucket=self.bucket, Key=self.path(ws), Body=data,
                               ContentType="application/json", **extra)
        except Exception as e:
            raise aws_error(e, "cannot write the state", self.where(ws)) from e

    def _stream(self, key: str) -> Any:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except Exception as e:
            if _code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise aws_error(e, "cannot read the object", f"s3://{self.bucket}/{key}") from e

    def _backup_current(self, ws: str, lock: LockHandle) -> str | None:
        body = self._stream(self.path(ws))  # streamed to disk: no second copy in memory
        if body is None:
            return None
        p = self.backup_dir / self.path(ws)
        return str(backup_file(p.parent, p.name, body.iter_chunks(1 << 20)))

    def _stored_md5(self, ws: str, lock: LockHandle | None) -> str:
        # S3 defines the ETag of a single-part object stored plain or with SSE-S3 as the MD5 of the bytes it
        # stored, so a HEAD answers without downloading 50 MB. Other ETags (SSE-KMS, SSE-C, multipart, some
        # S3-compatible stores) are no digest: those bytes are read back and hashed.
        head = self._head(self.path(ws))
        if head is None:
            return hashlib.md5(b"").hexdigest()
        etag = str(head.get("ETag", "")).strip('"').lower()
        if (_MD5_HEX.fullmatch(etag) and not str(head.get("ServerSideEncryption", "")).startswith("aws:kms")
                and "SSECustomerAlgorithm" not in head):
            return etag
        body = self._stream(self.path(ws))
        digest = hashlib.md5()
        for chunk in body.iter_chunks(1 << 20) if body is not None else ():
            digest.update(chunk)
        return digest.hexdigest()

    def _backup(self, ws: str, prior: bytes) -> str:
        p = self.backup_dir / self.path(ws)
        return str(backup_file(p.parent, p.name, prior))

    # ---- digest ------------------------------------------------------------------------

    def _digest_key(self, ws: str) -> str:
        return self.lock_id_key(ws) + "-md5"

    def _expected_md5(self, ws: str) -> str | None:
        if not self.table:
            return None
        try:
            item = self.ddb.get_item(TableName=self.table, Key={"LockID": {"S": self._digest_key(ws)}},
                                     ConsistentRead=True).get("Item")
        except Exception as e:
            raise aws_error(e, "cannot read the state digest", f"dynamodb:{self.table}") from e
        return item["Digest"]["S"] if item and "Digest" in item else None

    def _after_write(self, ws: str, md5: str) -> None:
        if not self.table:
            return
        try:
            self.ddb.put_item(TableName=self.table, Item={
                "LockID": {"S": self._digest_key(ws)},
                "Digest": {"S": md5},
            })
        except Exception as e:
            raise aws_error(e, "state written but its digest could not be updated "
                            "(terraform will refuse to read it until it is)", f"dynamodb:{self.table}") from e

    # ---- locks -----------------------------------------------------------------------------

    def _lockfile(self, ws: str) -> str:
        return self.path(ws) + ".tflock"

    def _ddb_holder(self, ws: str) -> tuple[LockInfo, str] | None:
        try:
            item = self.ddb.get_item(TableName=self.table, Key={"LockID": {"S": self.lock_id_key(ws)}},
                                     ConsistentRead=True).get("Item")
        except Exception as e:
            raise aws_error(e, "cannot read the lock", f"dynamodb:{self.table}") from e
        if not item or "Info" not in item:
            return None
        raw = item["Info"]["S"]
        return LockInfo.from_json(raw), raw

    def _file_holder(self, ws: str) -> LockInfo | None:
        raw = self._get(self._lockfile(ws))
        return LockInfo.from_json(raw) if raw is not None else None

    def holder(self, ws: str) -> LockInfo | None:
        if self.table:
            got = self._ddb_holder(ws)
            if got:
                return got[0]
            if not self.use_lockfile:
                return None
        return self._file_holder(ws)

    def _lock(self, ws: str, info: LockInfo, create: bool) -> LockHandle:
        info.Path = self.lock_id_key(ws)
        body = info.to_json()
        took_file = False
        if self.use_lockfile:
            try:
                self.s3.put_object(Bucket=self.bucket, Key=self._lockfile(ws), Body=body,
                                   ContentType="application/json", IfNoneMatch="*")
                took_file = True
            except Exception as e:
                if _code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    holder = self._file_holder(ws) or LockInfo(ID="?", Operation="?")
                    raise held_error(ws, self.where(ws), holder) from e
                raise aws_error(e, "cannot create the lock file", self.where(ws) + ".tflock") from e
        if self.table:
            try:
                self.ddb.put_item(
                    TableName=self.table,
                    Item={"LockID": {"S": self.lock_id_key(ws)}, "Info": {"S": body.decode()}},
                    ConditionExpression="attribute_not_exists(LockID)",
                )
            except Exception as e:
                if took_file:
                    self._delete_lockfile(ws, info.ID)
                if _code(e) == "ConditionalCheckFailedException":
                    got = self._ddb_holder(ws)
                    raise held_error(ws, self.where(ws), got[0] if got else LockInfo("?", "?")) from e
                raise aws_error(e, "cannot take the DynamoDB lock", f"dynamodb:{self.table}") from e
        # The exact Info we put: releasing is then one conditional delete, with no read first.
        return LockHandle(self, ws, info, extra={"ddb_info": body.decode()})

    def _delete_lockfile(self, ws: str, lock_id: str) -> None:
        current = self._file_holder(ws)
        if current is None:
            return
        if lock_id != current.ID:
            raise held_error(ws, self.where(ws) + ".tflock", current)
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self._lockfile(ws))
        except Exception as e:
            raise aws_error(e, "cannot delete the lock file", self.where(ws) + ".tflock") from e

    def _delete_ddb_lock(self, ws: str, lock_id: str, raw: str | None = None) -> None:
        if raw is None:
            got = self._ddb_holder(ws)
            if got is None:
                return
            info, raw = got
            if lock_id != info.ID:
                raise held_error(ws, self.where(ws), info)
        try:
            # Conditional, so a lock someone took in between is never deleted.
            self.ddb.delete_item(
                TableName=self.table, Key={"LockID": {"S": self.lock_id_key(ws)}},
                ConditionExpression="Info = :info", ExpressionAttributeValues={":info": {"S": raw}},
            )
        except Exception as e:
            if _code(e) == "ConditionalCheckFailedException":
                now = self._ddb_holder(ws)
                if now is None:
                    return  # already released (force-unlocked): nothing of ours is left
                if lock_id != now[0].ID:
                    raise held_error(ws, self.where(ws), now[0]) from e
                raise LockError("the lock changed while releasing it", where=self.where(ws),
                                hint="check who holds it now") from e
            raise aws_error(e, "cannot release the DynamoDB lock", f"dynamodb:{self.table}") from e

    def _unlock(self, lock: LockHandle) -> None:
        if self.table:
            self._delete_ddb_lock(lock.workspace, lock.id, lock.extra.get("ddb_info"))
        if self.use_lockfile:
            self._delete_lockfile(lock.workspace, lock.id)

    def force_unlock(self, ws: str, lock_id: str) -> None:
        found = False
        if self.table and (got := self._ddb_holder(ws)) and lock_id == got[0].ID:
            self._delete_ddb_lock(ws, lock_id)
            found = True
        if self.use_lockfile and (cur := self._file_holder(ws)) and lock_id == cur.ID:
            self._delete_lockfile(ws, lock_id)
            found = True
        if not found:
            raise LockError(f"no lock with ID {lock_id} on workspace {ws!r}", where=self.where(ws),
                            hint="check the ID in the lock error message")

    def _delete(self, ws: str, lock: LockHandle) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.path(ws))
            if self.table:
                self.ddb.delete_item(TableName=self.table, Key={"LockID": {"S": self._digest_key(ws)}})
        except Exception as e:
            raise aws_error(e, "cannot delete the workspace", self.where(ws)) from e
        self._unlock(lock)
