"""Ownership classification of a large state: seconds and peak memory, next to `terraform state list` of the
same state file (the reference tool reading and listing the same addresses), in the same run.

The states are those of bench/terraform_duplicate.py (a VPC, Route 53 records, IAM, an EKS module with
node groups, add-ons, OIDC, IRSA roles, Helm releases and namespaces); the root module calls the EKS module
by its registry source and configures kubernetes/helm providers from it. Timed for ours: reading the root
module's HCL and `classify` (what planning runs per workspace), after the state is parsed.

    python bench/ownership_classify.py --sizes 5,50
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from terraform_duplicate import sized_state

from migrate.terraform.ownership import classify, read_root_module

ROOT_TF = """
module "vpc" {
  source = "terraform-aws-modules/vpc/aws"
}
module "eks" {
  source     = "terraform-aws-modules/eks/aws"
  subnet_ids = module.vpc.private_subnets
}
provider "kubernetes" {
  host  = module.eks.cluster_endpoint
  token = data.aws_eks_cluster_auth.this.token
}
provider "helm" {
  kubernetes {
    host = module.eks.cluster_endpoint
  }
}
data "aws_eks_cluster_auth" "this" {
  name = module.eks.cluster_name
}
resource "aws_route53_zone" "main" {
  name = "example.com"
}
"""


def _cluster_name(state_resources: list[dict]) -> str:
    for r in state_resources:
        if r["type"] == "aws_eks_cluster" and r.get("mode", "managed") == "managed":
            return str(r["instances"][0]["attributes"]["name"])
    raise SystemExit("no cluster in the generated state")


def bench(mb: float, work: Path) -> dict[str, float]:
    state = sized_state(mb)
    root = work / f"root-{mb:g}"
    root.mkdir()
    (root / "main.tf").write_text(ROOT_TF)
    path = work / f"state-{mb:g}.tfstate"
    path.write_bytes(state.to_bytes())
    name = _cluster_name(state.resources)
    best, peak, cluster = float("inf"), 0, 0
    for _ in range(3):
        tracemalloc.start()
        t0 = time.perf_counter()
        own = classify(state, read_root_module(root), cluster_name=name, exclusive=True)
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        cluster = len(own.cluster)
    ref = float("nan")
    if shutil.which("terraform"):
        empty = work / f"empty-{mb:g}"
        empty.mkdir()
        env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run(["terraform", "state", "list", f"-state={path}"], cwd=empty, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
        ref = min(times)
    n = sum(len(r["instances"]) for r in state.resources)
    return {"mb": path.stat().st_size / 1e6, "instances": n, "cluster": cluster, "ours_s": best,
            "peak_mb": peak / 1e6, "ref_s": ref}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5,50", help="state sizes in MB, comma-separated")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'state':>9} {'instances':>10} {'cluster':>8} {'classify':>10} {'inst/s':>10} {'peak':>9} "
          f"{'tf state list':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (float(s) for s in args.sizes.split(",")):
            r = bench(size, Path(tmp))
            print(f"{r['mb']:>7.1f}MB {r['instances']:>10,} {r['cluster']:>8,} {r['ours_s']:>9.3f}s "
                  f"{r['instances'] / r['ours_s']:>10,.0f} {r['peak_mb']:>7.1f}MB {r['ref_s']:>13.3f}s")


if __name__ == "__main__":
    main()
