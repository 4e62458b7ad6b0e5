"""Benchmark: duplicate a workspace on S3 (moto server) natively vs. with the terraform CLI.

Generates a realistic state (a shared VPC/DNS/IAM estate plus an EKS cluster with
node groups, add-ons, OIDC, IRSA roles, Helm and Kubernetes objects), stores it
in moto's S3 with a DynamoDB lock table, then times:

* ours: exactly what the engine's two steps do, the same library calls in the same
  order (``engine_steps`` below mirrors migrate/steps/terraform.py):
  duplicate-workspace (``is_done``: does the target exist; ``apply``:
  ``duplicate_workspace(exclude=<planned cluster closure>, missing_ok=True)``, i.e.
  read + parse, copy with a fresh lineage minus the closure, write, read-back check,
  digest update, under the DynamoDB lock), then detach-cluster (``apply``: the copy's
  stored digest against the one written, a HEAD that finds it unchanged, so nothing
  is left to remove and nothing is written). The closure is computed at planning time, outside
  the timing, as the engine does; the CLI is given the same list;
* terraform: ``state pull``, ``workspace new``, ``state push``, ``state rm <closure>``.

Run: ``python bench/terraform_duplicate.py [--sizes 5,50] [--no-cli]``. Prints figures;
not a test. moto runs in a subprocess so the memory figures are ours alone.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migrate.terraform import _tfjson
from migrate.terraform.backends.s3 import S3Backend
from migrate.terraform.state import State
from migrate.terraform.workspaces import DuplicateResult, detach, duplicate_workspace

AWS = 'provider["registry.terraform.io/hashicorp/aws"]'
HELM = 'provider["registry.terraform.io/hashicorp/helm"]'
K8S = 'provider["registry.terraform.io/hashicorp/kubernetes"]'
KEY = "platform/terraform.tfstate"


def _instance(i: int, attrs: dict[str, Any], deps: list[str], key: Any = None) -> dict[str, Any]:
    inst: dict[str, Any] = {}
    if key is not None:
        inst["index_key"] = key
    inst.update({
        "schema_version": 1,
        "attributes": attrs,
        "sensitive_attributes": [],
        "private": base64.b64encode(json.dumps({"schema_version": "1", "n": i}).encode()).decode(),
    })
    if deps:
        inst["dependencies"] = deps
    return inst


def _attrs(kind: str, i: int) -> dict[str, Any]:
    tags = {"Name": f"{kind}-{i}", "env": "prod", "team": "platform", "cost-center": f"cc-{i % 17}"}
    return {
        "arn": f"arn:aws:{kind}:eu-west-1:123456789012:{kind}/{kind}-{i:06d}-{uuid.UUID(int=i).hex[:12]}",
        "id": f"{kind}-{i:06d}",
        "name": f"{kind}-{i}",
        "description": f"managed by terraform for {kind} number {i}",
        "tags": tags,
        "tags_all": {**tags, "managed-by": "terraform"},
        "timeouts": None,
        "ttl": 300,
        "records": [f"10.{i % 250}.{(i // 250) % 250}.{k}" for k in range(3)],
        "zone_id": "Z0123456789ABCDEFGHIJ",
        "enabled": i % 2 == 0,
    }


def generate(n_shared: int) -> State:
    res: list[dict[str, Any]] = []

    def add(rtype: str, name: str, n: int, deps: list[str], *, module: str = "", provider: str = AWS,
            mode: str = "managed", keyed: bool = True) -> None:
        r: dict[str, Any] = {"module": module} if module else {}
        r.update({"mode": mode, "type": rtype, "name": name})
        if keyed and n > 1:
            r["each"] = "map"
        r["provider"] = provider
        r["instances"] = [_instance(len(res) * 1000 + k, _attrs(rtype, len(res) * 1000 + k), deps,
                                    f"k{k}" if keyed and n > 1 else None) for k in range(n)]
        res.append(r)

    # shared estate
    add("aws_vpc", "main", 1, [], module="module.vpc")
    add("aws_subnet", "private", 6, ["module.vpc.aws_vpc.main"], module="module.vpc")
    add("aws_route53_zone", "main", 1, [])
    add("aws_iam_role", "admins", 1, [])
    per = 25
    for g in range(max(1, n_shared // per)):
        add("aws_route53_record", f"svc{g}", per, ["aws_route53_zone.main"])
    # the cluster and what depends on it
    add("aws_iam_role", "cluster", 1, [], module="module.eks")
    add("aws_eks_cluster", "this", 1, ["module.eks.aws_iam_role.cluster", "module.vpc.aws_subnet.private"],
        module="module.eks")
    add("aws_eks_node_group", "ng", 8, ["module.eks.aws_eks_cluster.this"], module="module.eks")
    add("aws_eks_addon", "this", 5, ["module.eks.aws_eks_cluster.this"], module="module.eks")
    add("aws_iam_openid_connect_provider", "oidc", 1, ["module.eks.aws_eks_cluster.this"], module="module.eks")
    add("aws_iam_role", "irsa", 20, ["module.eks.aws_iam_openid_connect_provider.oidc"])
    add("helm_release", "platform", 12, ["aws_iam_role.irsa", "module.eks.aws_eks_cluster.this"], provider=HELM)
    add("kubernetes_namespace", "team", 40, ["module.eks.aws_eks_cluster.this"], provider=K8S)
    add("aws_eks_cluster_auth", "this", 1, ["module.eks.aws_eks_cluster.this"], mode="data", keyed=False)
    return State.from_dict({"version": 4, "terraform_version": "1.11.4", "serial": 42,
                            "lineage": str(uuid.uuid4()), "outputs": {}, "resources": res,
                            "check_results": None}).sorted()


def sized_state(mb: float) -> State:
    probe = generate(1000)
    per_resource = len(probe.to_bytes()) / sum(len(r["instances"]) for r in probe.resources)
    return generate(int(mb * 1_000_000 / per_resource))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("moto server did not start")


def terraform_version() -> tuple[int, int]:
    out = subprocess.run(["terraform", "version", "-json"], capture_output=True, text=True, check=True).stdout
    major, minor, _ = json.loads(out)["terraform_version"].split(".", 2)
    return int(major), int(minor)


def backend_block(endpoint: str, bucket: str, table: str) -> str:
    major, minor = terraform_version()
    common = [f'bucket = "{bucket}"', f'key = "{KEY}"', 'region = "us-east-1"', f'dynamodb_table = "{table}"',
              "skip_credentials_validation = true", "skip_region_validation = true",
              "skip_metadata_api_check = true"]
    if (major, minor) >= (1, 6):
        common += [f'endpoints = {{\n s3 = "{endpoint}"\n dynamodb = "{endpoint}"\n}}', "use_path_style = true",
                   "skip_requesting_account_id = true", "skip_s3_checksum = true"]
    else:
        common += [f'endpoint = "{endpoint}"', f'dynamodb_endpoint = "{endpoint}"', "force_path_style = true"]
    return 'terraform {\n backend "s3" {\n' + "\n".join(common) + "\n }\n}\n"


def run_cli(workdir: Path, env: dict[str, str], closure: list[str], ws: str) -> float:
    def tf(*args: str, stdout: Any = subprocess.DEVNULL) -> None:
        subprocess.run(["terraform", *args], cwd=workdir, env=env, check=True, stdout=stdout,
                       stderr=subprocess.PIPE)

    pulled = workdir / "pulled.tfstate"
    t0 = time.perf_counter()
    with pulled.open("wb") as f:
        tf("state", "pull", stdout=f)
    tf("workspace", "new", ws)
    tf("state", "push", str(pulled))
    tf("state", "rm", *closure)
    elapsed = time.perf_counter() - t0
    tf("workspace", "select", "default")
    return elapsed


def engine_steps(backend: S3Backend, source: str, target: str, closure: list[str]) -> tuple[DuplicateResult, float]:
    """The backend calls of DuplicateWorkspaceStep and DetachClusterStep on a first run, in order.
    Returns the copy's result and the seconds spent in the first step."""
    t0 = time.perf_counter()
    # 01-duplicate-workspace: is_done() returns at once when the target does not exist...
    assert not backend.exists(target)
    # ...then apply(): one locked write of the copy without the cluster's closure.
    dup = duplicate_workspace(backend, source, target, exclude=closure, missing_ok=True, expected_lineage=None,
                              info="run bench")
    t_dup = time.perf_counter() - t0
    # 02-detach-cluster: is_done() is None (it always runs); apply() compares the copy's stored digest (a
    # lock-free HEAD on S3) with the one 01 wrote and verified. Only a copy changed since is read in full.
    assert dup.write is not None
    if backend.stored_md5(target) != dup.write.md5:
        det = detach(backend, target, closure, missing_ok=True,
                     only_objects_of=lambda: backend.read(source, keep_raw=False).state)
        assert det.already_done and not det.removed
    return dup, t_dup


def bench(mb: float, with_cli: bool) -> dict[str, Any]:
    import boto3

    state = sized_state(mb)
    raw = state.to_bytes()
    size = len(raw)
    moto, endpoint = start_moto()
    workdir = Path(tempfile.mkdtemp(prefix="tfbench-"))
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        bucket, table = "bench-state", "bench-locks"
        s3.create_bucket(Bucket=bucket)
        ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        env: dict[str, str] | None = None
        if with_cli and shutil.which("terraform"):
            # init before the state exists: init would try to download the providers it references
            rc = workdir / "terraformrc"
            rc.write_text("")
            env = dict(os.environ, TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1",
                       TF_CLI_CONFIG_FILE=str(rc), AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                       AWS_DEFAULT_REGION="us-east-1")
            (workdir / "main.tf").write_text(backend_block(endpoint, bucket, table))
            subprocess.run(["terraform", "init", "-input=false", "-no-color"], cwd=workdir, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        backend = S3Backend(bucket, KEY, dynamodb_table=table, s3_client=s3, dynamodb_client=ddb,
                            backup_dir=workdir / "backups")
        with backend.locked("default", "seed") as lock:
            backend.write("default", state, lock)
        del state, raw

        # Planning (DetachClusterStep.facts / DuplicateWorkspaceStep.facts): the cluster's closure.
        planned = backend.read("default", keep_raw=False).state
        assert planned is not None
        closure = planned.dependents(["module.eks.aws_eks_cluster.this"])
        del planned

        def ours(ws: str) -> tuple[float, float, int]:
            t0 = time.perf_counter()
            dup, t_dup = engine_steps(backend, "default", ws, closure)
            return time.perf_counter() - t0, t_dup, len(dup.excluded)

        ours("warmup")  # imports, connection pool
        t_ours, t_dup, _ = min(ours(f"green{i}") for i in range(3))
        tracemalloc.start()
        _, _, n_closure = ours("green-mem")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # also the model alone, for the breakdown
        blob = backend.read("default")
        assert blob.state is not None
        t0 = time.perf_counter()
        State.parse(blob.raw, "x")
        t_parse = time.perf_counter() - t0
        t0 = time.perf_counter()
        blob.state.to_bytes()
        t_dump = time.perf_counter() - t0
        n_resources = len(blob.state.addresses())
        del blob

        out: dict[str, Any] = {
            "size_mb": size / 1e6, "instances": n_resources, "closure": n_closure, "ours_s": t_ours,
            "duplicate_s": t_dup, "detach_s": t_ours - t_dup,
            "parse_s": t_parse, "serialise_s": t_dump, "peak_mb": peak / 1e6, "peak_ratio": peak / size,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
        }
        if env is not None:
            cli_times = [run_cli(workdir, env, closure, f"cli{i}") for i in range(2)]
            out["cli_s"] = min(cli_times)
            out["ratio"] = out["cli_s"] / t_ours
        return out
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5,50", help="state sizes in MB, comma-separated")
    ap.add_argument("--no-cli", action="store_true", help="skip the terraform CLI reference")
    args = ap.parse_args()
    for k, v in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    print(f"json writer: {'orjson' if _tfjson._orjson is not None else 'stdlib'}")
    for mb in (float(s) for s in args.sizes.split(",")):
        r = bench(mb, not args.no_cli)
        line = (f"state {r['size_mb']:.1f} MB, {r['instances']} instances, closure {r['closure']}: "
                f"ours {r['ours_s']:.3f} s (duplicate-workspace {r['duplicate_s']:.3f} s + detach-cluster "
                f"{r['detach_s']:.3f} s; parse {r['parse_s']:.3f} s, serialise {r['serialise_s']:.3f} s), "
                f"peak traced memory {r['peak_mb']:.1f} MB = {r['peak_ratio']:.2f}x state size, "
                f"process maxrss {r['maxrss_mb']:.0f} MB")
        if "cli_s" in r:
            line += f"; terraform CLI {r['cli_s']:.3f} s; ours is {r['ratio']:.1f}x faster"
        print(line, flush=True)


if __name__ == "__main__":
    main()
