"""Latency, old against new: p50 and p95 over N requests each, against a threshold ratio."""

from __future__ import annotations

from migrate.config import LatencyCheck
from migrate.traffic.gates import percentile
from migrate.validate.http import Http, join
from migrate.validate.result import CheckResult


def compare(old_ms: list[float], new_ms: list[float], max_ratio: float, floor_ms: float = 0.0) -> dict[str, object]:
    """p50/p95 of each side and the p95 ratio; ``ok`` unless new p95 > old p95 x ratio (and above the floor)."""
    o50, o95, n50, n95 = (percentile(old_ms, 50), percentile(old_ms, 95), percentile(new_ms, 50),
                          percentile(new_ms, 95))
    ratio = (n95 / o95) if n95 is not None and o95 else None
    ok = n95 is not None and o95 is not None and (n95 <= max(o95 * max_ratio, floor_ms))
    return {"old_p50_ms": o50, "old_p95_ms": o95, "new_p50_ms": n50, "new_p95_ms": n95,
            "p95_ratio": round(ratio, 3) if ratio is not None else None, "max_ratio": max_ratio, "ok": ok}


def run_latency(cfg: LatencyCheck, old_url: str, new_url: str, http: Http, *, old_headers: dict[str, str],
                floor_ms: float) -> CheckResult:
    old_ms: list[float] = []
    new_ms: list[float] = []
    failures = 0
    # Interleaved, so a hiccup of the machine running the checks hits both sides alike.
    for _ in range(cfg.requests):
        for url, headers, sink in ((old_url, old_headers, old_ms), (new_url, {}, new_ms)):
            r = http.fetch(join(url, cfg.path), headers=headers)
            if 200 <= r.status < 400:
                sink.append(r.latency_ms)
            else:
                failures += 1
    result = compare(old_ms, new_ms, cfg.max_ratio, floor_ms)
    ok = bool(result["ok"]) and failures == 0
    detail = (f"p95 new {result['new_p95_ms'] or 0:.1f} ms vs old {result['old_p95_ms'] or 0:.1f} ms "
              f"(ratio {result['p95_ratio']}, max {cfg.max_ratio:g})" + (f"; {failures} failed requests"
                                                                       if failures else ""))
    return CheckResult(name="latency: old vs new", kind="latency", ok=ok, detail=detail,
                       data={**result, "failures": failures, "requests": cfg.requests})
