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
