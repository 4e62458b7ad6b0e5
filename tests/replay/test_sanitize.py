"""One test per stripping rule (reference/replay.md, "What to strip"), plus properties of the whole pass."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.kube import sanitize as s

SERVER_META = {"uid": "u-1", "selfLink": "/x", "resourceVersion": "42", "generation": 3,
               "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": [{"manager": "kubectl"}],
               "deletionGracePeriodSeconds": 30,
               "ownerReferences": [{"kind": "ReplicaSet", "name": "x", "uid": "u-0"}]}


def svc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}], **spec}}


def test_strip_server_metadata() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n", "labels": {"x": "y"}, **SERVER_META}}
    assert s.strip_server_metadata(obj)
    assert obj["metadata"] == {"name": "a", "namespace": "n", "labels": {"x": "y"}}
    assert not s.strip_server_metadata(obj)


def test_strip_last_applied_keeps_other_annotations() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "a", "annotations": {s.LAST_APPLIED: "{}", "team": "x"}}}
    assert s.strip_last_applied(obj)
    assert obj["metadata"]["annotations"] == {"team": "x"}


def test_strip_status() -> None:
    obj = {"kind": "Deployment", "metadata": {"name": "a"}, "status": {"replicas": 3}}
    assert s.strip_status(obj) and "status" not in obj


def test_strip_controller_annotations() -> None:
    obj = {"kind": "Deployment", "metadata": {"name": "a", "annotations": {"deployment.kubernetes.io/revision": "4"}}}
    assert s.strip_controller_annotations(obj)
    assert obj["metadata"]["annotations"] == {}


def test_service_cluster_ip_cleared() -> None:
    obj = svc(clusterIP="10.96.4.5", clusterIPs=["10.96.4.5"])
    assert s.service_cluster_ip(obj)
    assert "clusterIP" not in obj["spec"] and "clusterIPs" not in obj["spec"]


def test_service_cluster_ip_headless_kept() -> None:
    obj = svc(clusterIP="None", clusterIPs=["None"])
    assert not s.service_cluster_ip(obj)
    assert obj["spec"]["clusterIP"] == "None"


def test_service_node_ports_allocated_are_cleared() -> None:
    obj = svc(type="NodePort", ports=[{"port": 80, "protocol": "TCP", "nodePort": 31234}], healthCheckNodePort=32000)
    assert s.service_node_ports(obj)
    assert "nodePort" not in obj["spec"]["ports"][0] and "healthCheckNodePort" not in obj["spec"]


def test_service_node_ports_set_by_user_are_kept() -> None:
    last = {"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}
    obj = svc(type="NodePort", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080},
                                      {"port": 443, "protocol": "TCP", "nodePort": 31443}])
    obj["metadata"]["annotations"] = {s.LAST_APPLIED: json.dumps(last)}
    assert s.service_node_ports(obj)
    assert obj["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "nodePort": 30080},
                                    {"port": 443, "protocol": "TCP"}]


def test_service_lb_external_ips() -> None:
    obj = svc(type="LoadBalancer", externalIPs=["1.2.3.4"])
    assert s.service_lb_external_ips(obj) and "externalIPs" not in obj["spec"]
    plain = svc(type="ClusterIP", externalIPs=["1.2.3.4"])
    assert not s.service_lb_external_ips(plain)  # a ClusterIP service's external IPs are the user's routing


def test_pod_node_binding() -> None:
    obj = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"nodeName": "ip-10-0-0-1", "priority": 1000,
                                                              "priorityClassName": "high", "containers": []}}
    assert s.pod_node_binding(obj)
    assert obj["spec"] == {"priorityClassName": "high", "containers": []}


def test_pod_token_volumes() -> None:
    obj = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "volumes": [{"name": "web-token-abcde", "secret": {"secretName": "web-token-abcde"}},
                    {"name": "kube-api-access-x2x4z", "projected": {}}, {"name": "data", "emptyDir": {}}],
        "containers": [{"name": "c", "volumeMounts": [{"name": "web-token-abcde", "mountPath": "/var/run"},
                                                      {"name": "kube-api-access-x2x4z", "mountPath": "/t"},
                                                      {"name": "data", "mountPath": "/data"}]}]}}
    assert s.pod_token_volumes(obj)
    assert obj["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert obj["spec"]["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]


def test_serviceaccount_token_refs() -> None:
    obj = {"kind": "ServiceAccount", "metadata": {"name": "web"},
           "secrets": [{"name": "web-token-abcde"}, {"name": "registry-creds"}]}
    assert s.serviceaccount_token_refs(obj)
    assert obj["secrets"] == [{"name": "registry-creds"}]


def test_job_selector_and_labels() -> None:
    uid = {"controller-uid": "u", "batch.kubernetes.io/controller-uid": "u", "job-name": "j"}
    obj = {"kind": "Job", "metadata": {"name": "j", "labels": dict(uid)},
           "spec": {"selector": {"matchLabels": dict(uid)},
                    "template": {"metadata": {"labels": dict(uid)}, "spec": {"containers": []}}}}
    assert s.job_selector(obj) and s.job_labels(obj)
    assert "selector" not in obj["spec"]
    assert obj["spec"]["template"]["metadata"]["labels"] == {"job-name": "j"}
    assert obj["metadata"]["labels"] == {"job-name": "j"}


def test_job_manual_selector_is_kept_without_uid() -> None:
    obj = {"kind": "Job", "metadata": {"name": "j"},
           "spec": {"manualSelector": True, "selector": {"matchLabels": {"controller-uid": "u", "app": "j"}},
                    "template": {"metadata": {"labels": {"app": "j"}}}}}
    assert s.job_selector(obj)
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "j"}}


def test_pvc_binding_dynamic() -> None:
    obj = {"kind": "PersistentVolumeClaim", "metadata": {"name": "c", "annotations": {
        "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
        "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com", "volume.kubernetes.io/selected-node": "n1",
        "team": "x"}}, "spec": {"volumeName": "pvc-123", "storageClassName": "gp3"}}
    assert s.pvc_binding(obj)
    assert obj["metadata"]["annotations"] == {"team": "x"}
    assert obj["spec"] == {"storageClassName": "gp3"}


def test_pvc_binding_static_volume_kept() -> None:
    obj = {"kind": "PersistentVolumeClaim", "metadata": {"name": "c", "annotations": {
        "pv.kubernetes.io/bind-completed": "yes"}}, "spec": {"volumeName": "nfs-share"}}
    assert s.pvc_binding(obj)
    assert obj["spec"]["volumeName"] == "nfs-share"


def test_pv_claim_ref() -> None:
    obj = {"kind": "PersistentVolume", "metadata": {"name": "nfs"},
           "spec": {"claimRef": {"namespace": "n", "name": "c", "uid": "u", "resourceVersion": "9"}}}
    assert s.pv_claim_ref(obj)
    assert obj["spec"]["claimRef"] == {"namespace": "n", "name": "c"}


def test_workload_template_hash() -> None:
    obj = {"kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"template": {"metadata": {"labels": {"app": "d", "pod-template-hash": "abc"}}}}}
    assert s.workload_template_hash(obj)
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "d"}


def test_sanitize_reports_rules_and_leaves_input_alone() -> None:
    obj = svc(clusterIP="10.0.0.1")
    obj["metadata"].update(SERVER_META)
    obj["status"] = {"loadBalancer": {}}
    before = json.dumps(obj, sort_keys=True)
    out, rules = s.sanitize(obj)
    assert json.dumps(obj, sort_keys=True) == before
    assert rules == ["service_cluster_ip", "strip_server_metadata", "strip_status"]
    assert out == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}


def test_every_rule_is_named_and_documented() -> None:
    assert len({r.__name__ for r in s.RULES}) == len(s.RULES)
    assert all(r.__doc__ for r in s.RULES)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=10)
kinds = st.sampled_from(["Service", "Pod", "Job", "PersistentVolumeClaim", "ServiceAccount", "Deployment",
                         "ConfigMap", "PersistentVolume"])


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    meta = draw(st.dictionaries(st.sampled_from([*SERVER_META, "finalizers"]), json_values, max_size=6))
    for k in ("labels", "annotations"):
        if draw(st.booleans()):
            meta[k] = draw(st.dictionaries(st.sampled_from(["app", s.LAST_APPLIED, "pv.kubernetes.io/bind-completed",
                                                            "controller-uid"]), st.text(max_size=5), max_size=3))
    meta["name"] = "x"
    spec = draw(st.dictionaries(st.sampled_from(["clusterIP", "ports", "selector", "nodeName", "template",
                                                 "volumeName", "type", "replicas"]), json_values, max_size=5))
    return {"apiVersion": "v1", "kind": draw(kinds), "metadata": meta, "spec": spec,
            **({"status": draw(json_values)} if draw(st.booleans()) else {})}


@settings(max_examples=300, deadline=None)  # a loaded CI machine is slow, not wrong
@given(objects())
def test_sanitize_is_idempotent_and_strips_server_fields(obj: dict[str, Any]) -> None:
    once, _ = s.sanitize(obj)
    twice, rules = s.sanitize(once)
    assert twice == once
    assert rules == []
    assert "status" not in once
    assert not set(once["metadata"]) & {"uid", "resourceVersion", "managedFields", "ownerReferences", "generation"}
    assert once["metadata"].get("finalizers") == obj["metadata"].get("finalizers")  # finalizers are kept
