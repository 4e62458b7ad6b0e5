"""Pure code: weights math, gate evaluation, diff noise subtraction, smoke checks, ingress matching, batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.cloud.aws.route53 import WeightedRecord, record_from_api, upsert_change
from migrate.config import SmokeCheck
from migrate.errors import StepFailed
from migrate.traffic.gates import GateConfig, evaluate, percentile, stats
from migrate.traffic.ingress import match_new_ingress
from migrate.traffic.probe import Sample
from migrate.traffic.routers import swap_host
from migrate.traffic.weights import Split
from migrate.validate.diff import Triple, compare, fields_of, flatten
from migrate.validate.http import Response
from migrate.validate.latency import compare as latency_compare
from migrate.validate.smoke import check_response, json_path
from migrate.validate.suites import junit_counts

CFG = GateConfig(error_rate=0.01, latency_ratio=2.0, min_requests=10, latency_floor_ms=20.0)


def samples(n: int, failed: int = 0, latency: float = 5.0) -> list[Sample]:
    return [Sample(float(i), 503 if i < failed else 200, latency, "b") for i in range(n)]


@pytest.mark.parametrize("old,new,share", [(100, 0, 0.0), (90, 10, 0.1), (0, 100, 1.0), (0, 0, 0.5), (255, 255, 0.5)])
def test_weights_share_all_zero_is_equal_split(old: int, new: int, share: float) -> None:
    assert Split(old, new).new_share == pytest.approx(share)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_gate_passes_a_healthy_window() -> None:
    r = evaluate(stats(samples(50)), CFG, baseline_p95_ms=5.0)
    assert r.ok and not r.reasons and not r.inconclusive


def test_gate_fails_on_error_rate() -> None:
    r = evaluate(stats(samples(40, failed=2)), CFG, baseline_p95_ms=5.0)
    assert not r.ok and "error rate 5.0% (2/40)" in r.reasons[0]


def test_gate_below_min_requests_is_inconclusive_not_failed() -> None:
    r = evaluate(stats(samples(5, failed=5)), CFG, baseline_p95_ms=5.0)
    assert r.ok and r.inconclusive


def test_gate_latency_against_baseline_with_a_floor() -> None:
    assert not evaluate(stats(samples(50, latency=100.0)), CFG, baseline_p95_ms=20.0).ok  # 100 > 40
    assert evaluate(stats(samples(50, latency=15.0)), CFG, baseline_p95_ms=1.0).ok  # 15x, but under 20 ms
    assert evaluate(stats(samples(50, latency=100.0)), CFG, baseline_p95_ms=None).ok  # no baseline: off


def test_gate_http_check_and_alarm() -> None:
    window = stats(samples(50))
    assert "HTTP check failed: GET /: status 500" in evaluate(window, CFG, 5.0, http_check="GET /: status 500").reasons
    assert evaluate(window, CFG, 5.0, alarm_state="ALARM").reasons == ["CloudWatch alarm is in state ALARM"]
    assert evaluate(window, CFG, 5.0, alarm_state="OK").ok


def triple(new: dict, old1: dict, old2: dict, path: str = "/") -> Triple:
    return Triple(path, fields_of(200, _json(new)), fields_of(200, _json(old1)), fields_of(200, _json(old2)))


def _json(d: dict) -> bytes:
    import json
    return json.dumps(d).encode()


def test_diff_subtracts_noise_and_reports_real_differences_with_rates() -> None:
    ts = iter(range(1000))
    triples = [triple({"ts": next(ts), "v": 2 if i % 2 else 1, "x": [1, 2]}, {"ts": next(ts), "v": 1, "x": [1, 2]},
                      {"ts": next(ts), "v": 1, "x": [1, 2]}) for i in range(10)]
    report = compare(triples)
    assert report.differences == {"body.v": 0.5}
    assert report.noise == {"body.ts": 1.0}
    assert report.examples["body.v"] == {"new": 2, "old": 1}


def test_diff_ignore_list_and_status_and_missing_fields() -> None:
    t = Triple("/", {"$status": 500, "body.a": 1}, {"$status": 200, "body.a": 1, "body.b": 2},
               {"$status": 200, "body.a": 1, "body.b": 2})
    assert compare([t]).differences == {"$status": 1.0, "body.b": 1.0}
    assert compare([t], ignore=["b"]).differences == {"$status": 1.0}


def test_flatten() -> None:
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": {}}) == {"a.b[0]": 1, "a.b[1].c": 2, "d": {}}


def test_smoke_checks_status_body_and_json_path() -> None:
    resp = Response(200, {}, _json({"a": {"b": [{"c": "x"}]}, "n": 3}), 1.0)
    assert check_response(SmokeCheck(path="/", body_contains='"n": 3', json_path={"$.a.b[0].c": "x", "n": 3}),
                          resp) == []
    problems = check_response(SmokeCheck(path="/", expect_status=201, json_path={"a.z": 1, "n": 4}), resp)
    assert problems == ["status 200 (expected 201)", "a.z is missing", "n is 3 (expected 4)"]
    assert json_path([10, 20], "1") == 20


def test_latency_ratio() -> None:
    assert latency_compare([10.0] * 20, [15.0] * 20, 2.0)["ok"]
    out = latency_compare([10.0] * 20, [50.0] * 20, 2.0)
    assert not out["ok"] and out["p95_ratio"] == 5.0
    assert latency_compare([1.0] * 20, [5.0] * 20, 2.0, floor_ms=20.0)["ok"]


def svc(ns: str, name: str, host: str | None) -> dict:
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"hostname": host}] if host else []}}}


def test_new_ingress_is_the_twin_of_the_old_records_load_balancer() -> None:
    old = [svc("shop", "api-public", "api.old.elb"), svc("ingress-nginx", "controller", "ing.old.elb")]
    new = [svc("shop", "api-public", "api.new.elb"), svc("ingress-nginx", "controller", "ing.new.elb")]
    assert match_new_ingress(old, new, "ING.old.elb.") == ("ingress-nginx/controller", "ing.new.elb")
    with pytest.raises(StepFailed, match="no LoadBalancer Service in the old cluster"):
        match_new_ingress(old, new, "other.elb")
    with pytest.raises(StepFailed, match="has no Service ingress-nginx/controller"):
        match_new_ingress(old, new[:1], "ing.old.elb")
    with pytest.raises(StepFailed, match="no load balancer hostname yet"):
        match_new_ingress(old, [svc("ingress-nginx", "controller", None)], "ing.old.elb")


def test_upsert_keeps_the_record_and_changes_the_weight() -> None:
    rec = record_from_api({"Name": "app.x.", "Type": "CNAME", "SetIdentifier": "blue", "Weight": 255, "TTL": 5,
                           "ResourceRecords": [{"Value": "old.elb"}]})
    assert rec == WeightedRecord("blue", "CNAME", 255, 5, "old.elb")
    change = upsert_change("app.x", rec, 10, value="new.elb", ttl=2)
    assert change == {"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "app.x.", "Type": "CNAME", "SetIdentifier": "blue", "Weight": 10, "TTL": 2,
        "ResourceRecords": [{"Value": "new.elb"}]}}
    alias = WeightedRecord("g", "A", 0, None, "lb.elb", "Z1")
    assert upsert_change("app.x", alias, 5)["ResourceRecordSet"]["AliasTarget"]["DNSName"] == "lb.elb"


def test_swap_host_keeps_the_path_template() -> None:
    assert swap_host("http://old.elb/{proxy}", "old.elb", "new.elb") == "http://new.elb/{proxy}"


def test_junit_counts(tmp_path: Path) -> None:
    xml = tmp_path / "r.xml"
    xml.write_text('<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1"/></testsuites>')
    assert junit_counts(xml) == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1}
    assert junit_counts(tmp_path / "missing.xml")["tests"] == 0


def test_gate_latency_needs_enough_requests_for_a_p95() -> None:
    cfg = GateConfig(error_rate=0.01, latency_ratio=2.0, min_requests=10, latency_floor_ms=20.0,
                     latency_min_requests=100)
    few_slow = stats([*samples(37, latency=5.0), *(Sample(t, 200, 60.0, "b") for t in (37.0, 38.0, 39.0))])
    assert evaluate(few_slow, CFG, baseline_p95_ms=5.0).ok is False  # 3 slow of 40 make the p95...
    assert evaluate(few_slow, cfg, baseline_p95_ms=5.0).ok  # ...which is not judged on so few
    slow = stats(samples(100, latency=60.0))
    assert not evaluate(slow, cfg, baseline_p95_ms=5.0).ok  # a real regression over enough requests fails


def test_gate_latency_uses_the_longer_window_when_given() -> None:
    spike = stats(samples(20, latency=500.0))
    steady = stats(samples(200, latency=5.0))
    assert not evaluate(spike, CFG, baseline_p95_ms=5.0).ok
    assert evaluate(spike, CFG, baseline_p95_ms=5.0, latency_window=steady).ok
