"""Runs every configured check against the new cluster and returns their results (the step persists them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.config import DiffCheck, Validation
from migrate.validate.diff import Triple, compare, fields_of
from migrate.validate.health import health, parity_from_clusters, parity_from_replay
from migrate.validate.http import Http, join
from migrate.validate.latency import run_latency
from migrate.validate.result import CheckResult
from migrate.validate.smoke import run_smoke
from migrate.validate.suites import run_suite


@dataclass(frozen=True)
class Targets:
    new_url: str  # the temporary gateway (or the configured alternative) in front of the new cluster
    old_url: str  # the production entry point, still 100 % on the old cluster before the cutover
    old_headers: dict[str, str] = field(default_factory=dict)
    kubeconfig: str | None = None
    new_context: str | None = None


def collect_triples(cfg: DiffCheck, targets: Targets, http: Http) -> list[Triple]:
    triples = []
    for path in cfg.paths:
        for _ in range(cfg.requests):
            c = http.fetch(join(targets.new_url, path))
            p = http.fetch(join(targets.old_url, path), headers=targets.old_headers)
            s = http.fetch(join(targets.old_url, path), headers=targets.old_headers)
            triples.append(Triple(path, fields_of(c.status, c.body), fields_of(p.status, p.body),
                                  fields_of(s.status, s.body)))
    return triples


def run_diff(cfg: DiffCheck, targets: Targets, http: Http) -> CheckResult:
    report = compare(collect_triples(cfg, targets, http), cfg.ignore)
    ok = report.worst() <= cfg.max_diff_rate
    shown = ", ".join(f"{f} ({r:.0%})" for f, r in list(report.differences.items())[:8])
    detail = (f"{len(report.differences)} field(s) differ: {shown}" if report.differences else
              "no difference") + f"; {len(report.noise)} noisy field(s) ignored"
    return CheckResult(name="diff: new vs old", kind="diff", ok=ok, detail=detail, data=report.to_dict())


def run_validation(cfg: Validation, targets: Targets, *, root: Path, out_dir: Path, latency_floor_ms: float,
                   kube_old: Any = None, kube_new: Any = None, replay_outputs: dict[str, Any] | None = None,
                   log: Callable[[str], None] = lambda _m: None) -> list[CheckResult]:
    results: list[CheckResult] = []

    def add(r: CheckResult) -> None:
        results.append(r)
        log(f"{'ok  ' if r.ok else 'FAIL'} {r.name}: {r.detail}")

    if cfg.health and kube_new is not None:
        add(health(kube_new, "new cluster"))
        from_replay = parity_from_replay(replay_outputs or {})
        if from_replay is not None:
            add(from_replay)
        elif kube_old is not None:
            add(parity_from_clusters(kube_old, kube_new))
    with Http(timeout=cfg.request_timeout) as http:
        for check in cfg.smoke:
            add(run_smoke(check, targets.new_url, http))
        if cfg.latency is not None:
            add(run_latency(cfg.latency, targets.old_url, targets.new_url, http, old_headers=targets.old_headers,
                            floor_ms=latency_floor_ms))
        if cfg.diff is not None:
            add(run_diff(cfg.diff, targets, http))
    env = {"MIGRATE_TARGET_URL": targets.new_url, "MIGRATE_OLD_URL": targets.old_url,
           **({"KUBECONFIG": targets.kubeconfig} if targets.kubeconfig else {}),
           **({"MIGRATE_KUBE_CONTEXT": targets.new_context} if targets.new_context else {})}
    for suite in cfg.suites:
        add(run_suite(suite, cwd=root, out_dir=out_dir, env=env))
    return results
