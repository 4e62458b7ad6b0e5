"""A large real-world set: hundreds of objects, CRDs with custom resources, several admission webhooks."""

from __future__ import annotations

from collections import Counter

from migrate.config import Replay
from migrate.kube.client import KubeClient
from migrate.kube.ready import needs_wait, wait_ready
from migrate.kube.replay import replay
from replay.kit import NEW_NAME, OLD_NAME, SAMPLE_TRANSFORMS, Cluster, large_set

NAMES = {"old": OLD_NAME, "new": NEW_NAME}


def test_large_manifest_set(old: Cluster, new: Cluster, kold: KubeClient, knew: KubeClient) -> None:
    loaded = old.load(large_set())
    old.settle(20)
    cfg = Replay.model_validate({"transforms": [
        *SAMPLE_TRANSFORMS,
        {"name": "mirror", "registry": {"from": "us-central1-docker.pkg.dev/online-boutique-ci",
                                        "to": "mirror.local/ob"}},
        {"name": "mirror-k8s", "registry": {"from": "registry.k8s.io", "to": "mirror.local/k8s"}}]})
    report = replay(kold, knew, cfg, NAMES, webhook_timeout=30)
    assert report.ok, ([r.to_dict() for r in report.failures][:5], report.parity and report.parity.to_dict())
    kinds = Counter(it.key.kind for it in report.plan.items)
    assert len(report.plan.items) >= 500 and loaded >= 500
    assert kinds["CustomResourceDefinition"] == 6
    assert kinds["ValidatingWebhookConfiguration"] + kinds["MutatingWebhookConfiguration"] == 3
    assert sum(n for k, n in kinds.items() if k.startswith("Gadget")) == 50
    assert report.by_action()["created"] == len(report.plan.items) - 1  # the default StorageClass was there
    assert report.plan.summary()["transforms"]["mirror"] >= 100

    targets = [(it.obj["apiVersion"], it.key.kind, it.key.namespace, it.key.name)
               for it in report.plan.items if needs_wait(it.obj)]
    ready = wait_ready(knew, targets, timeout=30, poll=0.3)
    assert ready.ok, ready.to_dict()
    assert len(ready.ready) >= 150

    again = replay(kold, knew, cfg, NAMES, webhook_timeout=30)
    assert again.by_action()["unchanged"] == len(report.results) and again.ok
