"""One weight step of the cutover: set the split, wait for it to take effect, soak while checking gates.

On a failed gate the split goes back to 100 % old at once (one batch, INSYNC), the reason is recorded in the
timeline, and GateFailed is raised: the engine journals it and the run stops. Gates are evaluated every
``gate_interval`` from the moment the change is in sync (during the TTL wait too: a broken new cluster is
noticed as soon as a client reaches it), so a fault is answered within one interval plus the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate.errors import GateFailed, MigrateError
from migrate.traffic.files import JsonLines
from migrate.traffic.gates import GateConfig, GateResult, evaluate, stats
from migrate.traffic.probe import Probe
from migrate.traffic.routers import Router
from migrate.traffic.weights import ALL_OLD, Split

# Optional extra gate: returns (failed HTTP check or None, CloudWatch alarm state or None).
ExtraChecks = Callable[[], tuple[str | None, str | None]]


@dataclass(frozen=True)
class StepSpec:
    tag: str  # the plan step id
    split: Split
    soak_s: float
    gate_interval_s: float
    gates: GateConfig


@dataclass
class StepOutcome:
    insync_s: float
    gates_evaluated: int
    soak_window: dict[str, Any]
    results: list[GateResult] = field(default_factory=list)


def rollback_to_old(router: Router, timeline: JsonLines, tag: str, reason: str) -> float:
    """All traffic back to the old cluster; returns the seconds until the change was in sync."""
    back = router.effective(ALL_OLD).to_dict()
    timeline.append({"t": time.time(), "event": "rollback", "step": tag, "reason": reason, **back})
    spent = router.set(ALL_OLD)
    timeline.append({"t": time.time(), "event": "insync", "step": tag, **back,
                     "insync_s": round(spent, 3), "settle_s": router.settle_s})
    return spent


def run_step(router: Router, spec: StepSpec, probe: Probe, timeline: JsonLines, *, baseline_p95_ms: float | None,
             extra: ExtraChecks | None = None, log: Callable[[str], None] = lambda _m: None) -> StepOutcome:
    target = router.effective(spec.split)
    timeline.append({"t": time.time(), "event": "weights", "step": spec.tag, **target.to_dict()})
    insync_s = router.set(spec.split)
    synced = time.time()
    timeline.append({"t": synced, "event": "insync", "step": spec.tag, **target.to_dict(),
                     "insync_s": round(insync_s, 3), "settle_s": router.settle_s})
    log(f"{router.describe()}: {target.label()} in sync after {insync_s:.1f}s; "
        f"waiting {router.settle_s:g}s (TTL), then soaking {spec.soak_s:g}s")
    end = synced + router.settle_s + spec.soak_s
    soak_from = synced + router.settle_s
    interval = max(0.2, spec.gate_interval_s)
    outcome = StepOutcome(insync_s=insync_s, gates_evaluated=0, soak_window={})
    window_start = synced
    while True:
        now = time.time()
        next_eval = min(window_start + interval, end)
        if next_eval > now:
            time.sleep(next_eval - now)
        now = time.time()
        probe.flush()
        window = stats(probe.samples(since=window_start, until=now))
        http_fail, alarm = _extra(extra)
        # Errors over the last interval (react fast); latency over the step so far (p95 needs samples).
        result = evaluate(window, spec.gates, baseline_p95_ms, http_check=http_fail, alarm_state=alarm,
                          latency_window=stats(probe.samples(since=synced, until=now)))
        outcome.gates_evaluated += 1
        outcome.results.append(result)
        timeline.append({"t": now, "event": "gate", "step": spec.tag, "ok": result.ok, "reasons": result.reasons,
                         "inconclusive": result.inconclusive, **result.window})
        if not result.ok:
            reason = "; ".join(result.reasons)
            log(f"gate failed at {target.label()}: {reason}; sending all traffic back to the old cluster")
            spent = rollback_to_old(router, timeline, spec.tag, reason)
            # Keep probing for one TTL and one more interval: the timeline (and the report) then shows whether
            # clients are back on the old cluster and answered well once every cache has expired.
            after = time.time()
            time.sleep(router.settle_s + interval)
            probe.flush()
            recovered = stats(probe.samples(since=after + router.settle_s))
            timeline.append({"t": time.time(), "event": "recovered", "step": spec.tag, **recovered.to_dict()})
            raise GateFailed(f"traffic gate failed at step {spec.tag} ({target.label()}): {reason}",
                             where=router.describe(),
                             hint=f"all traffic is back on the old cluster (in sync after {spent:.1f}s, clients "
                                  f"follow within {router.settle_s:g}s); fix the new cluster, then run again")
        window_start = now
        if now >= end:
            break
    probe.flush()
    outcome.soak_window = stats(probe.samples(since=soak_from, until=end)).to_dict()
    return outcome


def _extra(extra: ExtraChecks | None) -> tuple[str | None, str | None]:
    if extra is None:
        return None, None
    try:
        return extra()
    except MigrateError as e:
        # An alarm or check that cannot be read is not a pass: fail the gate, say why.
        return f"could not be evaluated: {e.what}", None
