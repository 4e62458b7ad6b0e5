"""`router: gateway` on the sandbox's moto server (not mocks): the production HTTP API's HTTP_PROXY integration
moves from the old cluster's load balancer to the new one at 100 % and back on rollback, through the real
executor. A step below 100 % cannot be expressed with one integration: it keeps traffic on the old cluster,
says so, and only soaks. Requests go through the API's own endpoint (the sandbox's API Gateway data plane)."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from migrate.run.journal import DONE
from migrate.steps.traffic import ShiftTrafficStep, entry_url, make_router, resolve_targets
from migrate.traffic.files import JsonLines
from migrate.traffic.weights import ALL_OLD, Split
from traffic.kit import aws, context, engine, shift_steps, start_green, weights, write_config

ENV = "prod"


def _integration_uri(sandbox: dict[str, Any], api_id: str) -> str:
    items = aws(sandbox, "apigatewayv2").get_integrations(ApiId=api_id)["Items"]
    assert len(items) == 1
    return str(items[0]["IntegrationUri"])


def _answered_by(url: str) -> str:
    with urllib.request.urlopen(url + "/", timeout=5) as resp:
        assert resp.status == 200
        return str(resp.headers["X-Sandbox-Cluster"])


def test_gateway_router_switches_the_production_integration_and_back(sandbox: dict[str, Any],
                                                                     project: Path) -> None:
    kubeconfig = start_green(sandbox, ENV)
    prod_api = sandbox["environments"][ENV]["prod_api"]
    api_id = prod_api["id"]
    seeded_uri = _integration_uri(sandbox, api_id)
    seeded_weights = weights(sandbox, ENV)
    config = write_config(project, ENV, sandbox,
                          {"router": "gateway", "api_id": api_id, "steps": [10, 100], "soak": "2s",
                           "gate_interval": "1s", "probe_rate": 20, "baseline": "1s",
                           "thresholds": {"error_rate": 0.0, "min_requests": 5, "latency_floor_ms": 250}})
    ctx = context(config, ENV, kubeconfig)
    blue, green = f"{ENV}-blue", f"{ENV}-green"

    # resolve_targets: the old LB is the host of the production API's integration URI; its twin in the new
    # cluster gives the new URI (same path template). entry_url: the production API's own endpoint.
    targets = resolve_targets(ctx)
    assert targets["old_uri"] == seeded_uri and targets["old_host"] in seeded_uri
    assert green in targets["new_host"] and targets["new_uri"] == f"http://{targets['new_host']}/{{proxy}}"
    assert entry_url(ctx) == prod_api["endpoint"]
    assert _answered_by(entry_url(ctx)) == blue
    router = make_router(ctx, targets)
    assert router.kind == "gateway" and router.current() == ALL_OLD and router.settle_s == 0

    first, last = shift_steps(ctx)
    run, journal, reporter = engine(ctx, [first, last])
    state = run.run()
    assert state.status == "completed" and state.step(first.id).status == state.step(last.id).status == DONE

    # 10 %: all-or-nothing -> stays on old, says so in the log and the journaled outputs, and only soaks.
    logs = [e.message for e in reporter.events if e.type == "step.progress"]
    assert any("all-or-nothing" in m and "stays 100% on the old cluster and this step only soaks" in m
               for m in logs), logs
    outputs = {r["step"]: r["outputs"] for r in journal.records() if r["type"] == "step.done"}
    assert outputs[first.id]["applied"] == {"old": 100, "new": 0} and "only soaks" in outputs[first.id]["note"]
    assert outputs[first.id]["gates_evaluated"] >= 1
    assert outputs[last.id]["applied"] == {"old": 0, "new": 100} and "note" not in outputs[last.id]
    samples = list(JsonLines(ctx.workdir / "traffic" / "samples.jsonl").read())
    canary = [s for s in samples if s["tag"] == first.id]
    # The probe starts just before the switch; from the moment the update returned, only the new cluster.
    switched = next(e["t"] for e in JsonLines(ctx.workdir / "traffic" / "timeline.jsonl").read()
                    if e["event"] == "insync" and e["step"] == last.id)
    cutover = [s for s in samples if s["tag"] == last.id and s["t"] > switched]
    assert canary and {s["backend"] for s in canary} == {blue}
    assert len(cutover) >= 10 and {s["backend"] for s in cutover} == {green}
    assert [s for s in samples if not 200 <= s["status"] < 400] == []

    # 100 %: the integration names the new LB; clients of the production API reach the new cluster at once.
    assert _integration_uri(sandbox, api_id) == targets["new_uri"]
    assert _answered_by(entry_url(ctx)) == green
    assert ShiftTrafficStep().is_done(last, ctx) is not None
    assert router.current() == Split(old=0, new=100)

    # Rollback: back to the old URI (the path template kept); safe twice. Route 53 was never touched.
    run.rollback()
    assert _integration_uri(sandbox, api_id) == seeded_uri
    assert _answered_by(entry_url(ctx)) == blue
    ShiftTrafficStep().rollback(last, ctx, {})
    assert _integration_uri(sandbox, api_id) == seeded_uri
    assert weights(sandbox, ENV) == seeded_weights
