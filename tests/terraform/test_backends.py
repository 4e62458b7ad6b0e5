"""Backends and workspace operations on our side: local files and S3 on moto server.

Every bad input must raise a clear error and leave the stored objects as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from migrate.errors import ConfigError, LockError, StateError
from migrate.terraform.backends.base import Backend
from migrate.terraform.backends.local import LocalBackend
from migrate.terraform.backends.s3 import S3Backend
from migrate.terraform.state import State
from migrate.terraform.workspaces import detach, duplicate_workspace, handover, retire

KEY = "platform/terraform.tfstate"


def sample_state() -> State:
    def r(t: str, n: str, deps: list[str] | None = None) -> dict[str, Any]:
        inst: dict[str, Any] = {"schema_version": 0, "attributes": {"id": f"{t}-{n}"}}
        if deps:
            inst["dependencies"] = deps
        return {"mode": "managed", "type": t, "name": n,
                "provider": 'provider["registry.terraform.io/hashicorp/aws"]', "instances": [inst]}

    return State.from_dict({
        "version": 4, "terraform_version": "1.11.4", "serial": 7, "lineage": "lin-old", "outputs": {},
        "resources": [r("aws_vpc", "main"), r("aws_eks_cluster", "this", ["aws_vpc.main"]),
                      r("aws_eks_node_group", "ng", ["aws_eks_cluster.this"]), r("aws_route53_zone", "z")],
        "check_results": None,
    }).sorted()


@pytest.fixture(params=["local", "s3", "s3-lockfile"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        b: Backend = LocalBackend(tmp_path / "work")
        (tmp_path / "work").mkdir()
    else:
        aws = request.getfixturevalue("aws")
        lockfile = request.param == "s3-lockfile"
        b = S3Backend(aws.bucket, KEY, dynamodb_table=None if lockfile else aws.table, use_lockfile=lockfile,
                      endpoint_url=aws.endpoint, backup_dir=tmp_path / "backups")
    with b.locked("default", "seed") as lock:
        b.write("default", sample_state(), lock)
    return b


def snapshot(b: Backend) -> dict[str, bytes | None]:
    return {ws: b._read_raw(ws) for ws in b.workspaces()}


def put_raw(b: Backend, ws: str, data: bytes) -> None:
    """Store bytes bypassing our checks (simulates a foreign or broken writer)."""
    if isinstance(b, LocalBackend):
        p = b.path(ws)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    else:
        assert isinstance(b, S3Backend)
        b.s3.put_object(Bucket=b.bucket, Key=b.path(ws), Body=data)
        if b.table:
            b._after_write(ws, hashlib.md5(data).hexdigest())  # a consistent digest: only the content is bad


def test_lifecycle_duplicate_detach_handover_retire(backend: Backend) -> None:
    dup = duplicate_workspace(backend, "default", "green", exclude=["aws_eks_cluster.this",
                                                                   "aws_eks_node_group.ng"])
    assert dup.excluded == ("aws_eks_cluster.this", "aws_eks_node_group.ng")
    copied = backend.read("green").state
    assert copied is not None and copied.addresses() == ["aws_route53_zone.z", "aws_vpc.main"] and dup.count == 2
    assert backend.workspaces() == ["default", "green"]
    assert duplicate_workspace(backend, "default", "green").already_done
    copy = backend.read("green").state
    assert copy is not None and copy.lineage != "lin-old" and copy.serial >= 7

    det = detach(backend, "green", ["aws_route53_zone.z"])
    assert det.removed == ("aws_route53_zone.z",) and det.serial == copy.serial + 1
    with pytest.raises(StateError, match="aws_route53_zone"):
        detach(backend, "green", ["aws_route53_zone.z"])
    assert detach(backend, "green", ["aws_route53_zone.z"], missing_ok=True).already_done

    # zone is no longer in green: handing it over would orphan it
    before = snapshot(backend)
    with pytest.raises(StateError, match="unmanaged"):
        handover(backend, "default", "green", ["aws_vpc.main", "aws_route53_zone.z"])
    assert snapshot(backend) == before
    with pytest.raises(StateError, match=r"aws_nope\.x"):
        handover(backend, "default", "green", ["aws_vpc.main", "aws_nope.x"])
    assert snapshot(backend) == before
    ho = handover(backend, "default", "green", ["aws_vpc.main"])
    assert ho.handed_over == ("aws_vpc.main",)
    assert handover(backend, "default", "green", ["aws_vpc.main"]).already_done

    with pytest.raises(StateError, match="still manages"):
        retire(backend, "green")
    with backend.locked("green", "empty it") as lock:
        blob = backend.read("green", lock)
        assert blob.state is not None
        backend.write("green", blob.state.rm(["aws_vpc.main"])[0].bumped(), lock)
    assert not retire(backend, "green").already_done
    assert backend.workspaces() == ["default"]
    assert retire(backend, "green").already_done
    with pytest.raises(StateError, match="default workspace"):
        retire(backend, "default")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"version": 4, "lineage": ', "not valid JSON"),
        (b'{"version": 3, "serial": 1, "lineage": "x"}', "unsupported state format version 3"),
        (b'{"version": 5, "serial": 1, "lineage": "x"}', "unsupported state format version 5"),
        (json.dumps({"meta": {"key_provider.pbkdf2.k": "x"}, "encrypted_data": "QUJD",
                     "encryption_version": "v0"}).encode(), "encrypted"),
    ],
)
def test_bad_source_state_refused_and_nothing_written(backend: Backend, raw: bytes, needle: str) -> None:
    put_raw(backend, "default", raw)
    before = snapshot(backend)
    with pytest.raises(StateError) as e:
        duplicate_workspace(backend, "default", "green")
    assert needle in e.value.what and e.value.where == backend.where("default")
    assert snapshot(backend) == before


def test_missing_workspace(backend: Backend) -> None:
    before = snapshot(backend)
    with pytest.raises(StateError, match="does not exist") as e:
        duplicate_workspace(backend, "nope", "green")
    assert "default" in (e.value.hint or "")
    with pytest.raises(StateError, match="does not exist"):
        detach(backend, "nope", ["aws_vpc.main"])
    assert snapshot(backend) == before


def test_unknown_address_writes_nothing(backend: Backend) -> None:
    before = snapshot(backend)
    with pytest.raises(StateError, match=r"aws_nope\.x"):
        duplicate_workspace(backend, "default", "green", exclude=["aws_nope.x"])
    with pytest.raises(StateError, match=r"aws_nope\.x"):
        detach(backend, "default", ["aws_vpc.main", "aws_nope.x"])
    with pytest.raises(StateError, match="invalid resource address"):
        detach(backend, "default", ["not an address"])
    assert snapshot(backend) == before


def test_held_lock_names_holder_and_blocks_everything(backend: Backend) -> None:
    before = snapshot(backend)
    with backend.locked("default", "someone else", info="pipeline 42") as held:
        with pytest.raises(LockError) as e:
            duplicate_workspace(backend, "default", "green")
        err = e.value
        assert held.id in str(err) and held.info.Who in str(err) and held.info.Created in str(err)
        assert f"force-unlock {held.id}" in (err.hint or "")
        assert err.holder["Operation"] == "someone else"
        with pytest.raises(LockError):
            detach(backend, "default", ["aws_vpc.main"])
    assert snapshot(backend) == before


def test_write_refused_without_lock(backend: Backend) -> None:
    before = snapshot(backend)
    with pytest.raises(LockError, match="without holding its lock"):
        backend.write("default", sample_state().bumped(), None)
    with backend.locked("default", "x") as other_ws_lock:
        pass
    with pytest.raises(LockError):
        backend.write("default", sample_state().bumped(), other_ws_lock)  # released
    assert snapshot(backend) == before


def test_force_unlock_by_id_only(backend: Backend) -> None:
    lock = backend.lock("default", "stale")
    if isinstance(backend, LocalBackend):
        # A local lock dies with its process: only a live one of ours can be seen here.
        backend.force_unlock("default", lock.id)
    else:
        with pytest.raises(LockError, match="no lock with ID"):
            backend.force_unlock("default", "wrong-id")
        backend.force_unlock("default", lock.id)
        # the owner notices it lost the lock and refuses to write
        with pytest.raises(LockError, match="is gone"):
            backend.write("default", sample_state().bumped(), lock)
    assert backend.holder("default") is None


def test_target_with_unrelated_state_refused(backend: Backend) -> None:
    with backend.locked("blue", "seed", create=True) as lock:
        backend.write("blue", sample_state().forked(), lock)
    before = snapshot(backend)
    with pytest.raises(StateError, match="not a copy"):
        duplicate_workspace(backend, "default", "blue")
    assert snapshot(backend) == before


def test_backups_keep_previous_bytes(backend: Backend) -> None:
    prior = backend._read_raw("default")
    with backend.locked("default", "change") as lock:
        res = backend.write("default", sample_state().rm(["aws_vpc.main"])[0].bumped(), lock)
    assert res.backup is not None
    assert Path(res.backup).read_bytes() == prior
    assert os.stat(res.backup).st_mode & 0o777 == 0o600


def test_s3_digest_mismatch_refused(aws: Any, tmp_path: Path) -> None:
    b = S3Backend(aws.bucket, KEY, dynamodb_table=aws.table, endpoint_url=aws.endpoint,
                  backup_dir=tmp_path / "bk")
    with b.locked("default", "seed") as lock:
        b.write("default", sample_state(), lock)
    aws.ddb.put_item(TableName=aws.table, Item={"LockID": {"S": f"{aws.bucket}/{KEY}-md5"},
                                                "Digest": {"S": "0" * 32}})
    before = snapshot(b)
    with pytest.raises(StateError, match="expected content") as e:
        duplicate_workspace(b, "default", "green")
    assert "md5" in e.value.what and e.value.where == f"s3://{aws.bucket}/{KEY}"
    assert snapshot(b) == before and b.workspaces() == ["default"]


def test_s3_workspace_listing_matches_terraforms_shape(aws: Any, tmp_path: Path) -> None:
    b = S3Backend(aws.bucket, KEY, workspace_key_prefix="envs", use_lockfile=True, endpoint_url=aws.endpoint,
                  backup_dir=tmp_path / "bk")
    for key in ("envs/dev/platform/terraform.tfstate", "envs/dev/platform/terraform.tfstate.tflock",
                "envs/odd/other.tfstate", "envs/x/y/platform/terraform.tfstate", "platform/terraform.tfstate"):
        aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=b"")
    assert b.workspaces() == ["default", "dev"]
    assert b.where("dev") == f"s3://{aws.bucket}/envs/dev/{KEY}"


def test_s3_without_any_lock_is_a_config_error(aws: Any) -> None:
    with pytest.raises(ConfigError, match="no lock"):
        S3Backend(aws.bucket, KEY, endpoint_url=aws.endpoint)


def test_s3_lockfile_conditional_write_is_exclusive(aws: Any, tmp_path: Path) -> None:
    a = S3Backend(aws.bucket, KEY, use_lockfile=True, endpoint_url=aws.endpoint, backup_dir=tmp_path)
    b = S3Backend(aws.bucket, KEY, use_lockfile=True, endpoint_url=aws.endpoint, backup_dir=tmp_path)
    lock = a.lock("default", "first")
    with pytest.raises(LockError, match=lock.id):
        b.lock("default", "second")
    obj = aws.s3.get_object(Bucket=aws.bucket, Key=KEY + ".tflock")["Body"].read()
    info = json.loads(obj)
    assert list(info) == ["ID", "Operation", "Info", "Who", "Version", "Created", "Path"]
    assert info["Created"].endswith("Z") and "@" in info["Who"]
    a.unlock(lock)
    b.unlock(b.lock("default", "second"))


def test_local_layout_and_empty_file(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path)
    assert b.workspaces() == ["default"]
    assert b.read("default").state is None  # no file: no state yet
    (tmp_path / "terraform.tfstate").write_bytes(b"")
    assert b.read("default").state is None  # terraform leaves an empty file when it locks
    with b.locked("dev", "create", create=True) as lock:
        b.write("dev", sample_state(), lock)
        assert (tmp_path / "terraform.tfstate.d" / "dev" / ".terraform.tfstate.lock.info").exists()
        with pytest.raises(LockError):
            LocalBackend(tmp_path).lock("dev", "same process, other object")
    assert not (tmp_path / "terraform.tfstate.d" / "dev" / ".terraform.tfstate.lock.info").exists()
    assert b.workspaces() == ["default", "dev"]
    with pytest.raises(StateError, match="invalid workspace name"):
        b.lock("a/b", "x", create=True)


def test_make_backend(tmp_path: Path) -> None:
    from migrate.terraform.backends import make_backend

    assert isinstance(make_backend("local", root=tmp_path), LocalBackend)
    with pytest.raises(ConfigError, match="unsupported"):
        make_backend("azurerm")
    with pytest.raises(ConfigError, match="bad settings"):
        make_backend("local", nope=1)


def _count_calls(client: Any) -> list[str]:
    seen: list[str] = []
    client.meta.events.register("before-send", lambda **kw: seen.append(kw["event_name"].rsplit(".", 1)[-1]))
    return seen


class _Overwritten(S3Backend):
    """A writer that slips in right after our PUT (with a consistent digest): the read-back must notice."""

    def _put(self, ws: str, data: bytes, lock: Any) -> None:
        super()._put(ws, data, lock)
        self.s3.put_object(Bucket=self.bucket, Key=self.path(ws), Body=data.replace(b"lin-old", b"lin-foo"))


def test_s3_read_back_by_etag_catches_a_replaced_object(aws: Any, tmp_path: Path) -> None:
    b = _Overwritten(aws.bucket, KEY, dynamodb_table=aws.table, endpoint_url=aws.endpoint,
                     backup_dir=tmp_path / "bk")
    with b.locked("default", "seed") as lock, pytest.raises(StateError, match="read-back check failed"):
        b.write("default", sample_state(), lock)


@pytest.mark.parametrize("kms", [False, True])
def test_s3_stored_md5_is_a_head_unless_the_etag_is_no_digest(aws: Any, tmp_path: Path, kms: bool) -> None:
    # With SSE-KMS, S3's ETag is not the MD5 of the bytes: those are read back and hashed instead.
    b = S3Backend(aws.bucket, KEY, dynamodb_table=aws.table, endpoint_url=aws.endpoint,
                  backup_dir=tmp_path / "bk", encrypt=kms, kms_key_id="alias/state" if kms else None)
    with b.locked("default", "seed") as lock:
        res = b.write("default", sample_state(), lock)
    assert res.md5 == hashlib.md5(b._read_raw("default") or b"").hexdigest()
    calls = _count_calls(b.s3)
    assert b.stored_md5("default") == res.md5
    assert calls == (["HeadObject", "GetObject"] if kms else ["HeadObject"])


def test_s3_release_is_one_conditional_delete_and_never_frees_a_successors_lock(aws: Any, tmp_path: Path) -> None:
    b = S3Backend(aws.bucket, KEY, dynamodb_table=aws.table, endpoint_url=aws.endpoint, backup_dir=tmp_path / "bk")
    lock = b.lock("default", "ours")
    calls = _count_calls(b.ddb)
    b.unlock(lock)
    assert calls == ["DeleteItem"] and b.holder("default") is None
    stale = b.lock("default", "ours, then force-unlocked")
    b.force_unlock("default", stale.id)
    theirs = b.lock("default", "someone after us")
    with pytest.raises(LockError, match="locked by"):
        b.unlock(stale)
    held = b.holder("default")
    assert held is not None and theirs.id == held.ID
    b.unlock(theirs)
    gone = b.lock("default", "released twice")
    b.force_unlock("default", gone.id)
    b.unlock(gone)  # already gone: nothing of ours is left to release
    assert b.holder("default") is None
