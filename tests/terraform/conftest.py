"""Fixtures for the terraform package: moto server, gcs emulator, real terraform projects."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.terraform.cli import TerraformCLI, TerraformVersion

DATA = Path(__file__).parent / "data"

# A small stack using only Terraform's builtin provider (no download needed).
# "cluster" plays the EKS cluster; nodes/addons/irsa depend on it; vpc/zone are shared.
STACK_TF = """
resource "terraform_data" "vpc" { input = "vpc-1" }
resource "terraform_data" "zone" {
  input = "zone-1"
}
resource "terraform_data" "cluster" { input = terraform_data.vpc.output }
resource "terraform_data" "nodes" {
  count = 2
  input = terraform_data.cluster.id
}
resource "terraform_data" "addon" {
  for_each = toset(["cni", "dns"])
  input    = terraform_data.cluster.id
}
module "irsa" {
  source  = "./irsa"
  cluster = terraform_data.cluster.id
}
"""
IRSA_TF = """
variable "cluster" { type = string }
resource "terraform_data" "role" { input = var.cluster }
"""
CLUSTER_CLOSURE = [
    "terraform_data.cluster",
    'terraform_data.addon["cni"]',
    'terraform_data.addon["dns"]',
    "terraform_data.nodes[0]",
    "terraform_data.nodes[1]",
    "module.irsa.terraform_data.role",
]
SHARED = ["terraform_data.vpc", "terraform_data.zone"]
# Holds the lock for a while: a local-exec provisioner is builtin, too.
SLEEPER_TF = """
resource "terraform_data" "sleeper" {
  triggers_replace = timestamp()
  provisioner "local-exec" { command = "sleep 3" }
}
"""


@pytest.fixture(scope="session")
def tf_version() -> TerraformVersion:
    if shutil.which("terraform") is None:
        pytest.skip("terraform binary not on PATH")
    return TerraformCLI(".").version()


@pytest.fixture(scope="session")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    rc = tmp_path_factory.mktemp("tfrc") / "terraformrc"
    rc.write_text("")
    return {
        "TF_CLI_CONFIG_FILE": str(rc),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(autouse=True)
def _aws_dummy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class AwsPlace:
    endpoint: str
    bucket: str
    table: str
    s3: object
    ddb: object


@pytest.fixture
def aws(moto_endpoint: str) -> AwsPlace:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:10]
    bucket, table = f"tfstate-{suffix}", f"locks-{suffix}"
    s3.create_bucket(Bucket=bucket)
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return AwsPlace(moto_endpoint, bucket, table, s3, ddb)


def s3_backend_block(version: TerraformVersion, aws: AwsPlace, key: str, *, use_lockfile: bool) -> str:
    """The backend block matching this terraform's S3 backend settings."""
    lines = [f'bucket = "{aws.bucket}"', f'key = "{key}"', 'region = "us-east-1"',
             f'dynamodb_table = "{aws.table}"', "skip_credentials_validation = true",
             "skip_region_validation = true", "skip_metadata_api_check = true"]
    if version.at_least(1, 6):
        lines += [f'endpoints = {{\n  s3 = "{aws.endpoint}"\n  dynamodb = "{aws.endpoint}"\n}}',
                  "use_path_style = true", "skip_requesting_account_id = true", "skip_s3_checksum = true"]
        if use_lockfile and version.at_least(1, 10):
            lines.append("use_lockfile = true")
    else:
        lines += [f'endpoint = "{aws.endpoint}"', f'dynamodb_endpoint = "{aws.endpoint}"',
                  "force_path_style = true"]
    return 'terraform {\n  backend "s3" {\n' + "\n".join(lines) + "\n  }\n}\n"


def write_stack(workdir: Path, backend_block: str = "", extra: str = "") -> None:
    (workdir / "irsa").mkdir(parents=True, exist_ok=True)
    (workdir / "irsa" / "main.tf").write_text(IRSA_TF)
    (workdir / "main.tf").write_text(backend_block + STACK_TF + extra)


@pytest.fixture
def tf_local(tmp_path: Path, tf_version: TerraformVersion, tf_env: dict[str, str]) -> TerraformCLI:
    """An applied stack in a local-backend working directory."""
    work = tmp_path / "stack"
    work.mkdir()
    write_stack(work)
    cli = TerraformCLI(work, env=tf_env, timeout=120)
    cli.init()
    cli.apply()
    return cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    pytest.importorskip("google.cloud.storage", reason="google-cloud-storage is not installed")
    exe = shutil.which("gcp-storage-emulator") or str(Path(sys.executable).parent / "gcp-storage-emulator")
    if not Path(exe).exists():
        pytest.skip("gcp-storage-emulator is not installed")
    port = free_port()
    proc = subprocess.Popen([exe, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.skip("gcp-storage-emulator did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def gcs_env(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    return gcs_endpoint


def run_in_background(cli: TerraformCLI, *args: str) -> subprocess.Popen[bytes]:
    env = cli._env(True)
    return subprocess.Popen(["terraform", *args], cwd=cli.workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(predicate, timeout: float = 10.0, step: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


os.environ.setdefault("CHECKPOINT_DISABLE", "1")


class Kit:
    """Helpers for test modules (with --import-mode=importlib they cannot import conftest)."""

    DATA = DATA
    CLUSTER_CLOSURE = CLUSTER_CLOSURE
    SHARED = SHARED
    SLEEPER_TF = SLEEPER_TF
    s3_backend_block = staticmethod(s3_backend_block)
    write_stack = staticmethod(write_stack)
    run_in_background = staticmethod(run_in_background)
    wait_for = staticmethod(wait_for)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
