"""Through `invoke migrate --inject-fault 503`: the new cluster starts failing just before the cutover (a
hook step injects the sandbox's 5xx fault), the first gate fails, and traffic goes back to the old cluster
by itself. Then, on the same sandbox, a validation that fails stops the run before any traffic moves."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import yaml
from engine.kit import Project

from e2e.world import sandboxed_project


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with sandboxed_project(tmp_path_factory.mktemp("gate"), envs=["dev"]) as (project, _):
        yield project


def _weights() -> dict[str, int]:
    r53 = boto3.client("route53", region_name="us-east-1")
    zone = next(z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == "sandbox.internal.")
    return {r["SetIdentifier"]: r["Weight"] for r in r53.list_resource_record_sets(HostedZoneId=zone["Id"])
            ["ResourceRecordSets"] if r["Name"] == "app.dev.sandbox.internal."}


def _http_faults(world: Project) -> list[dict[str, Any]]:
    out = world.run("sandbox.fault", "--state-dir", str(world.root / "sandbox"))
    return list(json.loads(out.stdout)["http"])


def test_failed_gate_rolls_traffic_back_to_the_old_cluster(world: Project) -> None:
    r = world.run("migrate", "--env", "dev", "--inject-fault", "503", timeout=600)
    assert r.returncode == 7, r.stdout + r.stderr
    # The hook is a step of its own (11 = hook, after 10-validate), then 12-cut-volumes, so the first shift is
    # step 13; it is the one that fails.
    assert "traffic gate failed at step 13-shift-traffic-1" in r.stderr, r.stderr
    assert _weights()["green"] == 0 and _weights()["blue"] > 0
    status = json.loads(world.run("status", "--env", "dev", "--json").stdout)[0]["runs"]["migrate"]
    assert status["status"] == "failed"
    failed = [s for s in status["steps"] if s["status"] == "failed"]
    assert [s["id"] for s in failed] == ["13-shift-traffic-1"], failed
    reports = list((world.root / "plans").glob("dev-*.report.md"))
    text = reports[0].read_text() if reports else ""
    assert "| ROLLBACK |" in text and "| 13-shift-traffic-1 | failed |" in text, text
    assert [f["status"] for f in _http_faults(world)] == [503]
    # The operator then rolls the rest back: gateway, replay, cluster and workspace copy go.
    r = world.run("rollback", "--env", "dev", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dev-green" not in boto3.client("eks", region_name="us-east-1").list_clusters()["clusters"]
    apis = boto3.client("apigatewayv2", region_name="us-east-1").get_apis()["Items"]
    assert not [a for a in apis if a["Name"].startswith("migrate-dev-")]
    # The hook's undo cleared the fault.
    assert _http_faults(world) == []


def test_failed_validation_stops_the_run_before_traffic_moves(world: Project) -> None:
    # After the rollback above, a fresh run whose smoke check expects a status the new cluster never returns.
    config = world.root / "migrate.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg["environments"]["dev"]["validation"]["smoke"] = [
        {"name": "teapot", "path": "/", "host": "app.dev.sandbox.internal", "expect_status": 418}]
    config.write_text(yaml.safe_dump(cfg))
    before = _weights()
    assert before["blue"] > 0 and before["green"] == 0

    r = world.run("migrate", "--env", "dev", timeout=600)
    assert r.returncode == 7, r.stdout + r.stderr
    assert "validation failed" in r.stderr and "teapot" in r.stderr, r.stderr
    status = json.loads(world.run("status", "--env", "dev", "--json").stdout)[0]["runs"]["migrate"]
    assert status["status"] == "failed"
    by_kind = {s["id"]: s["status"] for s in status["steps"]}
    assert [sid for sid, st in by_kind.items() if st == "failed"] == ["10-validate"], by_kind
    shifts = {sid: st for sid, st in by_kind.items() if "-shift-traffic-" in sid}
    assert len(shifts) == 3 and set(shifts.values()) == {"pending"}, shifts
    journal = [json.loads(line) for line in (world.root / ".migrate" / "dev" / "journal.jsonl").read_text()
               .splitlines() if line.strip()]
    assert not [rec for rec in journal if rec.get("run") == status["run"] and rec["type"] == "step.started"
                and "-shift-traffic-" in rec["step"]]
    assert _weights() == before  # Route 53 still sends everything to the old cluster
