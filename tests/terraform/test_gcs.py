"""GCS backend against gcp-storage-emulator, and terraform (>= 1.6, storage_custom_endpoint) on it.

The emulator ignores ``ifGenerationMatch`` preconditions, so exclusivity between two
writers racing on the very same instant cannot be shown here; the backend also checks
for an existing lock first, which these tests do exercise. For the same reason
terraform does not wait for our lock on the emulator (its conditional create
succeeds there), so that interop check is left to the local and S3 backends.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from migrate.errors import LockError, StateError
from migrate.terraform.cli import TerraformCLI, TerraformCommandFailed, TerraformVersion
from migrate.terraform.state import State
from migrate.terraform.workspaces import detach, duplicate_workspace, retire


@pytest.fixture
def gcs(gcs_env: str, tmp_path: Path) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from migrate.terraform.backends.gcs import GCSBackend

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    name = f"tfstate-{uuid.uuid4().hex[:10]}"
    client.create_bucket(name)
    return GCSBackend(name, "platform", client=client, backup_dir=tmp_path / "bk")


def seed(b: Any) -> State:
    state = State.from_dict({"version": 4, "terraform_version": "1.11.4", "serial": 2, "lineage": "L",
                             "outputs": {}, "check_results": None, "resources": [
                                 {"mode": "managed", "type": "google_container_cluster", "name": "c",
                                  "provider": 'provider["registry.terraform.io/hashicorp/google"]',
                                  "instances": [{"schema_version": 0, "attributes": {"id": "c"}}]},
                                 {"mode": "managed", "type": "google_compute_network", "name": "n",
                                  "provider": 'provider["registry.terraform.io/hashicorp/google"]',
                                  "instances": [{"schema_version": 0, "attributes": {"id": "n"}}]}]})
    with b.locked("default", "seed") as lock:
        b.write("default", state, lock)
    return state


def test_layout_lock_generation_and_lifecycle(gcs: Any) -> None:
    seed(gcs)
    names = {blob.name for blob in gcs.client.list_blobs(gcs.bucket_name)}
    assert names == {"platform/default.tfstate"}
    lock = gcs.lock("default", "hold", info="ci run")
    blob = gcs.bucket.get_blob("platform/default.tflock")
    assert lock.id == str(blob.generation)  # the lock ID is the object generation
    stored = json.loads(blob.download_as_bytes())
    assert stored["Path"] == f"gs://{gcs.bucket_name}/platform/default.tflock" and stored["Info"] == "ci run"
    with pytest.raises(LockError) as e:
        gcs.lock("default", "second")
    assert lock.id in str(e.value) and f"force-unlock {lock.id}" in (e.value.hint or "")
    with pytest.raises(LockError, match="no lock with ID"):
        gcs.force_unlock("default", "12345")  # another generation: not deleted
    with pytest.raises(LockError, match="not a GCS lock ID"):
        gcs.force_unlock("default", "abc")
    gcs.unlock(lock)
    assert gcs.holder("default") is None

    dup = duplicate_workspace(gcs, "default", "green", exclude=["google_container_cluster.c"])
    copied = gcs.read("green").state
    assert dup.count == 1 and copied is not None and copied.addresses() == ["google_compute_network.n"]
    assert gcs.workspaces() == ["default", "green"]
    assert duplicate_workspace(gcs, "default", "green").already_done
    det = detach(gcs, "green", ["google_compute_network.n"])
    assert det.removed == ("google_compute_network.n",)
    retire(gcs, "green")
    assert gcs.workspaces() == ["default"]
    assert {b.name for b in gcs.client.list_blobs(gcs.bucket_name)} == {"platform/default.tfstate"}


def test_bad_input_writes_nothing(gcs: Any) -> None:
    seed(gcs)
    gcs.bucket.blob("platform/broken.tfstate").upload_from_string(b'{"version": 4, ')
    gcs.bucket.blob("platform/enc.tfstate").upload_from_string(
        json.dumps({"meta": {}, "encrypted_data": "x", "encryption_version": "v0"}).encode())
    gcs.bucket.blob("platform/nested/x.tfstate").upload_from_string(b"{}")  # not a workspace
    assert gcs.workspaces() == ["default", "broken", "enc"]
    before = {b.name: b.download_as_bytes() for b in gcs.client.list_blobs(gcs.bucket_name)}
    with pytest.raises(StateError, match="not valid JSON") as e:
        duplicate_workspace(gcs, "broken", "copy")
    assert e.value.where == f"gs://{gcs.bucket_name}/platform/broken.tfstate"
    with pytest.raises(StateError, match="encrypted"):
        duplicate_workspace(gcs, "enc", "copy")
    with pytest.raises(StateError, match="does not exist"):
        duplicate_workspace(gcs, "missing", "copy")
    with pytest.raises(StateError, match="google_nope"):
        duplicate_workspace(gcs, "default", "copy", exclude=["google_nope.x"])
    with gcs.locked("default", "held"), pytest.raises(LockError):
        duplicate_workspace(gcs, "default", "copy")
    with pytest.raises(LockError, match="without holding"):
        gcs.write("default", State.empty(), None)
    after = {b.name: b.download_as_bytes() for b in gcs.client.list_blobs(gcs.bucket_name)}
    assert after == before


def test_terraform_sees_our_gcs_copy(gcs: Any, gcs_env: str, tf_version: TerraformVersion,
                                     tf_env: dict[str, str], tmp_path: Path, kit: Any) -> None:
    if not tf_version.at_least(1, 6):
        pytest.skip("terraform < 1.6 has no storage_custom_endpoint for the GCS backend")
    work = tmp_path / "stack"
    work.mkdir()
    block = (f'terraform {{\n  backend "gcs" {{\n    bucket = "{gcs.bucket_name}"\n    prefix = "platform"\n'
             f'    storage_custom_endpoint = "{gcs_env}/storage/v1/"\n    access_token = "dummy"\n  }}\n}}\n')
    kit.write_stack(work, block)
    cli = TerraformCLI(work, env=tf_env, timeout=120)
    cli.init()
    cli.apply()
    state = gcs.read("default").state
    closure = state.dependents(["terraform_data.cluster"])
    duplicate_workspace(gcs, "default", "green", exclude=closure)
    assert cli.workspace_list() == ["default", "green"]
    green = cli.in_workspace("green")
    assert sorted(green.state_list()) == sorted(kit.SHARED)
    assert sorted(cli.state_list()) == sorted(kit.SHARED + kit.CLUSTER_CLOSURE)
    old = tmp_path / "old.tfstate"
    old.write_bytes(cli.state_pull())
    with pytest.raises(TerraformCommandFailed) as e:
        green.state_push(old)
    assert "lineage" in e.value.stderr_tail
    # terraform takes and releases its lock in our workspace; ours works afterwards
    green.state_mv("terraform_data.zone", "terraform_data.zone2")
    with gcs.locked("green", "after terraform"):
        pass
    assert "terraform_data.zone2" in gcs.read("green").state.addresses()
