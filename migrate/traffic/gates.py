"""Gate evaluation, pure: a window of probe samples (plus optional checks) in, a verdict with reasons out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from migrate.traffic.probe import Sample


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def fmt_ms(v: float | None) -> str:
    """A latency for people: one decimal, or "-" when no request succeeded."""
    return "-" if v is None else f"{float(v):.1f}"


@dataclass(frozen=True)
class WindowStats:
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    by_backend: dict[str, int]

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": self.failures, "error_rate": round(self.error_rate, 4),
                "p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "by_backend": self.by_backend}


def stats(samples: Sequence[Sample]) -> WindowStats:
    ok = [s.latency_ms for s in samples if not s.failed]
    by: dict[str, int] = {}
    for s in samples:
        if s.backend:
            by[s.backend] = by.get(s.backend, 0) + 1
    return WindowStats(len(samples), sum(1 for s in samples if s.failed), percentile(ok, 50), percentile(ok, 95), by)


@dataclass(frozen=True)
class GateConfig:
    error_rate: float
    latency_ratio: float
    min_requests: int
    latency_floor_ms: float = 0.0
    # A p95 needs more samples than an error rate: over 40 requests it is the second-worst one, and one slow
    # request on a busy machine would fail the gate.
    latency_min_requests: int = 0


@dataclass(frozen=True)
class GateResult:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    window: dict[str, Any] = field(default_factory=dict)
    inconclusive: bool = False  # too few requests to judge the probe gates


def evaluate(window: WindowStats, cfg: GateConfig, baseline_p95_ms: float | None, *,
             http_check: str | None = None, alarm_state: str | None = None,
             latency_window: WindowStats | None = None) -> GateResult:
    """Fail on: error rate above the threshold, p95 above baseline x ratio, a failed HTTP check, an ALARM.

    The probe gates need ``min_requests`` in the window; with fewer the window is inconclusive (not a
    failure: a quiet minute is no evidence of a broken cluster). Latency below ``latency_floor_ms`` never
    fails: a 1 ms baseline doubling to 2 ms is jitter, not a regression anyone sees. The latency gate may use a
    longer ``latency_window`` (the step so far): a p95 over one short interval is its second-worst sample.
    """
    reasons: list[str] = []
    enough = window.requests >= max(1, cfg.min_requests)
    lat = latency_window or window
    if enough and window.error_rate > cfg.error_rate:
        reasons.append(f"error rate {window.error_rate:.1%} ({window.failures}/{window.requests}) is above "
                       f"{cfg.error_rate:.1%}")
    if lat.requests >= max(1, cfg.min_requests, cfg.latency_min_requests) and baseline_p95_ms \
            and lat.p95_ms is not None:
        limit = max(baseline_p95_ms * cfg.latency_ratio, cfg.latency_floor_ms)
        if lat.p95_ms > limit:
            reasons.append(f"p95 latency {lat.p95_ms:.1f} ms is above {limit:.1f} ms "
                           f"(baseline {baseline_p95_ms:.1f} ms x {cfg.latency_ratio:g})")
    if http_check:
        reasons.append(f"HTTP check failed: {http_check}")
    if alarm_state == "ALARM":
        reasons.append("CloudWatch alarm is in state ALARM")
    return GateResult(ok=not reasons, reasons=reasons, window=window.to_dict(), inconclusive=not enough)
