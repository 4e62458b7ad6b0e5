"""End to end on the sandbox: gateway, validation, a 10/50/100 cutover with the probe running, the report,
then the gateway removed. Done-when: zero failed requests through the whole cutover."""

from __future__ import annotations

import json
import stat
import urllib.request
from pathlib import Path
from typing import Any

from migrate.steps.report import WriteReportStep
from migrate.steps.traffic import OpenGatewayStep, RemoveGatewayStep, ShiftTrafficStep, kube_clients
from migrate.steps.validate import ValidateStep
from migrate.traffic.files import JsonLines
from migrate.validate.health import parity_from_clusters
from traffic.kit import GATEWAY_STEP, aws, context, shift_steps, start_green, step, weights, write_config

ENV = "dev"


def test_full_cutover_with_zero_failed_requests(sandbox: dict[str, Any], project: Path) -> None:
    kubeconfig = start_green(sandbox, ENV)
    config = write_config(project, ENV, sandbox,
                          {"steps": [10, 50, 100], "soak": "3s", "gate_interval": "1s", "probe_rate": 40,
                           "baseline": "2s",
                           # The floor keeps 1-s windows of a loaded 2-core box from failing on ms jitter.
                           "thresholds": {"error_rate": 0.0, "min_requests": 5, "latency_floor_ms": 250}},
                          {"smoke": [{"path": "/", "expect_status": 200, "json_path": {"cluster": f"{ENV}-green"}},
                                     {"path": "/api", "body_contains": "api"}],
                           "latency": {"requests": 10, "max_ratio": 3.0},
                           "diff": {"requests": 3, "ignore": ["cluster", "host", "image"]}})
    ctx = context(config, ENV, kubeconfig)
    green = f"{ENV}-green"

    # Temporary gateway: an HTTP API in front of the new cluster's ingress, found from the old record.
    gw_step = step("open-gateway", GATEWAY_STEP, name=f"migrate-{ENV}-{green}")
    assert OpenGatewayStep().is_done(gw_step, ctx) is None
    gw = OpenGatewayStep().apply(gw_step, ctx)
    assert ".elb." in gw["new_ingress"] and green in gw["new_ingress"]
    assert (OpenGatewayStep().is_done(gw_step, ctx) or {}).get("api_id") == gw["api_id"]  # idempotent
    with urllib.request.urlopen(gw["url"] + "/", timeout=5) as resp:
        assert resp.headers["X-Sandbox-Cluster"] == green
    ctx.outputs[GATEWAY_STEP] = gw

    # Validation through the gateway, before any traffic moves. The test applied only the public path's
    # workloads, so parity comes from what the replay step would have said (checked on its own elsewhere).
    old_kube, new_kube = kube_clients(ctx)
    with old_kube, new_kube:
        parity = parity_from_clusters(old_kube, new_kube)
    assert not parity.ok and ["statefulsets", "shop", "redis"] in parity.data["missing"]
    ctx.outputs["06-replay-workloads"] = {"parity": True, "inventory": {}}
    val = ValidateStep().apply(step("validate", "09-validate"), ctx)
    assert val["ok"], json.loads(Path(val["results"]).read_text())["results"]
    assert {"smoke: GET /", "latency: old vs new", "diff: new vs old", "health: new cluster",
            "parity: workloads"} <= {r["name"] for r in json.loads(Path(val["results"]).read_text())["results"]}

    impl = ShiftTrafficStep()
    for s in shift_steps(ctx):
        assert impl.is_done(s, ctx) is None
        ctx.outputs[s.id] = impl.apply(s, ctx)
        assert impl.is_done(s, ctx) is not None  # weights in place and soak journaled: a resume skips it
    assert weights(sandbox, ENV)["blue"][0] == 0 and weights(sandbox, ENV)["green"] == (100, gw["new_ingress"])

    # Killed mid-soak: the weights are in place but the soak was never journaled -> not done, it re-soaks.
    soaked = ctx.workdir / "traffic" / "soaked.json"
    marks = json.loads(soaked.read_text())
    last_step = shift_steps(ctx)[-1]
    soaked.write_text(json.dumps({k: v for k, v in marks.items() if k != last_step.id}))
    assert impl.is_done(last_step, ctx) is None
    soaked.write_text(json.dumps(marks))

    samples = list(JsonLines(ctx.workdir / "traffic" / "samples.jsonl").read())
    failed = [s for s in samples if not 200 <= s["status"] < 400]
    by_backend = {b: sum(1 for s in samples if s["backend"] == b) for b in {s["backend"] for s in samples}}
    print(f"\ncutover: {len(samples)} probe requests, {len(failed)} failed, by backend {by_backend}")
    assert len(samples) >= 300
    assert failed == []
    assert by_backend.get(green, 0) > 100 and by_backend.get(f"{ENV}-blue", 0) > 50
    last = [s for s in samples if s["tag"].endswith("shift-traffic-3")]
    assert last and all(s["backend"] == green for s in last[-40:])
    assert stat.S_IMODE((ctx.workdir / "traffic" / "samples.jsonl").stat().st_mode) == 0o600

    report = WriteReportStep().apply(step("write-report", "13-write-report"), ctx)
    md = Path(report["path"]).read_text()
    assert "SUCCESS" in md and gw["url"] in md and "Validation" in md and "ROLLBACK" not in md
    assert Path(report["chart"]).stat().st_size > 10_000
    assert "data:image/png;base64," in Path(report["html"]).read_text()

    # Decommission's remove-gateway; then the rollback of the last shift puts everything back (for reruns).
    rm = step("remove-gateway", "01-remove-gateway")
    assert RemoveGatewayStep().apply(rm, ctx)["deleted"] == [gw["api_id"]]
    assert RemoveGatewayStep().is_done(rm, ctx) is not None
    assert not [a for a in aws(sandbox, "apigatewayv2").get_apis()["Items"] if a["ApiId"] == gw["api_id"]]
    impl.rollback(shift_steps(ctx)[-1], ctx, {})
    impl.rollback(shift_steps(ctx)[-1], ctx, {})  # safe twice
    assert weights(sandbox, ENV)["blue"][0] == 100 and weights(sandbox, ENV)["green"][0] == 0
