"""Create throughput of the Kubernetes API emulator.

Creates N ConfigMaps (default 10,000) over raw HTTP/1.1 keep-alive connections with 1, 8 and 32 concurrent
clients, and prints objects/s with p50/p99 latency. The emulator runs in its own process, as the sandbox
daemon runs it, so the clients' CPU is not counted against the server's interpreter lock. Reference figures
from the same run, on the same kind of object: the official Python client (typed CoreV1Api) and
`kubectl create -f` of a multi-document file.
Figures are printed, never asserted.

    python bench/kubeapi_create.py [--objects 10000] [--reference-objects 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml


class Emulator:
    """`python -m migrate.sandbox.kubeapi` in a child process."""

    def __init__(self, tmp: Path) -> None:
        self.kubeconfig = tmp / "kubeconfig"
        self.proc = subprocess.Popen([sys.executable, "-m", "migrate.sandbox.kubeapi", "--controller-delay", "0.5",
                                      "--kubeconfig", str(self.kubeconfig)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            raise SystemExit("the emulator did not start")
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _body(i: int) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": f"cm-{i:06d}", "labels": {"bench": "yes", "shard": str(i % 16)}},
                       "data": {"key": "value" * 8, "index": str(i)}}).encode()


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def raw_http(server: Emulator, n: int, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(n))
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        mine: list[float] = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            conn.request("POST", "/api/v1/namespaces/bench/configmaps", _body(i),
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            if resp.status != 201:
                errors.append(str(resp.status))
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} creates failed, e.g. HTTP {errors[0]}")
    return elapsed, latencies


def python_client(server: Emulator, n: int) -> tuple[float, list[float]]:
    import kubernetes

    cfg = kubernetes.client.Configuration()
    cfg.host = server.url
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        t1 = time.perf_counter()
        core.create_namespaced_config_map("bench", json.loads(_body(i)))
        lat.append(time.perf_counter() - t1)
    return time.perf_counter() - t0, lat


def kubectl_create(server: Emulator, n: int) -> float | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "objects.yaml"
        manifest.write_text(yaml.safe_dump_all(json.loads(_body(i)) for i in range(n)))
        kc = server.kubeconfig
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp}
        t0 = time.perf_counter()
        subprocess.run([kubectl, "--kubeconfig", str(kc), "--cache-dir", f"{tmp}/cache", "create", "-n", "bench",
                        "-f", str(manifest)], check=True, capture_output=True, env=env)
        return time.perf_counter() - t0


def fresh_server() -> Emulator:
    server = Emulator(Path(tempfile.mkdtemp(prefix="kubeapi-bench-")))
    time.sleep(1)  # let the controllers' start-up writes (kube-system, default namespace) settle
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    conn.request("POST", "/api/v1/namespaces", b'{"metadata":{"name":"bench"}}', {"Content-Type": "application/json"})
    conn.getresponse().read()
    conn.close()
    return server


def report(label: str, n: int, elapsed: float, lat: list[float] | None) -> None:
    line = f"{label:<44} {n:>6} objects  {n / elapsed:>8.0f} objects/s"
    if lat:
        line += f"   p50 {statistics.median(lat) * 1000:6.2f} ms   p99 {_quantile(lat, 0.99) * 1000:6.2f} ms"
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--reference-objects", type=int, default=1_000)
    args = ap.parse_args()
    print(f"Kubernetes API emulator: ConfigMap creates, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for clients in (1, 8, 32):
        server = fresh_server()
        try:
            elapsed, lat = raw_http(server, args.objects, clients)
            report(f"emulator, raw HTTP keep-alive, {clients} client(s)", args.objects, elapsed, lat)
        finally:
            server.stop()
    server = fresh_server()
    try:
        elapsed, lat = python_client(server, args.reference_objects)
        report("reference: official Python client, 1 client", args.reference_objects, elapsed, lat)
    finally:
        server.stop()
    server = fresh_server()
    try:
        took = kubectl_create(server, args.reference_objects)
        if took is None:
            print("reference: kubectl create -f                 (kubectl not on PATH)")
        else:
            report("reference: kubectl create -f (one process)", args.reference_objects, took, None)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
