"""Our native backends against the real terraform binary (local, and S3 on moto server)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from migrate.errors import LockError
from migrate.terraform.backends.base import Backend
from migrate.terraform.backends.local import LocalBackend
from migrate.terraform.backends.s3 import S3Backend
from migrate.terraform.cli import TerraformCLI, TerraformCommandFailed, TerraformVersion
from migrate.terraform.state import State
from migrate.terraform.workspaces import detach, duplicate_workspace

KEY = "platform/terraform.tfstate"


def _stack(kind: str, tmp_path: Path, tf_version: TerraformVersion, tf_env: dict[str, str], kit: Any,
           request: pytest.FixtureRequest) -> tuple[TerraformCLI, Backend]:
    work = tmp_path / "stack"
    work.mkdir()
    if kind == "local":
        kit.write_stack(work)
        backend: Backend = LocalBackend(work)
    else:
        aws = request.getfixturevalue("aws")
        lockfile = tf_version.at_least(1, 10)
        kit.write_stack(work, kit.s3_backend_block(tf_version, aws, KEY, use_lockfile=lockfile))
        backend = S3Backend(aws.bucket, KEY, dynamodb_table=aws.table, use_lockfile=lockfile,
                            endpoint_url=aws.endpoint, backup_dir=tmp_path / "backups")
    cli = TerraformCLI(work, env=tf_env, timeout=120)
    cli.init()
    cli.apply()
    return cli, backend


@pytest.fixture(params=["local", "s3"])
def stack(request: pytest.FixtureRequest, tmp_path: Path, tf_version: TerraformVersion,
          tf_env: dict[str, str], kit: Any) -> tuple[TerraformCLI, Backend]:
    return _stack(request.param, tmp_path, tf_version, tf_env, kit, request)


def test_duplicate_detach_and_terraform_agrees(stack: tuple[TerraformCLI, Backend], kit: Any,
                                                tmp_path: Path) -> None:
    cli, backend = stack
    blob = backend.read("default")
    old = blob.state
    assert old is not None
    assert old.to_bytes() == blob.raw  # terraform-written state round-trips byte for byte
    closure = old.dependents(["terraform_data.cluster"])
    assert sorted(closure) == sorted(kit.CLUSTER_CLOSURE)

    result = duplicate_workspace(backend, "default", "green")
    assert result.source_lineage == old.lineage != result.new_lineage
    again = duplicate_workspace(backend, "default", "green")
    assert again.already_done and again.new_lineage == result.new_lineage
    detached = detach(backend, "green", closure)
    assert sorted(detached.removed) == sorted(kit.CLUSTER_CLOSURE)
    assert detach(backend, "green", closure, missing_ok=True).already_done

    # terraform sees the copy and exactly the expected addresses in both workspaces
    assert "green" in cli.workspace_list()
    green = cli.in_workspace("green")
    assert sorted(green.state_list()) == sorted(kit.SHARED)
    assert sorted(cli.state_list()) == sorted(kit.SHARED + kit.CLUSTER_CLOSURE)

    # terraform refuses to push the old state over the copy (different lineage)
    pulled = tmp_path / "old.tfstate"
    pulled.write_bytes(cli.state_pull())
    with pytest.raises(TerraformCommandFailed) as e:
        green.state_push(pulled)
    assert "lineage" in e.value.stderr_tail

    # terraform waits for our lock, and works once we release it
    with backend.locked("green", "test hold") as held:
        with pytest.raises(TerraformCommandFailed) as e:
            green.state_mv("terraform_data.zone", "terraform_data.zone2", lock_timeout="2s")
        assert "lock" in e.value.stderr_tail.lower()
        assert e.value.retryable  # a lock conflict is worth retrying
        # terraform parsed our lock record: it prints our ID and holder back
        assert held.id in e.value.stderr_tail and held.info.Who in e.value.stderr_tail
    # ... and really waits: started while we hold the lock, it goes ahead once we release it
    held = backend.lock("green", "test hold, released after 3 s")
    release = threading.Timer(3.0, backend.unlock, args=(held,))
    t0 = time.monotonic()
    release.start()
    try:
        green.state_mv("terraform_data.zone", "terraform_data.zone2", lock_timeout="60s")
    finally:
        release.join()
    assert time.monotonic() - t0 >= 2.5  # it did not go ahead while our lock was held
    green.state_mv("terraform_data.zone2", "terraform_data.zone", lock_timeout="5s")
    for ws_cli in (green, cli):
        ws_cli.state_mv("terraform_data.zone", "terraform_data.zone2", lock_timeout="5s")
        ws_cli.state_mv("terraform_data.zone2", "terraform_data.zone", lock_timeout="5s")
    # ... and released its own lock: we can take ours again in both workspaces
    for ws in ("default", "green"):
        with backend.locked(ws, "after terraform"):
            pass
    green_blob = backend.read("green")
    copy = green_blob.state
    assert copy is not None and copy.lineage == result.new_lineage
    assert copy.to_bytes() == green_blob.raw  # ... also after terraform rewrote our copy
    # Terraform drops unknown top-level fields when it writes, so our origin marker is gone;
    # the lineage (journaled by the engine) still identifies the copy.
    assert copy.origin is None
    again = duplicate_workspace(backend, "default", "green", expected_lineage=result.new_lineage)
    assert again.already_done


def test_we_respect_terraforms_lock(stack: tuple[TerraformCLI, Backend], kit: Any) -> None:
    cli, backend = stack
    main = cli.workdir / "main.tf"
    main.write_text(main.read_text() + kit.SLEEPER_TF)
    cli.workspace_new("probe")
    cli.workspace_select("default")
    proc = kit.run_in_background(cli.in_workspace("probe"), "apply", "-auto-approve", "-input=false")
    try:
        assert kit.wait_for(lambda: backend.holder("probe") is not None, timeout=15)
        holder = backend.holder("probe")
        assert holder is not None
        with pytest.raises(LockError) as e:
            backend.lock("probe", "must fail")
        assert holder.ID in str(e.value) and holder.Who in str(e.value)
        assert "force-unlock" in (e.value.hint or "")
        assert e.value.holder["Operation"] == "OperationTypeApply"
    finally:
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-500:]
    with backend.locked("probe", "after terraform"):
        pass


def test_s3_digest_matches_and_terraform_reads_our_writes(
    tmp_path: Path, tf_version: TerraformVersion, tf_env: dict[str, str], kit: Any,
    request: pytest.FixtureRequest,
) -> None:
    cli, backend = _stack("s3", tmp_path, tf_version, tf_env, kit, request)
    assert isinstance(backend, S3Backend)
    with backend.locked("default", "bump") as lock:
        blob = backend.read("default", lock)
        assert blob.state is not None
        res = backend.write("default", blob.state.rm(["terraform_data.zone"])[0].bumped(), lock)
    aws = request.getfixturevalue("aws")
    body = aws.s3.get_object(Bucket=aws.bucket, Key=KEY)["Body"].read()
    item = aws.ddb.get_item(TableName=aws.table, Key={"LockID": {"S": f"{aws.bucket}/{KEY}-md5"}})["Item"]
    assert item["Digest"]["S"] == hashlib.md5(body).hexdigest() == res.md5
    assert "terraform_data.zone" not in cli.state_list()  # terraform accepts the new digest
    assert res.backup and Path(res.backup).stat().st_mode & 0o777 == 0o600
    assert State.parse(Path(res.backup).read_bytes(), "b") == blob.state
    # terraform deletes a workspace created by us, with its digest
    duplicate_workspace(backend, "default", "blue")
    cli.workspace_delete("blue", force=True)
    assert backend.workspaces() == ["default"]
    assert "Item" not in aws.ddb.get_item(TableName=aws.table,
                                          Key={"LockID": {"S": f"{aws.bucket}/env:/blue/{KEY}-md5"}})
