"""End to end on the sandbox, through the real executor and journal: a 5xx injected into the new cluster during
the 50 % step triggers the automatic rollback to 100 % old, within one gate interval plus the TTL (measured from
the probe's own samples); the 100 % step never starts. Once the fault is gone, resuming the run re-shifts and
re-soaks every step from the 10 % canary on, and completes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from migrate.errors import GateFailed, StepFailed
from migrate.run.journal import DONE, FAILED, PENDING, ROLLED_BACK
from migrate.sandbox import lifecycle
from migrate.steps.traffic import ShiftTrafficStep
from migrate.traffic.files import JsonLines
from traffic.kit import context, engine, fault, shift_steps, start_green, wait_for, weights, write_config

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
    run, journal, reporter = engine(ctx, [first, second, third])

    outcome: dict[str, Any] = {}

    def migrate() -> None:
        try:
            outcome["state"] = run.run()
        except GateFailed as e:
            outcome["error"] = e

    worker = threading.Thread(target=migrate)
    worker.start()
    timeline = JsonLines(ctx.workdir / "traffic" / "timeline.jsonl")
    synced = wait_for(lambda: [e for e in timeline.read() if e["event"] == "insync" and e["step"] == second.id],
                      timeout=60, what="the 50 % step to be in sync")
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

    # The journal: the 50 % step failed, the automatic rollback undid the 10 % step (an append-only record),
    # and the loop stopped: the 100 % step never started, never set weights, never probed.
    state = run.state()
    assert state.status == "failed"
    assert state.step(second.id).status == FAILED
    assert state.step(first.id).status == ROLLED_BACK and state.step(first.id).undone_by == second.id
    assert state.step(third.id).status == PENDING
    undo = [r for r in journal.records() if r["type"] == "step.rolled_back"]
    assert [(r["step"], r["automatic"], r["cause"]) for r in undo] == [(first.id, True, second.id)]
    assert not [r for r in journal.records() if r.get("step") == third.id]
    assert not [e for e in events if e["step"] == third.id]
    assert not [s for s in JsonLines(ctx.workdir / "traffic" / "samples.jsonl").read() if s["tag"] == third.id]
    assert any(e.type == "step.rolled_back" and e.step == first.id for e in reporter.events)

    # Fault gone, the run resumed: 10 % again (the canary and its soak), then 50 %, then 100 %.
    lifecycle.control(sandbox, "DELETE", "/faults")
    resumed_at = time.time()
    resumed, journal, _ = engine(ctx, [first, second, third])
    final = resumed.run()
    assert final.status == "completed"
    assert all(final.step(s.id).status == DONE for s in (first, second, third))
    visited = [(e["step"], e["old"], e["new"]) for e in timeline.read()
               if e["event"] == "weights" and e["t"] >= resumed_at]
    assert visited == [(first.id, 90, 10), (second.id, 50, 50), (third.id, 0, 100)], visited
    started = [r["step"] for r in journal.records() if r["type"] == "step.started" and r["ts"] > undo[0]["ts"]]
    assert started == [first.id, second.id, third.id]
    soaked = json.loads((ctx.workdir / "traffic" / "soaked.json").read_text())
    assert soaked[first.id]["t"] >= resumed_at and soaked[first.id]["outputs"]["gates_evaluated"] >= 1
    assert weights(sandbox, ENV)["blue"][0] == 0 and weights(sandbox, ENV)["green"][0] == 100
    resumed_samples = [s for s in JsonLines(ctx.workdir / "traffic" / "samples.jsonl").read()
                       if s["t"] >= resumed_at and s["tag"] == first.id]
    assert resumed_samples and {s["backend"] for s in resumed_samples} == {f"{ENV}-blue", green}

    # A return to the old cluster the engine did not journal (here a partial `rollback --to` the 50 % step,
    # which sets 100 % old while the 10 % step stays done): the next run refuses to jump from 100 % old to 50 %,
    # changes nothing, and journals the 10 % step as undone, so the run after it starts at the canary again.
    resumed.rollback(to=second.id)
    assert weights(sandbox, ENV)["blue"][0] == 100
    before = len(list(timeline.read()))
    guarded, journal, _ = engine(ctx, [first, second, third])
    with pytest.raises(StepFailed, match="no longer in effect"):
        guarded.run()
    assert [e for e in list(timeline.read())[before:] if e["event"] == "weights"] == []
    assert guarded.state().step(first.id).status == ROLLED_BACK
    assert guarded.state().step(first.id).undone_by == second.id
    assert weights(sandbox, ENV)["blue"][0] == 100  # leave the sandbox's record as it was seeded
