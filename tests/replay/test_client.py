"""The client under the replay: rate limit, retries, paging, discovery, error wrapping."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from migrate.config import Replay
from migrate.errors import ProviderError
from migrate.kube.client import DEFAULT_QPS, KubeApiError, KubeClient, RateLimiter
from migrate.kube.discovery import discover, listable
from replay.kit import CRD, Cluster


def test_rate_limiter_bounds_throughput() -> None:
    limiter = RateLimiter(qps=40, burst=1)
    start = time.monotonic()
    for _ in range(21):
        limiter.acquire()
    assert time.monotonic() - start >= 0.45  # 20 tokens at 40/s after the first


def test_default_rate_limit_is_conservative() -> None:
    # What a replay uses when migrate.yaml says nothing, and what a bare client uses: the same, and modest.
    assert Replay().qps == DEFAULT_QPS
    assert 0 < DEFAULT_QPS <= 100


def test_paging_and_retries(old: Cluster) -> None:
    old.load([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}} for i in range(7)])
    with KubeClient.from_kubeconfig(str(old.kubeconfig), old.name, qps=None, backoff=0.01) as k:
        before = k.stats["requests"]
        names = [o["metadata"]["name"] for o in k.list_pages("/api/v1/namespaces/default/configmaps", limit=2)]
        assert [n for n in names if n.startswith("cm-")] == [f"cm-{i}" for i in range(7)]
        assert k.stats["requests"] - before == (len(names) + 1) // 2  # one request per page of 2
        old.server.faults.api_errors(503, 2, resource="configmaps")
        assert k.request("GET", "/api/v1/namespaces/default/configmaps/cm-1")["metadata"]["name"] == "cm-1"
        assert k.stats["retries"] == 2


def test_errors_are_wrapped_and_classified(old: Cluster) -> None:
    with KubeClient.from_kubeconfig(str(old.kubeconfig), old.name, qps=None, retries=1, backoff=0.01) as k:
        with pytest.raises(KubeApiError) as e:
            k.request("GET", "/api/v1/namespaces/default/configmaps/nope")
        assert e.value.status == 404 and not e.value.retryable and isinstance(e.value, ProviderError)
        assert e.value.summary().startswith("404 NotFound:")
        old.server.faults.api_errors(429, 5, resource="configmaps", retry_after=0)
        with pytest.raises(KubeApiError) as e:
            k.request("GET", "/api/v1/namespaces/default/configmaps/x")
        assert e.value.status == 429 and e.value.retryable


def test_unreachable_server_is_retryable(tmp_path: Path) -> None:
    c = Cluster("gone", tmp_path / "gone.kubeconfig")
    c.stop()
    k = KubeClient.from_kubeconfig(str(c.kubeconfig), "gone", qps=None, retries=1, backoff=0.01, timeout=2)
    with k, pytest.raises(KubeApiError) as e:
        k.request("GET", "/api")
    assert e.value.status == 0 and e.value.retryable


def test_bad_kubeconfig() -> None:
    with pytest.raises(ProviderError, match="cannot load kubeconfig"):
        KubeClient.from_kubeconfig("/nonexistent/kubeconfig", "x")


def test_discovery_serves_crds_in_preferred_version(old: Cluster) -> None:
    old.load([CRD])
    with KubeClient.from_kubeconfig(str(old.kubeconfig), old.name, qps=None) as k:
        d = discover(k)
    kinds = {(t.group, t.kind) for t in listable(d)}
    assert ("example.com", "Widget") in kinds and ("apps", "Deployment") in kinds
    assert ("autoscaling", "HorizontalPodAutoscaler") in kinds
    hpa = d.find("autoscaling/v2", "HorizontalPodAutoscaler")
    assert hpa is not None and hpa.path("ns", "x") == "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/x"
    assert all("/" not in t.plural for t in d.types)  # no subresources


_PLUGIN = """import datetime, json, sys
with open(sys.argv[1], "a") as f:
    f.write("ran\\n")
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=float(sys.argv[2]))
status = {"token": "t-" + str(sum(1 for _ in open(sys.argv[1]))),
          "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}
print(json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1", "status": status}))
"""


@pytest.mark.parametrize(("valid_minutes", "runs"), [(14.0, 1), (3.0, 3)])
def test_exec_credentials_are_reused_while_valid_beyond_the_refresh_margin(
        old: Cluster, tmp_path: Path, valid_minutes: float, runs: int) -> None:
    """A dev run makes a dozen clients of the same kubeconfig: the exec plugin (a new Python, a third of a
    second) runs once while its credential stays valid, and again for each client once it is close to expiry
    (the client itself refreshes 5 minutes early)."""
    import sys

    import yaml

    plugin, count = tmp_path / "plugin.py", tmp_path / f"runs-{valid_minutes}"
    plugin.write_text(_PLUGIN)
    kubeconfig = tmp_path / "exec.yaml"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": old.server.url}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
            "args": [str(plugin), str(count), str(valid_minutes)], "interactiveMode": "Never"}}}]}))
    for _ in range(3):
        with KubeClient.from_kubeconfig(str(kubeconfig), "c", qps=None) as k:
            assert k.request("GET", "/api/v1/namespaces/default")["metadata"]["name"] == "default"
            assert k.api.configuration.get_api_key_with_prefix("BearerToken").startswith("Bearer t-")
    ran = count.read_text().count("ran")
    # Near expiry the client also refreshes before requests, so "not reused" means at least once per client.
    assert ran == runs if valid_minutes > 6 else ran >= runs
