"""Terraform's ``gcs`` backend, natively with google-cloud-storage.

Layout: ``<prefix>/<ws>.tfstate`` (default workspace: ``default.tfstate``). The lock
is ``<prefix>/<ws>.tflock``, created only if absent (``ifGenerationMatch=0``); its
ID is the object's generation, and unlocking deletes only that generation, so a
lock someone re-took in between is never removed. Works against
gcp-storage-emulator through STORAGE_EMULATOR_HOST or ``api_endpoint``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.errors import CredentialsError, LockError, ProviderError
from migrate.terraform.backends.base import (
    DEFAULT_WORKSPACE,
    Backend,
    LockHandle,
    LockInfo,
    backup_file,
    held_error,
)

STATE_SUFFIX = ".tfstate"
LOCK_SUFFIX = ".tflock"


def gcs_error(e: Exception, what: str, where: str) -> ProviderError:
    from google.api_core import exceptions as gexc

    if isinstance(e, gexc.Unauthorized | gexc.Forbidden):
        return CredentialsError(f"{what}: {e.message}", where=where,
                                hint="check GOOGLE_APPLICATION_CREDENTIALS and the bucket's IAM")
    if isinstance(e, gexc.GoogleAPICallError):
        retry = isinstance(e, gexc.TooManyRequests | gexc.ServerError | gexc.ServiceUnavailable)
        return ProviderError(f"{what}: {e.code} {e.message}", where=where, hint="see the GCS error above",
                             retryable=retry)
    if isinstance(e, OSError | ConnectionError):
        return ProviderError(f"{what}: {e}", where=where, hint="check the endpoint and network", retryable=True)
    return ProviderError(f"{what}: {e}", where=where)


class GCSBackend(Backend):
    kind = "gcs"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        project: str | None = None,
        api_endpoint: str | None = None,
        backup_dir: str | Path | None = None,
    ) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.backup_dir = Path(backup_dir or ".migrate/backups").absolute() / "gcs" / bucket
        if client is None:
            import importlib

            # google.cloud is a namespace package that mypy cannot always see into; import by name.
            storage = importlib.import_module("google.cloud.storage")

            kwargs: dict[str, Any] = {"project": project or "migrate"}
            if api_endpoint:
                from google.auth.credentials import AnonymousCredentials

                kwargs.update(client_options={"api_endpoint": api_endpoint}, credentials=AnonymousCredentials())
            client = storage.Client(**kwargs)
        self.client = client
        self.bucket = client.bucket(bucket)

    def _name(self, ws: str, suffix: str) -> str:
        return f"{self.prefix}/{ws}{suffix}" if self.prefix else f"{ws}{suffix}"

    def where(self, ws: str) -> str:
        return f"gs://{self.bucket_name}/{self._name(ws, STATE_SUFFIX)}"

    def _lock_url(self, ws: str) -> str:
        return f"gs://{self.bucket_name}/{self._name(ws, LOCK_SUFFIX)}"

    def workspaces(self) -> list[str]:
        # Like Terraform: direct children of the prefix ending in .tfstate.
        head = f"{self.prefix}/" if self.prefix else ""
        names: set[str] = set()
        try:
            for blob in self.client.list_blobs(self.bucket_name, prefix=head, delimiter="/"):
                base = blob.name[len(head):]
                if base.endswith(STATE_SUFFIX) and "/" not in base:
                    names.add(base[: -len(STATE_SUFFIX)])
        except Exception as e:
            raise gcs_error(e, "cannot list workspaces", f"gs://{self.bucket_name}/{head}") from e
        names.discard(DEFAULT_WORKSPACE)
        return [DEFAULT_WORKSPACE, *sorted(names)]

    def _download(self, name: str) -> tuple[bytes, int] | None:
        """Bytes and generation of an object, or None if absent."""
        from google.api_core.exceptions import NotFound

        try:
            blob = self.bucket.get_blob(name)
            if blob is None:
                return None
            generation = int(blob.generation or 0)  # read first: the download may reset it
            return bytes(blob.download_as_bytes(if_generation_match=generation)), generation
        except NotFound:
            return None
        except Exception as e:
            raise gcs_error(e, "cannot read the object", f"gs://{self.bucket_name}/{name}") from e

    def _read_raw(self, ws: str, lock: LockHandle | None = None) -> bytes | None:
        got = self._download(self._name(ws, STATE_SUFFIX))
        return got[0] if got else None

    def _put(self, ws: str, data: bytes, lock: LockHandle) -> None:
        try:
            self.bucket.blob(self._name(ws, STATE_SUFFIX)).upload_from_string(
                data, content_type="application/json")
        except Exception as e:
            raise gcs_error(e, "cannot write the state", self.where(ws)) from e

    def _backup(self, ws: str, prior: bytes) -> str:
        p = self.backup_dir / self._name(ws, STATE_SUFFIX)
        return str(backup_file(p.parent, p.name, prior))

    def holder(self, ws: str) -> LockInfo | None:
        got = self._download(self._name(ws, LOCK_SUFFIX))
        if got is None:
            return None
        raw, generation = got
        return LockInfo.from_json(raw, lock_id=str(generation))  # the generation is the ID

    def _lock(self, ws: str, info: LockInfo, create: bool) -> LockHandle:
        from google.api_core.exceptions import PreconditionFailed

        info.Path = self._lock_url(ws)
        blob = self.bucket.blob(self._name(ws, LOCK_SUFFIX))
        # Real GCS enforces if_generation_match=0 atomically. gcp-storage-emulator ignores
        # preconditions, so look first as well: same answer there, minus atomicity.
        current = self.holder(ws)
        if current is not None:
            raise held_error(ws, self._lock_url(ws), current)
        try:
            blob.upload_from_string(info.to_json(), content_type="application/json", if_generation_match=0)
        except PreconditionFailed as e:
            raise held_error(ws, self._lock_url(ws), self.holder(ws) or LockInfo("?", "?")) from e
        except Exception as e:
            raise gcs_error(e, "cannot create the lock object", self._lock_url(ws)) from e
        info.ID = str(blob.generation)
        return LockHandle(self, ws, info)

    def _delete_generation(self, ws: str, lock_id: str) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            generation = int(lock_id)
        except ValueError as e:
            raise LockError(f"{lock_id!r} is not a GCS lock ID (an object generation)", where=self._lock_url(ws),
                            hint="use the numeric ID from the lock error") from e
        current = self.holder(ws)
        try:
            if current is None or lock_id != current.ID:  # checked here too: the emulator ignores it
                raise PreconditionFailed("generation mismatch")
            self.bucket.delete_blob(self._name(ws, LOCK_SUFFIX), if_generation_match=generation)
        except (PreconditionFailed, NotFound) as e:
            current = self.holder(ws)
            raise LockError(f"no lock with ID {lock_id} on workspace {ws!r}", where=self._lock_url(ws),
                            hint=f"the lock now has ID {current.ID}" if current else "it is already released",
                            holder=current.as_dict() if current else None) from e
        except Exception as e:
            raise gcs_error(e, "cannot delete the lock object", self._lock_url(ws)) from e

    def _unlock(self, lock: LockHandle) -> None:
        self._delete_generation(lock.workspace, lock.id)

    def force_unlock(self, ws: str, lock_id: str) -> None:
        self._delete_generation(ws, lock_id)

    def _delete(self, ws: str, lock: LockHandle) -> None:
        try:
            self.bucket.delete_blob(self._name(ws, STATE_SUFFIX))
        except Exception as e:
            raise gcs_error(e, "cannot delete the workspace", self.where(ws)) from e
        self._unlock(lock)
