"""End to end on the sandbox: a 5xx injected into the new cluster during the 50 % step triggers the automatic
rollback to 100 % old, within one gate interval plus the TTL (measured from the probe's own samples)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from migrate.errors import GateFailed
from migrate.steps.traffic import ShiftTrafficStep
from migrate.traffic.files import JsonLines
from traffic.kit import context, fault, shift_steps, start_green, wait_for, weights, write_config

ENV = "staging"
TTL = 2.0
GATE_INTERVAL = 1.0
SLACK = 0.6  # one probe period, the INSYNC poll and thread scheduling on 2 shared cores


def test_5xx_at_50_percent_rolls_back_within_one_interval_plus_ttl(sandbox: dict[str, Any], project: Path,
                                                                   clean_faults: None) -> None:
    kubeconfig = start_green(sandbox, ENV)
    config = write_config(project, ENV, sandbox,
                          {"steps": [10, 50, 100], "soak": "6s", "gate_interval": f"{GATE_INTERVAL}s",
                           "probe_rate": 40, "baseline": "1s",
                           "thresholds": {"error_rate": 0.05, "min_requests": 10, "latency_floor_ms": 250}})
    ctx = context(config, ENV, kubeconfig)
    green = f"{ENV}-green"
    impl = ShiftTrafficStep()
    first, second, third = shift_steps(ctx)
    ctx.outputs[first.id] = impl.apply(first, ctx)

    outcome: dict[str, Any] = {}

    def run_second() -> None:
        try:
            outcome["outputs"] = impl.apply(second, ctx)
        except GateFailed as e:
            outcome["error"] = e

    worker = threading.Thread(target=run_second)
    worker.start()
    timeline = JsonLines(ctx.workdir / "traffic" / "timeline.jsonl")
    synced = wait_for(lambda: [e for e in timeline.read() if e["event"] == "insync" and e["step"] == second.id],
                      what="the 50 % step to be in sync")
    # Into the soak: clients already see 50/50, then the new cluster starts answering 503.
    time.sleep(max(0.0, synced[0]["t"] + TTL + 1.0 - time.time()))
    t_fault = time.time()
    fault(sandbox, green, 503)
    worker.join(timeout=30)
    assert not worker.is_alive()

    assert isinstance(outcome.get("error"), GateFailed), outcome
    assert "error rate" in outcome["error"].what
    assert weights(sandbox, ENV)["blue"][0] == 100 and weights(sandbox, ENV)["green"][0] == 0
    events = list(timeline.read())
    rollback = next(e for e in events if e["event"] == "rollback")
    samples = [s for s in JsonLines(ctx.workdir / "traffic" / "samples.jsonl").read() if s["tag"] == second.id]
    after = [s for s in samples if s["t"] >= t_fault]
    bad = [s for s in after if s["backend"] == green or not 200 <= s["status"] < 400]
    detect_s = rollback["t"] - t_fault
    back_s = (bad[-1]["t"] - t_fault) if bad else 0.0
    print(f"\nrollback: detected {detect_s:.2f}s after the fault, last request to the new cluster "
          f"{back_s:.2f}s after it ({len(bad)} failed of {len(after)}); bound {GATE_INTERVAL + TTL:g}s")
    assert bad, "the fault never reached a client: the test proves nothing"
    assert detect_s <= GATE_INTERVAL + SLACK
    assert back_s <= GATE_INTERVAL + TTL + SLACK
    # The probe keeps going for one TTL after the rollback: from the last bad answer on, only the old cluster.
    tail = [s for s in after if s["t"] > bad[-1]["t"]]
    assert len(tail) >= 10 and all(s["backend"] == f"{ENV}-blue" and s["status"] == 200 for s in tail)
    assert next(e for e in events if e["event"] == "recovered")["failures"] == 0

    # A gate failure voids every soak: the steps are not done, a new run re-shifts and re-soaks them.
    assert impl.is_done(first, ctx) is None and impl.is_done(second, ctx) is None
    report = Path(ctx.loaded.resolve("plans")) / f"{ENV}-{ctx.run_id}.report.md"
    text = report.read_text()
    assert "FAILED" in text and "ROLLBACK" in text and "error rate" in text
    with pytest.raises(AssertionError):
        assert third.id in outcome  # the loop stopped: the 100 % step never ran
