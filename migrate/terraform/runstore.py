"""Run locks and journals kept next to the Terraform state, so a run started on one machine can be
resumed from another (a CI runner, a colleague's laptop).

- The run lock is the backend's own lock (DynamoDB item / ``.tflock`` object / GCS generation lock) on a
  reserved pseudo-workspace ``migrate-run-<env>``: Terraform's lock JSON, Terraform's rules.
- The journal is one object per record, ``<prefix>/.migrate/<env>/journal/<seq>.json``, created only if
  absent, so a record is never overwritten; records are immutable and cached once read.
"""

from __future__ import annotations

import json
import posixpath
from datetime import UTC, datetime
from typing import Any

from migrate.cloud.aws.session import aws_errors, error_code
from migrate.errors import JournalError, LockError, ProviderError
from migrate.terraform.backends.base import Backend, LockHandle, LockInfo
from migrate.terraform.backends.gcs import gcs_error

RUN_WS = "migrate-run-{env}"


class BackendRunLock:
    def __init__(self, backend: Backend, env: str) -> None:
        self.backend = backend
        self.env = env
        self.ws = RUN_WS.format(env=env)
        self._handle: LockHandle | None = None

    def acquire(self, operation: str, info: str) -> LockInfo:
        try:
            self._handle = self.backend.lock(self.ws, operation, info=info, create=True)
        except LockError as e:
            held = self.backend.holder(self.ws)
            raise LockError(
                f"environment {self.env!r} is locked by "
                + (held.describe() if held else "another run"),
                where=self.backend.where(self.ws),
                hint="wait for that run to finish; if its machine is gone, release the lock with "
                "`invoke migrate --env ENV --force-unlock LOCK_ID`",
                holder=held.as_dict() if held else None,
            ) from e
        return self._handle.info

    def release(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self.backend.unlock(handle)

    def holder(self) -> LockInfo | None:
        return self.backend.holder(self.ws)

    def force_unlock(self, lock_id: str) -> None:
        held = self.backend.holder(self.ws)
        if held is None:
            raise LockError(f"environment {self.env!r} is not locked; nothing to unlock",
                            where=self.backend.where(self.ws))
        if lock_id != held.ID:
            raise LockError(f"lock ID {lock_id!r} does not match the held lock {held.ID!r}",
                            where=self.backend.where(self.ws), hint="copy the ID from the error that named the holder")
        self.backend.force_unlock(self.ws, lock_id)


class _ObjectJournal:
    """Shared logic: sequence-numbered immutable objects."""

    where: str

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any]] = {}

    def _list(self) -> list[str]:
        raise NotImplementedError

    def _get(self, name: str) -> bytes:
        raise NotImplementedError

    def _create(self, name: str, body: bytes) -> bool:
        """Create only if absent; False if it exists."""
        raise NotImplementedError

    def _name(self, seq: int) -> str:
        raise NotImplementedError

    def records(self) -> list[dict[str, Any]]:
        names = sorted(self._list())
        out = []
        for n in names:
            if n not in self._cache:
                try:
                    rec = json.loads(self._get(n))
                    if not isinstance(rec, dict) or "type" not in rec:
                        raise ValueError("not a journal record")
                except ValueError as e:
                    raise JournalError(f"journal object {n} is not a valid record ({e})", where=self.where,
                                       hint="restore it from the bucket's object versions") from None
                self._cache[n] = rec
            out.append(self._cache[n])
        return out

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        from migrate.redact import redact

        rec = {"ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **redact(record)}
        body = (json.dumps(rec, sort_keys=True, default=str) + "\n").encode()
        seq = len(self._list())
        if not self._create(self._name(seq), body):
            raise JournalError(f"journal record {seq} already exists: another run is writing this journal",
                               where=self.where, hint="check `invoke status` for the lock holder")
        self._cache[self._name(seq)] = rec
        return rec


class S3Journal(_ObjectJournal):
    def __init__(self, s3: Any, bucket: str, state_key: str, env: str) -> None:
        super().__init__()
        self.s3, self.bucket = s3, bucket
        self.prefix = posixpath.join(posixpath.dirname(state_key), ".migrate", env, "journal") + "/"
        self.where = f"s3://{bucket}/{self.prefix}"

    def _name(self, seq: int) -> str:
        return f"{self.prefix}{seq:010d}.json"

    def _list(self) -> list[str]:
        names: list[str] = []
        with aws_errors("listing the journal", where=self.where):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                names += [o["Key"] for o in page.get("Contents", [])]
        return names

    def _get(self, name: str) -> bytes:
        with aws_errors("reading the journal", where=self.where):
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=name)["Body"].read())

    def _create(self, name: str, body: bytes) -> bool:
        try:
            with aws_errors("writing the journal", where=self.where):
                self.s3.put_object(Bucket=self.bucket, Key=name, Body=body, IfNoneMatch="*",
                                   ContentType="application/json")
            return True
        except ProviderError as e:
            if error_code(e) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise


class GcsJournal(_ObjectJournal):
    def __init__(self, client: Any, bucket: str, prefix: str, env: str) -> None:
        super().__init__()
        self.client, self.bucket_name = client, bucket
        self.bucket = client.bucket(bucket)
        self.prefix = posixpath.join(prefix.strip("/"), ".migrate", env, "journal").lstrip("/") + "/"
        self.where = f"gs://{bucket}/{self.prefix}"

    def _name(self, seq: int) -> str:
        return f"{self.prefix}{seq:010d}.json"

    def _list(self) -> list[str]:
        try:
            return [b.name for b in self.client.list_blobs(self.bucket_name, prefix=self.prefix)]
        except Exception as e:  # google-api-core and transport errors become the project's own
            raise gcs_error(e, "listing the journal", self.where) from e

    def _get(self, name: str) -> bytes:
        try:
            return bytes(self.bucket.blob(name).download_as_bytes())
        except Exception as e:
            raise gcs_error(e, "reading the journal", self.where) from e

    def _create(self, name: str, body: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        try:
            self.bucket.blob(name).upload_from_string(body, content_type="application/json", if_generation_match=0)
            return True
        except PreconditionFailed:
            return False
        except Exception as e:
            raise gcs_error(e, "writing the journal", self.where) from e
