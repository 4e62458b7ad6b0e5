"""Each transform action, matching, ordering, and the rule named when an object becomes invalid."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrate.config import Transform
from migrate.kube.transform import TransformContext, TransformError, problems, rule_name, transform

CTX = TransformContext("prod-blue", "prod-green")


def rules(*specs: dict[str, Any]) -> list[Transform]:
    return [Transform.model_validate(s) for s in specs]


def deploy(image: str = "registry.blue.example.com/shop/web:1", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", **meta},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                         "containers": [{"name": "web", "image": image}]}}}}


def test_registry_rewrite_in_templates_and_cronjobs() -> None:
    r = rules({"registry": {"from": "registry.blue.example.com", "to": "123.dkr.ecr.eu-west-1.amazonaws.com"}})
    out = transform(deploy(), r, CTX)
    assert out.obj["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "123.dkr.ecr.eu-west-1.amazonaws.com/shop/web:1"
    assert out.applied == ["registry#1"]
    pod = {"containers": [{"name": "c", "image": "registry.blue.example.com/x@sha256:ab"}]}
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
          "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}
    assert transform(cj, r, CTX).obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "123.dkr.ecr.eu-west-1.amazonaws.com/x@sha256:ab"


def test_registry_prefix_respects_path_boundaries() -> None:
    r = rules({"registry": {"from": "gcr.io/google-samples", "to": "mirror.local/gs"}})
    d = deploy("gcr.io/google-samples-extra/web:1")
    assert transform(d, r, CTX).applied == []  # 'google-samples-extra' is another repository


def test_registry_docker_hub_short_names() -> None:
    r = rules({"registry": {"from": "docker.io", "to": "mirror.local/hub"}})
    out = transform(deploy("registry.blue.example.com/a:1"), r, CTX)
    assert out.obj["spec"]["template"]["spec"]["initContainers"][0]["image"] == "mirror.local/hub/library/busybox:1.36"
    assert out.obj["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.blue.example.com/a:1"


def test_storage_class_map() -> None:
    r = rules({"storage_class": {"gp2": "gp3"}})
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
           "spec": {"storageClassName": "gp2"}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"storageClassName": "gp2"}},
                                             {"metadata": {"name": "e"}, "spec": {"storageClassName": "efs"}}]}}
    assert transform(pvc, r, CTX).obj["spec"]["storageClassName"] == "gp3"
    out = transform(sts, r, CTX).obj["spec"]["volumeClaimTemplates"]
    assert [t["spec"]["storageClassName"] for t in out] == ["gp3", "efs"]


def test_set_and_remove_annotations_and_labels() -> None:
    r = rules({"set_annotations": {"a": "1"}}, {"remove_annotations": ["old/*"]},
              {"set_labels": {"env": "prod"}}, {"remove_labels": ["tmp"]})
    obj = deploy(annotations={"old/x": "1", "keep": "2"}, labels={"tmp": "1", "app": "web"})
    out = transform(obj, r, CTX)
    assert out.obj["metadata"]["annotations"] == {"keep": "2", "a": "1"}
    assert out.obj["metadata"]["labels"] == {"app": "web", "env": "prod"}
    assert out.applied == ["set_annotations#1", "remove_annotations#2", "set_labels#3", "remove_labels#4"]


def test_role_arn_map() -> None:
    old, new = "arn:aws:iam::1:role/blue", "arn:aws:iam::1:role/green"
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "s", "annotations": {
        "eks.amazonaws.com/role-arn": old}}}
    out = transform(sa, rules({"name": "irsa", "role_arn": {old: new}}), CTX)
    assert out.obj["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == new
    assert out.applied == ["irsa"]


def test_cluster_name_whole_words_only_and_never_identity() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prod-blue-config"},
          "data": {"a": "prod-blue", "b": "/aws/eks/prod-blue/logs", "c": "prod-bluebird", "d": "xprod-blue"}}
    out = transform(cm, rules({"cluster_name": True}), CTX).obj
    assert out["data"] == {"a": "prod-green", "b": "/aws/eks/prod-green/logs", "c": "prod-bluebird",
                           "d": "xprod-blue"}
    assert out["metadata"]["name"] == "prod-blue-config"  # identity stays: parity is by name


def test_cluster_name_leaves_secret_payload() -> None:
    sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"c": "prod-blue"}}
    assert transform(sec, rules({"cluster_name": True}), CTX).applied == []


def test_replicas_copy_current() -> None:
    src = deploy()
    src["status"] = {"replicas": 7}
    out = transform(deploy(), rules({"replicas": "copy-current"}), CTX, source=src)
    assert out.obj["spec"]["replicas"] == 7


def test_json_patch_matched_by_kind_namespace_name() -> None:
    r = rules({"match": {"kind": "deployment", "namespace": "shop", "name": "w*"},
               "json_patch": [{"op": "replace", "path": "/spec/replicas", "value": 5},
                              {"op": "add", "path": "/spec/template/spec/containers/-",
                               "value": {"name": "side", "image": "envoy:1"}},
                              {"op": "test", "path": "/spec/replicas", "value": 5}]})
    out = transform(deploy(), r, CTX)
    assert out.obj["spec"]["replicas"] == 5
    assert [c["name"] for c in out.obj["spec"]["template"]["spec"]["containers"]] == ["web", "side"]
    other = deploy()
    other["metadata"]["namespace"] = "ops"
    assert transform(other, r, CTX).applied == []


def test_json_patch_failure_names_rule() -> None:
    r = rules({"name": "bad-path", "json_patch": [{"op": "replace", "path": "/spec/nope/x", "value": 1}]})
    with pytest.raises(TransformError) as e:
        transform(deploy(), r, CTX)
    assert e.value.rule == "bad-path" and "does not exist" in e.value.message


def test_invalid_after_transform_names_the_rule() -> None:
    r = rules({"name": "ok", "set_labels": {"team": "shop"}},
              {"name": "breaks-labels", "set_labels": {"owner": "not a valid value!"}})
    with pytest.raises(TransformError) as e:
        transform(deploy(), r, CTX)
    assert e.value.rule == "breaks-labels"
    assert "label owner" in e.value.message


def test_invalid_image_after_registry_rewrite() -> None:
    r = rules({"name": "strip-image", "json_patch": [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": ""}]})
    with pytest.raises(TransformError, match="strip-image"):
        transform(deploy(), r, CTX)


def test_rules_apply_in_order() -> None:
    r = rules({"set_labels": {"x": "1"}}, {"json_patch": [{"op": "test", "path": "/metadata/labels/x", "value": "1"},
                                                         {"op": "replace", "path": "/metadata/labels/x",
                                                          "value": "2"}]})
    assert transform(deploy(), r, CTX).obj["metadata"]["labels"] == {"x": "2"}


def test_input_is_not_modified() -> None:
    obj = deploy()
    transform(obj, rules({"set_labels": {"x": "1"}}), CTX)
    assert "labels" not in obj["metadata"]


def test_rule_names() -> None:
    assert rule_name(Transform.model_validate({"name": "n", "cluster_name": True}), 0) == "n"
    assert rule_name(Transform.model_validate({"cluster_name": True}), 2) == "cluster_name#3"


def test_problems_on_a_good_object_is_empty() -> None:
    assert problems(deploy()) == []


images = st.from_regex(r"[a-z]{1,6}(\.[a-z]{2,4})?(/[a-z0-9]{1,6}){0,3}(:[a-z0-9.]{1,5})?", fullmatch=True)


@given(images)
def test_registry_rewrite_round_trips(image: str) -> None:
    there = rules({"registry": {"from": "src.example.com", "to": "dst.example.org/mirror"}})
    back = rules({"registry": {"from": "dst.example.org/mirror", "to": "src.example.com"}})
    original = deploy(f"src.example.com/{image}")
    moved = transform(original, there, CTX).obj
    assert moved["spec"]["template"]["spec"]["containers"][0]["image"].startswith("dst.example.org/mirror/")
    assert transform(moved, back, CTX).obj == original
    untouched = deploy(image)
    assert transform(untouched, there, CTX).applied == [] or image.startswith("src.example.com")
