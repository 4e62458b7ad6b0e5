"""Bad objects get a per-object result with the server's reason; API errors are retried with backoff."""

from __future__ import annotations

from typing import Any

from migrate.config import Replay
from migrate.kube.client import KubeClient
from migrate.kube.replay import replay
from replay.kit import NEW_NAME, OLD_NAME, SAMPLE_TRANSFORMS, Cluster, sample_workloads

NAMES = {"old": OLD_NAME, "new": NEW_NAME}


def cfg(transforms: list[dict[str, Any]] | None = None, **kw: Any) -> Replay:
    return Replay.model_validate({"transforms": SAMPLE_TRANSFORMS if transforms is None else transforms, **kw})


def failures(report: Any) -> dict[str, str]:
    return {str(r.key): r.reason for r in report.failures}


def seeded(old: Cluster) -> None:
    old.load(sample_workloads())
    old.settle()


def test_immutable_conflict_is_reported_with_the_server_reason(old: Cluster, new: Cluster, kold: KubeClient,
                                                               knew: KubeClient) -> None:
    seeded(old)
    new.load([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
              {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
               "spec": {"selector": {"matchLabels": {"app": "cart-v0"}}, "template": {
                   "metadata": {"labels": {"app": "cart-v0"}},
                   "spec": {"containers": [{"name": "c", "image": "cart:0"}]}}}}])
    report = replay(kold, knew, cfg(), NAMES, webhook_timeout=15)
    f = failures(report)
    assert list(f) == ["Deployment.apps shop/cart"]
    assert f["Deployment.apps shop/cart"].startswith("422 Invalid:")
    assert "spec.selector" in f["Deployment.apps shop/cart"] and "immutable" in f["Deployment.apps shop/cart"]
    assert not report.ok
    assert report.parity is not None and "Deployment.apps shop/cart" in map(str, report.parity.drifted)
    # Everything else went in.
    assert report.by_action()["created"] >= 30


def test_object_invalid_after_transform_client_side(old: Cluster, new: Cluster, kold: KubeClient,
                                                    knew: KubeClient) -> None:
    seeded(old)
    bad = [*SAMPLE_TRANSFORMS, {"name": "team-label", "match": {"kind": "ConfigMap"},
                                "set_labels": {"team": "shop & data"}}]
    report = replay(kold, knew, cfg(bad), NAMES, webhook_timeout=15)
    f = failures(report)
    assert set(f) == {"ConfigMap shop/web-config"}
    assert "invalid after transform 'team-label'" in f["ConfigMap shop/web-config"]
    assert not new.exists("v1", "ConfigMap", "web-config", "shop")  # never sent


def test_object_invalid_after_transform_server_side_names_the_rule(old: Cluster, new: Cluster, kold: KubeClient,
                                                                   knew: KubeClient) -> None:
    seeded(old)
    bad = [*SAMPLE_TRANSFORMS, {"name": "wrong-selector", "match": {"kind": "Deployment", "name": "cart"},
                                "json_patch": [{"op": "replace", "path": "/spec/selector/matchLabels",
                                                "value": {"app": "nope"}}]}]
    report = replay(kold, knew, cfg(bad), NAMES, webhook_timeout=15)
    f = failures(report)
    assert list(f) == ["Deployment.apps shop/cart"]
    reason = f["Deployment.apps shop/cart"]
    assert reason.startswith("invalid after transform 'wrong-selector': 422 Invalid:"), reason
    assert "selector" in reason


def test_unavailable_webhook_is_held_back(old: Cluster, new: Cluster, kold: KubeClient, knew: KubeClient) -> None:
    seeded(old)
    # The webhook's service lives in `ops`, which this replay leaves out: its backend never appears.
    report = replay(kold, knew, cfg(namespaces={"exclude": ["ops"]}), NAMES, webhook_timeout=0.5)
    f = failures(report)
    assert list(f) == ["ValidatingWebhookConfiguration.admissionregistration.k8s.io shop-policy"]
    reason = next(iter(f.values()))
    assert "backend is unavailable" in reason and "service ops/hooks does not exist" in reason
    assert not new.exists("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "shop-policy")


def test_webhook_backend_not_ready(old: Cluster, new: Cluster, kold: KubeClient, knew: KubeClient) -> None:
    seeded(old)
    new.server.faults.never_ready("deployments", "ops", "hooks")
    report = replay(kold, knew, cfg(), NAMES, webhook_timeout=1.0)
    reason = failures(report)["ValidatingWebhookConfiguration.admissionregistration.k8s.io shop-policy"]
    assert "no ready backend" in reason and "Deployment hooks" in reason


def test_429_and_5xx_are_retried(old: Cluster, new: Cluster, kold: KubeClient, knew: KubeClient) -> None:
    seeded(old)
    new.server.faults.api_errors(503, 3, verbs=["create"])
    new.server.faults.api_errors(429, 2, resource="deployments", retry_after=0)
    new.server.faults.api_errors(500, 2, verbs=["list"])
    report = replay(kold, knew, cfg(), NAMES, webhook_timeout=15)
    assert report.ok, failures(report)
    assert knew.stats["retries"] >= 7


def test_persistent_server_error_fails_that_object_only(old: Cluster, new: Cluster, kold: KubeClient,
                                                        knew: KubeClient) -> None:
    seeded(old)
    new.server.faults.api_errors(500, 100, resource="configmaps", namespace="shop", verbs=["create"])
    fast = KubeClient.from_kubeconfig(str(new.kubeconfig), new.name, qps=None, retries=2, backoff=0.01)
    with fast:
        report = replay(kold, fast, cfg(), NAMES, webhook_timeout=15)
    f = failures(report)
    assert list(f) == ["ConfigMap shop/web-config"]
    assert f["ConfigMap shop/web-config"].startswith("500 InternalError:")


def test_custom_resources_without_their_crd(old: Cluster, new: Cluster, kold: KubeClient, knew: KubeClient) -> None:
    seeded(old)
    report = replay(kold, knew, cfg(kinds={"exclude": ["customresourcedefinitions"]}), NAMES, webhook_timeout=15)
    f = failures(report)
    assert set(f) == {"Widget.example.com shop/blue-widget", "Widget.example.com shop/red-widget"}
    assert all("does not serve example.com/v1 Widget" in r for r in f.values())
