"""Carry 100 PVCs of 1 GiB with the `snapshot` strategy's EBS path, as the cut does it (every snapshot started,
then waited for; every restore started, then waited for), against the same work one volume after another.

The volumes are real sandbox volumes: a StatefulSet of 100 replicas with gp3 claims on dev-blue, so that the
emulator's EBS provisioner makes 100 moto volumes of 1 GiB (sparse files). Each volume gets DATA_MIB of
data written into it, so that each snapshot and restore copies that much. The sandbox keeps each pending
snapshot ``pending`` for 0.3 s (its SNAPSHOT_LATENCY), so the serial figure is bounded below by that latency
per volume; EBS's own latency is far larger, which only widens the gap.

    python bench/volume_carry.py [--volumes 100] [--data-mib 8]

Prints wall seconds for both, volumes per second, the daemon's peak RSS (it copies the bytes) and the load
average at the time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import boto3

from migrate.cloud.aws.ebs import Ebs, tags_of
from migrate.kube.client import KubeClient
from migrate.sandbox import down, ensure_running, env_vars


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _statefulset(n: int) -> dict[str, object]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "bench", "namespace": "default"},
            "spec": {"serviceName": "bench", "replicas": n, "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": {"app": "bench"}},
                     "template": {"metadata": {"labels": {"app": "bench"}},
                                  "spec": {"containers": [{"name": "c", "image": "bench:1"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                         "resources": {"requests": {"storage": "1Gi"}}}}]}}


def _volumes(kube: KubeClient, n: int, timeout: float = 120.0) -> list[tuple[str, str]]:
    """(volume id, zone) of each bench claim, once all are bound."""
    deadline = time.monotonic() + timeout
    while True:
        pvs = [pv for pv in kube.list_pages("/api/v1/persistentvolumes")
               if (pv["spec"].get("claimRef") or {}).get("name", "").startswith("data-bench-")]
        if len(pvs) >= n:
            out = []
            for pv in pvs:
                expr = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
                out.append((pv["spec"]["csi"]["volumeHandle"], expr["values"][0]))
            return sorted(out)
        if time.monotonic() > deadline:
            sys.exit(f"only {len(pvs)}/{n} bench volumes were provisioned in {timeout:g}s")
        time.sleep(0.5)


def _fill(blocks: Path, volumes: list[tuple[str, str]], mib: int) -> None:
    chunk = os.urandom(1 << 20)
    for vid, _zone in volumes:
        with open(blocks / f"{vid}.vol", "r+b") as f:
            for i in range(mib):
                f.seek((i * 64) << 20)  # spread over the GiB: holes between, as a real file system leaves
                f.write(chunk)


def parallel(ebs: Ebs, vols: list[tuple[str, str]], run: str) -> float:
    t0 = time.perf_counter()
    snaps = [ebs.snapshot(v, tags_of(run, v, "final"), "bench")[0]["SnapshotId"] for v, _ in vols]
    for s in snaps:
        ebs.wait_snapshot(s, 600, interval=0.1)
    made = [ebs.restore(s, z, tags_of(run, v, "restored"))[0]["VolumeId"] for s, (v, z) in zip(snaps, vols,
                                                                                             strict=True)]
    for m in made:
        ebs.wait_volume(m, 600)
    return time.perf_counter() - t0


def serial(ebs: Ebs, vols: list[tuple[str, str]], run: str) -> float:
    t0 = time.perf_counter()
    for v, z in vols:
        s = ebs.snapshot(v, tags_of(run, v, "final"), "bench")[0]["SnapshotId"]
        ebs.wait_snapshot(s, 600, interval=0.1)
        m = ebs.restore(s, z, tags_of(run, v, "restored"))[0]["VolumeId"]
        ebs.wait_volume(m, 600)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", type=int, default=100)
    ap.add_argument("--data-mib", type=int, default=8, help="MiB written into each 1 GiB volume")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-volumes-")) / "sandbox"
    endpoints = ensure_running(root, timeout=60)
    os.environ.update(env_vars(endpoints))
    try:
        blue = endpoints["clusters"]["dev-blue"]
        with KubeClient.from_kubeconfig(blue["kubeconfig"], None) as kube:
            kube.call("POST", "/apis/apps/v1/namespaces/default/statefulsets", body=_statefulset(args.volumes))
            vols = _volumes(kube, args.volumes)
        _fill(root / "blocks", vols, args.data_mib)
        pid = int((root / "sandbox.pid").read_text().split()[0]) if (root / "sandbox.pid").exists() else None
        ebs = Ebs(boto3.Session(region_name="us-east-1"))
        load = os.getloadavg()
        t_par = parallel(ebs, vols, "bench-parallel")
        t_ser = serial(ebs, vols, "bench-serial")
        n = len(vols)
        print(f"volume carry, {n} PVCs of 1 GiB ({args.data_mib} MiB written in each), snapshot strategy, "
              f"load average {load[0]:.2f}")
        print(f"  as the cut does it (start all, then wait): {t_par:7.2f} s  {n / t_par:7.1f} volumes/s")
        print(f"  one volume after another:                 {t_ser:7.2f} s  {n / t_ser:7.1f} volumes/s")
        print(f"  speed-up: {t_ser / t_par:.1f}x")
        if pid:
            print(f"  sandbox daemon peak RSS (it copies the bytes): {_peak_rss_mib(pid):.0f} MiB")
    finally:
        down(root)


if __name__ == "__main__":
    main()
