"""The write probe's life in a run: started by the first stateful step, stopped and verified by the report.

One probe per environment and process. A resumed run (a new process) starts a new one: the samples file
keeps every attempt's acknowledged writes, and the time no probe ran is a gap in it, shown as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.plan.model import Step
from migrate.steps.base import Context
from migrate.steps.traffic import entry_url
from migrate.steps.validate import new_url
from migrate.traffic.files import JsonLines, read_json, write_json
from migrate.traffic.writes import WriteProbe, acknowledged, verify

_PROBES: dict[tuple[Path, str], WriteProbe] = {}
# The probe runs from the warm-up snapshot (before any data moves) until the report reads the keys back.
FIRST = "snapshot-volumes"
LAST = "write-report"
MAX_HOURS = 48


def samples_path(ctx: Context) -> Path:
    return ctx.workdir / "volumes" / "writes.jsonl"


def verdict_path(ctx: Context) -> Path:
    return ctx.workdir / "volumes" / "writes.json"


def ensure(ctx: Context) -> WriteProbe | None:
    """Start the environment's write probe unless it runs (or none is configured)."""
    cfg = ctx.env.replay.volumes.write_probe
    if cfg is None:
        return None
    probe = _PROBES.get((ctx.workdir, ctx.run_id))
    if probe is not None and probe.running:
        return probe
    base = entry_url(ctx) if ctx.env.traffic is not None else new_url(ctx)
    url = base.rstrip("/") + cfg.path.rstrip("/")
    seconds = MAX_HOURS * 3600.0
    probe = WriteProbe(url, cfg.prefix, sink=samples_path(ctx), rate=cfg.rate, duration=seconds,
                       max_requests=int(cfg.rate * seconds), timeout=cfg.timeout,
                       backend_header=ctx.env.traffic.backend_header if ctx.env.traffic else None,
                       tag=f"writes:{ctx.run_id}")
    probe.start()
    _PROBES[(ctx.workdir, ctx.run_id)] = probe
    ctx.log(f"write probe: PUT {url}/<key> at {cfg.rate:g}/s until the report reads every acknowledged key back")
    return probe


def stop(ctx: Context) -> None:
    probe = _PROBES.pop((ctx.workdir, ctx.run_id), None)
    if probe is not None:
        probe.stop()


def before_step(step: Step, ctx: Context) -> None:
    """Called by the executor before each step it runs: (re)start the probe inside its window, so that a
    resumed run writes again from the step it resumes at."""
    ids = [s.id for s in ctx.plan.steps] if ctx.plan else []
    first = next((s.id for s in ctx.plan.steps if s.kind == FIRST), None) if ctx.plan else None
    if first is not None and step.kind != LAST and step.id in ids and ids.index(step.id) >= ids.index(first):
        ensure(ctx)


def run_samples(ctx: Context) -> list[dict[str, Any]]:
    tag = f"writes:{ctx.run_id}"
    return [s for s in JsonLines(samples_path(ctx)).read() if s.get("tag") == tag]


def finish(ctx: Context) -> dict[str, Any] | None:
    """Stop the probe and read every acknowledged write back from the new cluster; the verdict is kept."""
    cfg = ctx.env.replay.volumes.write_probe
    if cfg is None:
        return None
    stop(ctx)
    samples = run_samples(ctx)
    keys = acknowledged(samples)
    url = new_url(ctx).rstrip("/") + cfg.path.rstrip("/")
    result = verify(url, keys, timeout=max(cfg.timeout, 5.0))
    out = {"writes": len(samples), "failed": sum(1 for s in samples if not 200 <= int(s["status"]) < 300),
           **result.to_dict(), "read_from": url}
    write_json(verdict_path(ctx), out)
    return out


def last_verdict(ctx: Context) -> dict[str, Any] | None:
    doc = read_json(verdict_path(ctx))
    return doc if isinstance(doc, dict) else None
