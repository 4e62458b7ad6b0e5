"""Plan build at scale: `invoke plan --env dev` on a sandbox whose old cluster holds 10,000 more objects and
whose Terraform state holds 5,000 more resources.

The same code path as `invoke plan`: `python -m migrate plan --env dev` in a child process (facts from the
old cluster and the state, ownership, the replay's review manifests, the plan files). Prints its wall time
and peak RSS next to the reference reads of the same inputs, measured in the same run: `kubectl get` of the
replayed kinds in every namespace as JSON, and `terraform state list` of the same state file.
Figures are printed, never asserted.

    python bench/plan_build.py [--objects 10000] [--resources 5000] [--runs 3] [--py-spy FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from replay_apply import MIX, manifests, seed_client  # noqa: E402
from scratch import scratch_config  # noqa: E402

from migrate.sandbox import down, ensure_running, env_vars  # noqa: E402
from migrate.terraform.backends import make_backend  # noqa: E402
from migrate.terraform.state import State  # noqa: E402

_TYPES = ("aws_route53_record", "aws_iam_role_policy_attachment", "aws_security_group_rule", "aws_ssm_parameter")


def inflate_state(cfg: dict[str, Any], count: int, out: Path) -> tuple[int, int]:
    """Add `count` resources (module.estate, as a shared estate would hold) to dev's state, written the way
    every write is: under the lock, backed up, verified. Returns (resources, bytes) and keeps a copy."""
    tf = cfg["environments"]["dev"]["terraform"]
    settings = {k: v for k, v in tf["backend"].items() if k != "type"}
    backend = make_backend(tf["backend"]["type"], **settings, backup_dir=str(out.parent / "backups"))
    ws = tf["workspace"]
    with backend.locked(ws, "bench: inflate the state") as lock:
        blob = backend.read(ws, lock)
        assert blob.state is not None
        doc = json.loads(blob.state.to_bytes())
        for i in range(count):
            rtype = _TYPES[i % len(_TYPES)]
            doc["resources"].append({
                "module": "module.estate", "mode": "managed", "type": rtype, "name": f"r{i:05d}",
                "provider": 'provider["registry.terraform.io/hashicorp/aws"]',
                "instances": [{"schema_version": 0, "attributes": {
                    "id": f"{rtype}-{i:05d}", "name": f"estate-{i:05d}", "arn": f"arn:aws:iam::123456789012:x/{i}",
                    "tags": {"team": f"team-{i % 40}", "env": "dev"}, "description": "estate resource " * 4},
                    "sensitive_attributes": [], "dependencies": []}]})
        state = State.from_dict(doc, backend.where(ws)).with_serial(blob.state.serial + 1)
        backend.write(ws, state, lock)
    data = state.to_bytes()
    out.write_bytes(data)
    return len(doc["resources"]), len(data)


def kubectl_reads(kubeconfig: Path, work: Path) -> float:
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    kinds = ",".join(sorted({k.lower() + "s" for k, _ in MIX if k != "Widget"} | {"widgets.bench.example.com"}))
    env = {**os.environ, "HOME": str(work / "kubectl-home"), "KUBECONFIG": str(kubeconfig)}
    start = time.perf_counter()
    subprocess.run([kubectl, "get", kinds, "-A", "-o", "json"], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def terraform_list(work: Path) -> float:
    tfbin = shutil.which("terraform")
    if not tfbin:
        return 0.0
    (work / "terraformrc").write_text("")
    t0 = time.perf_counter()
    subprocess.run([tfbin, "state", "list", f"-state={work / 'state.tfstate'}"], check=True, cwd=work,
                   stdout=subprocess.DEVNULL, env={**os.environ, "TF_CLI_CONFIG_FILE": str(work / "terraformrc")})
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--resources", type=int, default=5_000)
    p.add_argument("--runs", type=int, default=3, help="plans (and reference reads) to time, in turn")
    p.add_argument("--py-spy", metavar="FILE", help="also profile the plan with py-spy (installed apart) into FILE "
                   "(speedscope JSON); the timed run is then the profiled one")
    args = p.parse_args()
    work, cfg = scratch_config("bench-plan-")
    try:
        os.environ.update(env_vars(ensure_running(work / "sandbox", timeout=60)))
        kubeconfig = work / "sandbox" / "kubeconfigs" / "dev-blue.yaml"
        docs = manifests(args.objects)
        t = seed_client(kubeconfig, "dev-blue", docs)
        print(f"old cluster: {len(docs):,} more objects seeded in {t:.1f} s (setup)")
        n_res, size = inflate_state(cfg, args.resources, work / "state.tfstate")
        print(f"state: {n_res:,} resources, {size / 1e6:.1f} MB (setup)")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        cmd = [sys.executable, "-m", "migrate", "plan", "--env", "dev"]
        if args.py_spy:
            cmd = ["py-spy", "record", "-f", "speedscope", "-r", "200", "--idle", "-o",
                   str(Path(args.py_spy).absolute()), "--", *cmd]
        times, refs = [], []
        for _ in range(1 if args.py_spy else args.runs):  # plan and references in turn: the same noise for both
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=work, text=True, capture_output=True, env={**os.environ, "COLUMNS": "200"})
            times.append(time.perf_counter() - start)
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-3000:], sep="\n")
                return 1
            refs.append(kubectl_reads(kubeconfig, work) + terraform_list(work))
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the plan's (kubectl's is smaller)
        review = list(sorted((work / "plans").glob("dev-*/"))[-1].rglob("*.yaml"))
        manifests_written = sum(f.read_text().count("\n---\n") + 1 for f in review)
        print(f"\ninvoke plan --env dev, {len(times)} run(s): best {min(times):.2f} s, median "
              f"{statistics.median(times):.2f} s ({', '.join(f'{t:.2f}' for t in times)}); peak RSS "
              f"{peak / 1024:.0f} MB; {manifests_written:,} review manifests written in {len(review):,} files")
        print(f"reference, kubectl get (the same kinds, -A -o json) + terraform state list of the same state: "
              f"best {min(refs):.2f} s, median {statistics.median(refs):.2f} s")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        down(work / "sandbox")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
