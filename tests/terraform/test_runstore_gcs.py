"""The run lock and the journal kept next to a GCS state: what lets a second machine see, refuse and
resume a run that the first one started.

On the sandbox's gcp-storage-emulator (in this process), which adds GCS's generation preconditions that the
bare emulator ignores: "create only if absent" is what keeps a journal record from being overwritten."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.errors import JournalError, LockError, ProviderError
from migrate.terraform.runstore import BackendRunLock, GcsJournal


@pytest.fixture(scope="module")
def gcs_url() -> Iterator[str]:
    from migrate.sandbox.gcs import Gcs

    server = Gcs().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def client(gcs_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_url)
    return storage.Client(project="test", credentials=AnonymousCredentials())


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"tfstate-{uuid.uuid4().hex[:10]}"
    client.create_bucket(name)
    return name


def _backend(client: Any, bucket: str, tmp_path: Path) -> Any:
    from migrate.terraform.backends.gcs import GCSBackend

    return GCSBackend(bucket, "platform", client=client, backup_dir=tmp_path / "bk")


def test_run_lock_is_shared_and_names_the_holder(client: Any, bucket: str, tmp_path: Path) -> None:
    here, there = (BackendRunLock(_backend(client, bucket, tmp_path / m), "dev") for m in ("a", "b"))
    info = here.acquire("migrate", "run 1 on machine a")
    with pytest.raises(LockError) as e:
        there.acquire("migrate", "run 2 on machine b")
    assert "is locked by" in str(e.value) and info.Who in str(e.value)
    held = there.holder()
    assert held is not None and held.ID == info.ID and held.Info == "run 1 on machine a"
    with pytest.raises(LockError, match="does not match"):
        there.force_unlock("not-the-id")
    assert there.holder() is not None  # a wrong id releases nothing
    here.release()
    assert there.holder() is None
    again = there.acquire("migrate", "run 2 on machine b")
    there.force_unlock(again.ID)  # the right id releases a lock whose machine is gone
    assert here.holder() is None


def test_journal_is_append_only_and_seen_from_another_machine(client: Any, bucket: str) -> None:
    a = GcsJournal(client, bucket, "platform", "dev")
    b = GcsJournal(client, bucket, "platform", "dev")
    a.append({"type": "run.started", "run": "r1", "password": "hunter2"})
    b.append({"type": "step.done", "run": "r1", "step": "01"})
    assert [r["type"] for r in a.records()] == [r["type"] for r in b.records()] == ["run.started", "step.done"]
    assert "hunter2" not in str(a.records())  # records are redacted like the local journal
    names = sorted(blob.name for blob in client.list_blobs(bucket, prefix="platform/.migrate/dev/journal/"))
    assert names == ["platform/.migrate/dev/journal/0000000000.json", "platform/.migrate/dev/journal/0000000001.json"]
    # A record is never overwritten: a writer that missed the other's record is refused.
    stale = GcsJournal(client, bucket, "platform", "dev")
    stale._list = lambda: names[:1]  # type: ignore[method-assign]  # it lists before b's write lands
    with pytest.raises(JournalError, match="already exists"):
        stale.append({"type": "step.done", "run": "r1", "step": "02"})
    assert len(a.records()) == 2


def test_journal_errors_are_the_projects_own(client: Any) -> None:
    j = GcsJournal(client, f"missing-{uuid.uuid4().hex[:8]}", "platform", "dev")
    with pytest.raises(ProviderError) as e:
        j.append({"type": "run.started", "run": "r1"})
    assert "journal" in str(e.value) and "gs://" in (e.value.where or "")
