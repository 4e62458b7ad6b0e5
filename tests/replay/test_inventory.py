"""Inventory diff: old vs new per kind, namespace and name."""

from __future__ import annotations

from migrate.kube.inventory import diff, inventory_hash
from migrate.kube.objects import Key


def k(kind: str, name: str, ns: str = "app", group: str = "") -> Key:
    return Key(group, kind, ns, name)


def test_parity_missing_extra_drift() -> None:
    old = [k("ConfigMap", "a"), k("ConfigMap", "b"), k("Deployment", "web", group="apps")]
    live = {k("ConfigMap", "a"): {"data": {"x": "1"}, "metadata": {"uid": "u"}},
            k("Deployment", "web", group="apps"): {"spec": {"replicas": 3}},
            k("ConfigMap", "addon"): {}}
    desired = {k("ConfigMap", "a"): {"data": {"x": "1"}},
               k("Deployment", "web", group="apps"): {"spec": {"replicas": 2}}}
    d = diff(old, live, desired)
    assert d.missing == [k("ConfigMap", "b")]
    assert d.extra == [k("ConfigMap", "addon")]
    assert d.drifted == [k("Deployment", "web", group="apps")]
    assert not d.parity
    assert d.old_counts == {"ConfigMap": 2, "Deployment.apps": 1}
    assert d.to_dict()["counts"] == {"missing": 1, "extra": 1, "drifted": 1}


def test_full_parity() -> None:
    keys = [k("ConfigMap", "a")]
    assert diff(keys, {keys[0]: {"data": {}}}, {keys[0]: {"data": {}}}).parity


def test_inventory_hash_follows_content_not_resource_versions() -> None:
    a = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}}
    b = {**a, "data": {"x": "2"}}
    c = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert inventory_hash([a, c]) == inventory_hash([c, dict(a)])
    assert inventory_hash([a]) != inventory_hash([b])
    assert inventory_hash([a]) != inventory_hash([a, c])
