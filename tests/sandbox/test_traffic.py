"""The cutover, measured: Route 53 weights shifted by hand with boto3 while the probe runs through the router.

Done-when of the sandbox issue: the observed split follows the weights within TOLERANCE, and no request fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.dynamic import DynamicClient

from migrate.sandbox import lifecycle
from migrate.sandbox.seed import workloads
from sandbox.sandboxkit import aws, http, upsert_weights, wait_for

TOLERANCE = 0.10  # absolute share; at >= 150 samples a window, a fair 50/50 stays inside it at > 3.5 sigma
TTL = 2  # seconds; the seeded TTL is 5: a shorter one keeps the test short, the cache logic is the same
WINDOW = 3.0
RATE = 80.0


def green_manifests(env: str) -> list[dict[str, Any]]:
    """What a replay would bring over for the public path: ingress controller, frontend, api, Ingress."""
    keep = {"Namespace", "ServiceAccount", "Deployment", "Service", "Ingress", "IngressClass", "ConfigMap", "Secret"}
    objs = workloads.ingress_controller() + workloads.shop(env, f"{env}-green")
    return [o for o in objs if o["kind"] in keep]


def start_cluster(endpoints: dict[str, Any], name: str, version: str = "1.31") -> DynamicClient:
    eks = aws(endpoints, "eks")
    blue = eks.describe_cluster(name=name.replace("green", "blue"))["cluster"]
    eks.create_cluster(name=name, version=version, roleArn=blue["roleArn"],
                       resourcesVpcConfig={"subnetIds": blue["resourcesVpcConfig"]["subnetIds"]})
    cfg = kubernetes.client.Configuration()
    cfg.host = eks.describe_cluster(name=name)["cluster"]["endpoint"]  # the emulator, found as on AWS
    return DynamicClient(kubernetes.client.ApiClient(cfg), cache_file=str(Path("/tmp") / f"sbx-disc-{name}.json"))


def apply(dyn: DynamicClient, objs: list[dict[str, Any]]) -> None:
    for obj in objs:
        res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        res.create(body=obj, namespace=obj["metadata"].get("namespace"))


def lb_hostname(dyn: DynamicClient) -> str:
    svc = dyn.resources.get(api_version="v1", kind="Service")

    def host() -> str | None:
        s = svc.get(name=workloads.INGRESS_SERVICE, namespace=workloads.INGRESS_NAMESPACE).to_dict()
        ing = ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return ing[0].get("hostname") if ing else None

    return str(wait_for(host, what="a LoadBalancer hostname on the new cluster"))


def share(summary: dict[str, Any], cluster: str) -> float:
    return summary["by_cluster"].get(cluster, 0) / max(1, summary["requests"])


def test_weight_shift_follows_the_records_with_zero_failures(sandbox: dict[str, Any]) -> None:
    env, blue, green = "dev", "dev-blue", "dev-green"
    dyn = start_cluster(sandbox, green)
    apply(dyn, green_manifests(env))
    green_lb = lb_hostname(dyn)
    blue_lb = sandbox["environments"][env]["ingress_hostname"]
    host = sandbox["environments"][env]["record"]
    # Green must answer before any weight moves to it: readiness is part of the data plane.
    wait_for(lambda: _green_ready(sandbox, green, host), what="the new cluster's data plane to answer 200")

    upsert_weights(sandbox, env, {"blue": (100, blue_lb), "green": (0, green_lb)}, TTL)
    time.sleep(TTL + 0.2)
    probe = lifecycle.control(sandbox, "POST", "/probes", {"host": host, "path": "/", "rate": RATE,
                                                           "duration": 40, "max_requests": 4000})["id"]
    windows: list[tuple[str, float, float]] = []
    try:
        for label, weights in (("0/100", None), ("50/50", (50, 50)), ("100/0", (100, 0))):
            if weights is not None:
                upsert_weights(sandbox, env, {"green": (weights[0], green_lb), "blue": (weights[1], blue_lb)}, TTL)
                time.sleep(TTL + 0.3)  # the router's resolver cache holds the old answer up to one TTL
            start = time.time()
            time.sleep(WINDOW)
            windows.append((label, start, time.time()))
    finally:
        total = lifecycle.control(sandbox, "DELETE", f"/probes/{probe}")
    results = {label: lifecycle.control(sandbox, "GET", f"/probes/{probe}?since={a}&until={b}")
               for label, a, b in windows}
    print("\nweight shift:", {k: (v["requests"], v["by_cluster"], v["failures"]) for k, v in results.items()},
          "p50/p99 ms:", total["p50_ms"], total["p99_ms"])

    assert total["failures"] == 0, total["by_status"]
    assert total["requests"] >= 3 * 100
    for label, summary in results.items():
        assert summary["requests"] >= 100, (label, summary["requests"])
        assert summary["failures"] == 0
    assert share(results["0/100"], green) == 0.0
    assert abs(share(results["50/50"], green) - 0.5) <= TOLERANCE, results["50/50"]["by_cluster"]
    assert share(results["100/0"], blue) == 0.0


def _green_ready(sandbox: dict[str, Any], green: str, host: str) -> bool:
    eps = lifecycle.control(sandbox, "GET", "/status")
    plane = eps["clusters"].get(green, {}).get("dataplane")
    return bool(plane) and http(plane + "/", host)[0] == 200


@pytest.mark.parametrize("weights,expected", [((0, 0), 0.5), ((255, 0), 1.0)])
def test_router_weight_semantics(sandbox: dict[str, Any], weights: tuple[int, int], expected: float) -> None:
    """All-zero weights split equally (Route 53 semantics); weight 0 turns a record off."""
    env = "staging"
    e = sandbox["environments"][env]
    blue_lb = e["ingress_hostname"]
    # Both records may point at blue's LB: the record chosen shows in X-Sandbox-Record.
    upsert_weights(sandbox, env, {"blue": (weights[0], blue_lb), "green": (weights[1], blue_lb)}, 1)
    time.sleep(1.2)
    seen = [http(sandbox["router_url"] + "/", e["record"])[1].get("X-Sandbox-Record") for _ in range(200)]
    assert abs(seen.count("blue") / len(seen) - expected) <= TOLERANCE
    upsert_weights(sandbox, env, {"blue": (100, blue_lb), "green": (0, blue_lb)}, 5)
