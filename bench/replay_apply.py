"""Replay throughput: 10,000 objects of mixed kinds from one emulated cluster into another.

Prints objects/s, wall time and peak memory of the replay (export + sanitize + transform + ordered apply at
the default concurrency + parity check), next to `kubectl apply -f` of the same sanitized manifests into a
fresh emulator, measured in the same run, and the ratio. Figures are printed, never asserted.

    python bench/replay_apply.py [--objects 10000] [--qps 0] [--concurrency 8] [--skip-kubectl]

Each emulator runs in its own process (as the sandbox runs them), so the client and the server do not share
one interpreter. The replay runs in a child process of its own so that its peak RSS is its own.
`--qps 0` switches the client-side rate limit off; the default configuration (100 qps) is measured on a
smaller sample with `--default-qps-sample N` because it bounds throughput at 100 writes per second by design.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migrate.config import Replay  # noqa: E402
from migrate.kube.apply import Applier, ApplyOptions, Planned  # noqa: E402
from migrate.kube.client import KubeClient  # noqa: E402
from migrate.kube.objects import key_of  # noqa: E402
from migrate.kube.order import phase_of, sort_key  # noqa: E402

Obj = dict[str, Any]
CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.bench.example.com"},
    "spec": {"group": "bench.example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
# Per namespace: 200 objects in the proportions of a typical application namespace.
MIX = (("ConfigMap", 60), ("Secret", 30), ("Service", 30), ("Deployment", 25), ("ServiceAccount", 20),
       ("Role", 10), ("RoleBinding", 10), ("Widget", 15))


def make(kind: str, ns: str, i: int) -> Obj:
    name = f"{kind.lower()}-{i:03d}"
    meta = {"name": name, "namespace": ns, "labels": {"app": f"app-{i % 7}", "bench": "yes"}}
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta,
                "data": {"config.yaml": "key: value\n" * 10, "index": str(i)}}
    if kind == "Secret":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "type": "Opaque",
                "data": {"password": "c2VjcmV0", "user": "YWRtaW4="}}
    if kind == "Service":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta,
                "spec": {"selector": {"app": f"app-{i % 7}"}, "ports": [{"name": "http", "port": 80,
                                                                          "targetPort": 8080}]}}
    if kind == "Deployment":
        labels = {"app": name}
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
                "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
                    "metadata": {"labels": labels}, "spec": {"containers": [{
                        "name": "app", "image": f"registry.example.com/team/{name}:1.0",
                        "ports": [{"containerPort": 8080}], "env": [{"name": "MODE", "value": "prod"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}}
    if kind == "ServiceAccount":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if kind == "Role":
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}
    if kind == "RoleBinding":
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"role-{i:03d}"},
                "subjects": [{"kind": "ServiceAccount", "name": f"serviceaccount-{i:03d}", "namespace": ns}]}
    return {"apiVersion": "bench.example.com/v1", "kind": "Widget", "metadata": meta,
            "spec": {"size": i, "tags": ["a", "b"]}}


def manifests(total: int) -> list[Obj]:
    per_ns = sum(n for _, n in MIX)
    namespaces = max(1, (total - 1) // (per_ns + 1))
    docs: list[Obj] = [CRD]
    for n in range(namespaces):
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{n:03d}"}})
    for n in range(namespaces):
        for kind, count in MIX:
            docs.extend(make(kind, f"team-{n:03d}", i) for i in range(count))
    # Top up (or trim) to exactly `total` with ConfigMaps in the first namespace.
    i = 1000
    while len(docs) < total:
        docs.append(make("ConfigMap", "team-000", i))
        i += 1
    return docs[:total]


class Emulator:
    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.kubeconfig = workdir / f"{name}.kubeconfig"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "migrate.sandbox.kubeapi", "--cluster-name", name, "--controller-delay", "0.5",
             "--kubeconfig", str(self.kubeconfig)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def wait_idle(self) -> float:
        """Until the emulator's controllers have nothing queued: a cluster at rest, as before a migration."""
        start = time.perf_counter()
        with urllib.request.urlopen(f"{self.url}/_sandbox/idle", timeout=70) as resp:
            resp.read()
        return time.perf_counter() - start


def seed(em: Emulator, docs: list[Obj]) -> float:
    return seed_client(em.kubeconfig, em.name, docs)


def seed_client(kubeconfig: Path, context: str | None, docs: list[Obj]) -> float:
    """Setup, not measured against anything: fill the old cluster quickly."""
    start = time.perf_counter()
    items = [Planned(key_of(d), d, phase_of(key_of(d))) for d in docs]
    items.sort(key=lambda it: sort_key(it.key))
    with KubeClient.from_kubeconfig(str(kubeconfig), context, qps=None, pool_size=10) as k:
        results = Applier(k, ApplyOptions(concurrency=8)).run(items)
    failed = [r for r in results if r.action == "failed"]
    if failed:
        raise SystemExit(f"seeding failed: {failed[0].key}: {failed[0].reason}")
    return time.perf_counter() - start


def child(args: argparse.Namespace) -> None:
    """The measured replay, in its own process: prints one JSON line."""
    from migrate.kube.replay import plan_from_cluster, replay

    if args.tracemalloc:
        tracemalloc.start()
    cfg = Replay.model_validate({"concurrency": args.concurrency, "qps": args.qps or 10000,
                                 "transforms": [{"name": "registry", "registry": {
                                     "from": "registry.example.com", "to": "mirror.example.net"}}]})
    qps = args.qps or None
    pool = args.concurrency + 2
    with KubeClient.from_kubeconfig(args.old, "old", qps=qps, pool_size=pool) as old, \
            KubeClient.from_kubeconfig(args.new, "new", qps=qps, pool_size=pool) as new:
        t0 = time.perf_counter()
        plan = plan_from_cluster(old, cfg, {"old": "old", "new": "new"})
        t1 = time.perf_counter()
        report = replay(plan, new, cfg, {"old": "old", "new": "new"}, check_parity=not args.no_parity)
        t2 = time.perf_counter()
        if args.write_manifests:
            # The same sanitized manifests, for kubectl (without our transform, so both apply the same).
            with open(args.write_manifests, "w") as f:
                yaml.safe_dump_all([it.base or it.obj for it in plan.items], f, sort_keys=False)
    out = {"objects": len(plan.items), "export_s": t1 - t0, "apply_s": t2 - t1 - (report.parity_seconds or 0),
           "parity_s": report.parity_seconds, "total_s": t2 - t0, "results": report.by_action(),
           "parity": bool(report.parity and report.parity.parity) if not args.no_parity else None,
           "requests": new.stats["requests"] + old.stats["requests"], "retries": new.stats["retries"],
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "traced_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None}
    print(json.dumps(out))


def run_child(args: argparse.Namespace, old: Emulator, new: Emulator, qps: float, manifests_out: Path | None,
              no_parity: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--old", str(old.kubeconfig), "--new", str(new.kubeconfig),
           "--concurrency", str(args.concurrency), "--qps", str(qps)]
    if manifests_out:
        cmd += ["--write-manifests", str(manifests_out)]
    if args.tracemalloc:
        cmd.append("--tracemalloc")
    if no_parity:
        cmd.append("--no-parity")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"replay child failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def kubectl_apply(em: Emulator, docs: list[Obj], workdir: Path) -> float:
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    home = workdir / "kubectl-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(em.kubeconfig)}
    # CRDs and namespaces first, as a person would: kubectl cannot map a custom resource whose CRD it has not
    # seen yet, so one file with both fails for the custom resources.
    first = [d for d in docs if d["kind"] in ("CustomResourceDefinition", "Namespace")]
    rest = [d for d in docs if d["kind"] not in ("CustomResourceDefinition", "Namespace")]
    files = []
    for name, part in (("first.yaml", first), ("rest.yaml", rest)):
        path = workdir / name
        path.write_text(yaml.safe_dump_all(part, sort_keys=False))
        files.append(path)
    start = time.perf_counter()
    for f in files:
        proc = subprocess.run([kubectl, "apply", "-f", str(f)], env=env, capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            raise SystemExit(f"kubectl apply failed: {proc.stderr[-2000:]}")
        if f.name == "first.yaml":
            subprocess.run([kubectl, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
                           env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=Replay().concurrency)
    p.add_argument("--qps", type=float, default=0, help="client-side rate limit for the main run (0: off)")
    p.add_argument("--default-qps-sample", type=int, default=1000,
                   help="objects for the run at the configuration's default rate limit (0: skip)")
    p.add_argument("--skip-kubectl", action="store_true")
    p.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--old", help=argparse.SUPPRESS)
    p.add_argument("--new", help=argparse.SUPPRESS)
    p.add_argument("--write-manifests", help=argparse.SUPPRESS)
    p.add_argument("--no-parity", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return

    docs = manifests(args.objects)
    kinds: dict[str, int] = {}
    for d in docs:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    print(f"{len(docs):,} objects: " + ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items())))
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        work = Path(tmp)
        ems = {n: Emulator(n, work) for n in ("old", "new", "ref")}
        try:
            print(f"seeding the old cluster: {seed(ems['old'], docs):.1f} s (setup, not measured)")
            print(f"old cluster's controllers at rest after {ems['old'].wait_idle():.1f} s more (setup)")
            sanitized = work / "sanitized.yaml"
            ours = run_child(args, ems["old"], ems["new"], args.qps, sanitized)
            n = ours["objects"]
            label = f"qps {args.qps:g}" if args.qps else "no rate limit"
            print(f"\nreplay (concurrency {args.concurrency}, {label}):")
            print(f"  export + sanitize + transform: {ours['export_s']:.2f} s")
            print(f"  ordered apply:                 {ours['apply_s']:.2f} s  -> {n / ours['apply_s']:,.0f} objects/s")
            print(f"  parity check (re-export new):  {ours['parity_s']:.2f} s  parity={ours['parity']}")
            print(f"  total wall time:               {ours['total_s']:.2f} s  -> {n / ours['total_s']:,.0f} objects/s")
            print(f"  results: {ours['results']}; requests {ours['requests']:,}, retries {ours['retries']}")
            print(f"  peak memory: {ours['peak_rss_mb']:.0f} MB RSS (whole process)"
                  + (f", {ours['traced_peak_mb']:.0f} MB traced Python allocations" if ours["traced_peak_mb"]
                     else ""))
            rerun = run_child(args, ems["old"], ems["new"], args.qps, None, no_parity=True)
            print(f"  re-run: {rerun['results']} in {rerun['total_s']:.2f} s")
            if not args.skip_kubectl:
                ref_docs = [d for d in yaml.safe_load_all(sanitized.read_text()) if d]
                k_s = kubectl_apply(ems["ref"], ref_docs, work)
                print(f"\nkubectl apply -f (same {len(ref_docs):,} sanitized manifests, fresh emulator):")
                print(f"  wall time: {k_s:.2f} s  -> {len(ref_docs) / k_s:,.0f} objects/s")
                print(f"\nratio (kubectl wall time / replay apply time): {k_s / ours['apply_s']:.1f}x")
                print(f"ratio (kubectl wall time / replay total incl. export and parity): {k_s / ours['total_s']:.1f}x")
        finally:
            for em in ems.values():
                em.stop()
        if args.default_qps_sample:
            sample = manifests(args.default_qps_sample)
            ems = {n: Emulator(n, work) for n in ("old", "new")}
            try:
                seed(ems["old"], sample)
                ems["old"].wait_idle()
                default_qps = Replay().qps
                d = run_child(args, ems["old"], ems["new"], default_qps, None)
                print(f"\nat the default rate limit ({default_qps:g} qps, concurrency {args.concurrency}), "
                      f"{d['objects']:,} objects: apply {d['objects'] / d['apply_s']:,.0f} objects/s, "
                      f"total {d['total_s']:.1f} s")
            finally:
                for em in ems.values():
                    em.stop()


if __name__ == "__main__":
    main()
