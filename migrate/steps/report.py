"""write-report: a Markdown and an HTML account of the run, next to the plans.

They hold the verdict, the step timeline from the journal, the temporary gateway's URL, the validation
results, and the traffic timeline: weights over time with the probe's error rate and latency, as a chart
(matplotlib, Agg backend: no display needed). The traffic data comes from the files the traffic steps keep
under ``<workdir>/traffic/``, so a resumed run's report still covers the whole cutover.
"""

from __future__ import annotations

import base64
import html
import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from migrate.errors import StepFailed
from migrate.plan.model import Step
from migrate.steps.base import Context
from migrate.steps.writes import finish
from migrate.traffic.files import JsonLines, read_json
from migrate.traffic.gates import fmt_ms, percentile


def _parse(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(ts: str) -> float:
    return _parse(ts).replace(tzinfo=UTC).timestamp()


def _decommission(ctx: Context) -> bool:
    return ctx.plan is not None and ctx.plan.operation == "decommission"


def report_path(ctx: Context) -> Path:
    prefix = "decommission-" if _decommission(ctx) else ""
    return ctx.loaded.resolve(ctx.loaded.config.plans_dir) / f"{prefix}{ctx.env_name}-{ctx.run_id}.report.md"


@dataclass
class RunData:
    records: list[dict[str, Any]]
    start: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    validation: dict[str, Any] | None = None
    gateway_url: str | None = None
    writes: list[dict[str, Any]] = field(default_factory=list)  # the write probe's samples
    cut: dict[str, Any] = field(default_factory=dict)  # volumes/cut.json: workload ref -> its cut record
    write_verdict: dict[str, Any] | None = None


def collect(ctx: Context) -> RunData:
    records = [r for r in ctx.records() if r.get("run") == ctx.run_id]
    start = min((_epoch(r["ts"]) for r in records if r.get("ts")), default=0.0)
    tdir = ctx.workdir / "traffic"
    # The files span runs: keep what belongs to this one (from its first journal record on).
    samples = [s for s in JsonLines(tdir / "samples.jsonl").read() if float(s.get("t", 0)) >= start]
    timeline = [e for e in JsonLines(tdir / "timeline.jsonl").read() if float(e.get("t", 0)) >= start]
    validation = read_json(ctx.workdir / "validate" / "results.json")
    done = [(sid, out) for sid, out in ctx.outputs.items()] + [
        (str(r.get("step", "")), r.get("outputs") or {}) for r in records if r.get("type") == "step.done"]
    gw: dict[str, Any] = next((out for sid, out in done if sid.endswith("-open-gateway") and out.get("url")), {})
    cut = read_json(ctx.workdir / "volumes" / "cut.json")
    verdict_ = read_json(ctx.workdir / "volumes" / "writes.json")
    tag = f"writes:{ctx.run_id}"
    writes = [s for s in JsonLines(ctx.workdir / "volumes" / "writes.jsonl").read() if s.get("tag") == tag]
    return RunData(records, start, samples, timeline, validation if isinstance(validation, dict) else None,
                   gw.get("url"), writes, (cut or {}).get("workloads") or {} if isinstance(cut, dict) else {},
                   verdict_ if isinstance(verdict_, dict) else None)


def verdict(data: RunData, failure: str | None) -> str:
    if failure:
        return f"FAILED: {failure}"
    lost = (data.write_verdict or {}).get("lost")
    if lost:
        return f"DATA LOSS: {lost} acknowledged write(s) are not on the new cluster (see Stateful workloads)"
    failed = [r for r in data.records if r.get("type") == "step.failed"]
    if failed:
        return f"FAILED at {failed[-1]['step']}: {failed[-1].get('error', '')}"
    rollbacks = [e for e in data.timeline if e.get("event") == "rollback"]
    if rollbacks:
        return f"ROLLED BACK: {rollbacks[-1].get('reason')}"
    weights = [e for e in data.timeline if e.get("event") == "insync"]
    if weights and weights[-1].get("old") == 0:
        return "SUCCESS: all traffic is on the new cluster"
    if data.validation is not None and not data.validation.get("ok"):
        return "FAILED: validation"
    return "IN PROGRESS: the cutover has not reached 100 % on the new cluster"


def buckets(samples: list[dict[str, Any]], start: float, width: float = 1.0) -> list[dict[str, Any]]:
    """Per time bucket: requests, error rate, p50/p95 latency, share answered by each backend."""
    out: dict[int, list[dict[str, Any]]] = {}
    for s in samples:
        out.setdefault(int((float(s["t"]) - start) // width), []).append(s)
    rows = []
    for k in sorted(out):
        group = out[k]
        ok = [float(s["latency_ms"]) for s in group if 200 <= int(s["status"]) < 400]
        backends: dict[str, int] = {}
        for s in group:
            if s.get("backend"):
                backends[s["backend"]] = backends.get(s["backend"], 0) + 1
        rows.append({"t": k * width, "requests": len(group), "error_rate": 1 - len(ok) / len(group),
                     "p50": percentile(ok, 50), "p95": percentile(ok, 95), "backends": backends})
    return rows


def chart(data: RunData, path: Path) -> Path | None:
    """Weights, error rate and latency over time, one PNG. None when there is no traffic data."""
    if not data.samples and not data.timeline:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min([float(s["t"]) for s in data.samples] + [float(e["t"]) for e in data.timeline])
    rows = buckets(data.samples, t0)
    fig, (ax_w, ax_e, ax_l) = plt.subplots(3, 1, sharex=True, figsize=(9, 7))
    xs, ys = [0.0], [0.0]
    for e in data.timeline:
        if e.get("event") in ("weights", "rollback", "insync") and "new" in e:
            total = float(e["old"]) + float(e["new"])
            xs.append(float(e["t"]) - t0)
            ys.append(100 * float(e["new"]) / total if total else 50.0)
    end = max([r["t"] + 1 for r in rows] + xs)
    ax_w.step([*xs, end], [*ys, ys[-1]], where="post", label="weight to new (%)")
    for e in data.timeline:
        if e.get("event") == "rollback":
            for ax in (ax_w, ax_e, ax_l):
                ax.axvline(float(e["t"]) - t0, color="red", linestyle="--")
    ax_w.set_ylabel("new %")
    ax_w.set_ylim(-5, 105)
    ax_w.legend(loc="upper left")
    ax_e.plot([r["t"] for r in rows], [100 * r["error_rate"] for r in rows], color="red", label="probe errors (%)")
    ax_e.set_ylabel("errors %")
    ax_e.legend(loc="upper left")
    ax_l.plot([r["t"] for r in rows], [r["p50"] for r in rows], label="p50 ms")
    ax_l.plot([r["t"] for r in rows], [r["p95"] for r in rows], label="p95 ms")
    ax_l.set_ylabel("latency ms")
    ax_l.set_xlabel("seconds since the first shift event")
    ax_l.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def writes_chart(data: RunData, path: Path) -> Path | None:
    """The write probe's errors and latency over time, each workload's freeze window shaded. None without
    writes. Time with no sample (no probe ran: a killed run before its resume) is left as a gap."""
    if not data.writes:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min(float(s["t"]) for s in data.writes)
    rows = buckets(data.writes, t0)
    fig, (ax_e, ax_l) = plt.subplots(2, 1, sharex=True, figsize=(9, 5))
    xs, errs, p50, p95 = _gapped(rows)
    ax_e.plot(xs, errs, color="red", label="failed writes (%)")
    ax_e.set_ylabel("errors %")
    ax_e.set_ylim(-5, 105)
    ax_l.plot(xs, p50, label="write p50 ms")
    ax_l.plot(xs, p95, label="write p95 ms")
    ax_l.set_ylabel("latency ms")
    ax_l.set_xlabel("seconds since the write probe started")
    for ref, e in data.cut.items():
        if e.get("t_freeze") and e.get("t_end"):
            for ax in (ax_e, ax_l):
                ax.axvspan(float(e["t_freeze"]) - t0, float(e["t_end"]) - t0, color="orange", alpha=0.3,
                           label=f"freeze {ref.split('/', 1)[-1]}" if ax is ax_e else None)
    ax_e.legend(loc="upper right")
    ax_l.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _gapped(rows: list[dict[str, Any]]) -> tuple[list[float], list[float | None], list[float | None],
                                                  list[float | None]]:
    """Series for a chart, with None (a break in the line) where a second had no sample."""
    xs: list[float] = []
    errs: list[float | None] = []
    p50: list[float | None] = []
    p95: list[float | None] = []
    last = None
    for r in rows:
        if last is not None and r["t"] - last > 1.5:
            xs.append(last + 1)
            errs.append(None)
            p50.append(None)
            p95.append(None)
        xs.append(r["t"])
        errs.append(100 * r["error_rate"])
        p50.append(r["p50"])
        p95.append(r["p95"])
        last = r["t"]
    return xs, errs, p50, p95


def _stateful_section(data: RunData) -> list[tuple[str, list[str], list[tuple[str, ...]]]]:
    if not data.cut and not data.writes:
        return []
    lines = []
    v = data.write_verdict
    if v is not None:
        lines.append(f"Writes: {v['acknowledged']} acknowledged, {v['lost']} lost"
                     + (f", {v['unreadable']} could not be read back" if v.get("unreadable") else "")
                     + f" (read back from {v.get('read_from')})")
        if v["lost"]:
            lines.append("LOST KEYS: " + ", ".join(v.get("lost_keys") or []))
    elif data.writes:
        lines.append(f"Writes: {len(data.writes)} sent; not read back yet")
    if data.writes:
        from migrate.traffic.writes import windows

        spans = windows(data.writes)
        worst = max((b - a for a, b in spans), default=0.0)
        lines.append(f"Writes failed as a client saw them in {len(spans)} span(s), the longest {worst:.1f} s")
        gaps = _probe_gaps(data.writes)
        if gaps:
            lines.append("No write probe ran for " + ", ".join(f"{b - a:.0f} s" for a, b in gaps)
                         + " (a killed run before its resume): nothing was observed then")
    rows: list[tuple[str, ...]] = [("workload", "claims", "phase", "freeze window", "snapshots", "restored volumes")]
    for ref, e in sorted(data.cut.items()):
        claims = e.get("claims") or []
        rows.append((ref, ", ".join(str(c.get("claim")) for c in claims), str(e.get("phase")),
                     f"{float(e['window_s']):.1f} s" if e.get("window_s") is not None else "-",
                     ", ".join(str(c["snapshot_id"]) for c in claims if c.get("snapshot_id")) or "-",
                     ", ".join(f"{c['volume_id']} ({c.get('target_zone')})" for c in claims if c.get("volume_id"))
                     or "-"))
    return [("Stateful workloads", lines, rows if len(rows) > 1 else [])]


def _probe_gaps(samples: list[dict[str, Any]], at_least: float = 5.0) -> list[tuple[float, float]]:
    ts = sorted(float(s["t"]) for s in samples)
    return [(a, b) for a, b in itertools.pairwise(ts) if b - a >= at_least]


def _step_rows(data: RunData, failure: str | None) -> list[tuple[str, str, str, str]]:
    started: dict[str, str] = {}
    rows = []
    for r in data.records:
        if r["type"] == "step.started":
            started[r["step"]] = r["ts"]
        elif r["type"] == "step.done" and (r.get("outputs") or {}).get("found_done"):
            rows.append((r["step"], "already in place", "-", r["ts"]))
        elif r["type"] in ("step.done", "step.failed") and r["step"] in started:
            t0 = started.pop(r["step"])
            secs = (_parse(r["ts"]) - _parse(t0)).total_seconds()
            rows.append((r["step"], r["type"].split(".")[1], f"{secs:.2f} s", t0))
    # The report is written before the executor journals the failure of the step that stopped the run.
    for sid, ts in started.items():
        if not sid.endswith("-write-report"):  # this very step: it has no result yet
            rows.append((sid, "failed" if failure else "in progress", "-", ts))
    return rows


def _traffic_rows(data: RunData) -> list[tuple[str, str, str, str]]:
    t0 = data.timeline[0]["t"] if data.timeline else 0.0
    rows = []
    for e in data.timeline:
        t = f"+{float(e['t']) - t0:.1f} s"
        if e["event"] == "gate":
            what = "pass" if e.get("ok") else "FAIL: " + "; ".join(e.get("reasons") or [])
            rows.append((t, e["step"], "gate", f"{what} ({e.get('requests')} req, "
                                                f"{100 * float(e.get('error_rate') or 0):.1f}% errors, "
                                                f"p95 {fmt_ms(e.get('p95_ms'))} ms)"))
        elif e["event"] in ("weights", "insync"):
            extra = (f", in sync after {e.get('insync_s')} s, TTL {e.get('settle_s')} s"
                     if e["event"] == "insync" else "")
            rows.append((t, e["step"], e["event"], f"old/new {e.get('old')}/{e.get('new')}{extra}"))
        elif e["event"] == "rollback":
            rows.append((t, e["step"], "ROLLBACK", str(e.get("reason"))))
    return rows


def _probe_summary(data: RunData) -> dict[str, Any]:
    ok = [float(s["latency_ms"]) for s in data.samples if 200 <= int(s["status"]) < 400]
    by: dict[str, int] = {}
    for s in data.samples:
        if s.get("backend"):
            by[s["backend"]] = by.get(s["backend"], 0) + 1
    return {"requests": len(data.samples), "failures": len(data.samples) - len(ok),
            "p50_ms": percentile(ok, 50), "p95_ms": percentile(ok, 95), "by_backend": by}


def _replay_summary(ctx: Context) -> dict[str, Any] | None:
    """The replay's review (counts per skip reason) from its report, if the replay ran in this run."""
    out = next((o for sid, o in ctx.outputs.items() if sid.endswith("-replay-workloads") and o.get("report")), None)
    report = read_json(Path(out["report"])) if out else None
    review = report.get("review") if isinstance(report, dict) else None
    return review if isinstance(review, dict) else None


def _outputs_of(data: RunData, ctx: Context, suffix: str) -> dict[str, Any] | None:
    done = {**{str(r.get("step", "")): r.get("outputs") or {} for r in data.records if r.get("type") == "step.done"},
            **ctx.outputs}
    return next((o for sid, o in done.items() if sid.endswith(suffix)), None)


def _decommission_sections(ctx: Context, data: RunData,
                           failure: str | None) -> list[tuple[str, list[str], list[tuple[str, ...]]]]:
    """A decommission's report: the steps, and what became of each old volume's data."""
    old = ctx.env.clusters.old.name
    failed = [r for r in data.records if r.get("type") == "step.failed"]
    destroyed = _outputs_of(data, ctx, "-destroy-old-cluster") is not None
    verdict_ = (f"FAILED: {failure}" if failure else
                f"FAILED at {failed[-1]['step']}: {failed[-1].get('error', '')}" if failed else
                f"SUCCESS: cluster {old} is decommissioned" if destroyed else "IN PROGRESS")
    facts = [f"Environment: {ctx.env_name}", f"Run: {ctx.run_id}", f"Verdict: {verdict_}"]
    facts += [f"Approved plan {a.get('plan_digest')} by {a.get('by')} at {a['ts']}"
              for a in data.records if a["type"] == "approval"]
    out: list[tuple[str, list[str], list[tuple[str, ...]]]] = [
        ("Summary", facts, []), ("Steps", [], [("step", "result", "duration", "started"), *_step_rows(data, failure)])]
    protected = _outputs_of(data, ctx, "-protect-volumes") or {}
    rows = list(protected.get("volumes") or [])
    if rows:
        lost = [r["claim"] for r in rows if r.get("at_risk")]
        lines = [f"{sum(1 for r in rows if r.get('snapshot_id'))} final snapshot(s), tagged "
                 f"migrate-phase=decommission and migrate-run={ctx.run_id}, kept until an explicit cleanup",
                 f"Data deleted with {old}, accepted with --accept-data-loss: {', '.join(lost)}" if lost else
                 f"No data the new cluster lacks was deleted with {old}"]
        out.append(("Old cluster's volumes", lines, [
            ("claim", "volume", "reclaim", "strategy", "final snapshot", "data now on"),
            *[(r["claim"], str(r.get("handle") or r.get("pv")), str(r.get("reclaim") or "-"),
               str(r.get("strategy") or "none"), str(r.get("snapshot_id") or "-"),
               str(r.get("carried_as") or ("the snapshot only" if r.get("snapshot_id") else "nowhere")))
              for r in rows]]))
    return out


def _sections(ctx: Context, data: RunData, failure: str | None) -> list[tuple[str, list[str], list[tuple[str, ...]]]]:
    """(title, lines, table rows with a header first) for both renderings."""
    if _decommission(ctx):
        return _decommission_sections(ctx, data, failure)
    probe = _probe_summary(data)
    facts = [f"Environment: {ctx.env_name}", f"Run: {ctx.run_id}", f"Verdict: {verdict(data, failure)}"]
    if data.gateway_url:
        facts.append(f"Temporary gateway: {data.gateway_url}")
    for a in (r for r in data.records if r["type"] == "approval"):
        facts.append(f"Approved plan {a.get('plan_digest')} by {a.get('by')} at {a['ts']}")
    by = f", by backend {probe['by_backend']}" if probe["by_backend"] else ""
    facts.append(f"Probe: {probe['requests']} requests, {probe['failures']} failed, "
                 f"p50 {fmt_ms(probe['p50_ms'])} ms, p95 {fmt_ms(probe['p95_ms'])} ms{by}")
    out: list[tuple[str, list[str], list[tuple[str, ...]]]] = [("Summary", facts, [])]
    out.append(("Steps", [], [("step", "result", "duration", "started"), *_step_rows(data, failure)]))
    replay = _replay_summary(ctx)
    if replay:
        out.append(("Replay", [f"{replay.get('counts', {}).get('planned', 0)} objects replayed, "
                               f"{replay.get('counts', {}).get('skipped', 0)} left behind"],
                    [("left behind because", "objects"),
                     *[(r, str(n)) for r, n in (replay.get("skipped_by_reason") or {}).items()]]))
    v = data.validation
    if v is not None:
        out.append(("Validation", [f"{'passed' if v.get('ok') else 'FAILED'}: {v.get('checks')} checks"],
                    [("check", "result", "detail"),
                     *[(r["name"], "ok" if r["ok"] else "FAIL", r["detail"]) for r in v.get("results", [])]]))
    out += _stateful_section(data)
    if data.timeline:
        out.append(("Traffic timeline", [], [("time", "step", "event", "detail"), *_traffic_rows(data)]))
    return out


def _title(ctx: Context) -> str:
    return "Decommission report" if _decommission(ctx) else "Migration report"


def render_report(ctx: Context, failure: str | None = None, chart_name: str | None = None,
                  writes_name: str | None = None) -> str:
    data = collect(ctx)
    lines = [f"# {_title(ctx)}: {ctx.env_name}", ""]
    for title, text, table in _sections(ctx, data, failure):
        lines += [f"## {title}", ""]
        lines += [f"- {t}" for t in text]
        if text:
            lines.append("")
        if table:
            lines.append("| " + " | ".join(table[0]) + " |")
            lines.append("|" + "---|" * len(table[0]))
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table[1:]]
            lines.append("")
        if title == "Summary" and chart_name:
            lines += [f"![weights, errors and latency over time]({chart_name})", ""]
        if title == "Stateful workloads" and writes_name:
            lines += [f"![write errors and latency over time, freeze windows shaded]({writes_name})", ""]
    return "\n".join(lines)


def render_html(ctx: Context, failure: str | None = None, png: Path | None = None,
                writes_png: Path | None = None) -> str:
    data = collect(ctx)
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>{_title(ctx)}: {e(ctx.env_name)}</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
             ".FAIL{color:#b00;font-weight:bold}</style></head><body>",
             f"<h1>{_title(ctx)}: {e(ctx.env_name)}</h1>"]
    for title, text, table in _sections(ctx, data, failure):
        parts.append(f"<h2>{e(title)}</h2>")
        if text:
            parts.append("<ul>" + "".join(f"<li>{e(t)}</li>" for t in text) + "</ul>")
        if title == "Summary" and png is not None and png.exists():
            b64 = base64.b64encode(png.read_bytes()).decode()
            parts.append(f"<img alt='weights, errors and latency over time' src='data:image/png;base64,{b64}'>")
        if title == "Stateful workloads" and writes_png is not None and writes_png.exists():
            b64 = base64.b64encode(writes_png.read_bytes()).decode()
            parts.append(f"<img alt='write errors and latency over time' src='data:image/png;base64,{b64}'>")
        if table:
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in table[0]) + "</tr>")
            for row in table[1:]:
                parts.append("<tr>" + "".join(f"<td class='{e(c)}'>{e(c)}</td>" for c in row) + "</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _write(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    tmp.replace(path)  # atomic: a reader never sees half a report


def write_reports(ctx: Context, failure: str | None = None) -> dict[str, Any]:
    """Markdown, HTML and the chart (PNG), next to the plans. Safe to repeat: each write replaces the last."""
    md = report_path(ctx)
    html_path = md.with_suffix(".html")
    png = md.with_suffix(".png")
    if _decommission(ctx):
        try:
            md.parent.mkdir(parents=True, exist_ok=True)
            _write(md, render_report(ctx, failure))
            _write(html_path, render_html(ctx, failure))
        except OSError as e:
            raise StepFailed(f"cannot write the report: {e.strerror}", where=str(md),
                             hint="make the plans directory writable, then resume") from e
        protected = _outputs_of(collect(ctx), ctx, "-protect-volumes") or {}
        return {"path": str(md), "html": str(html_path), "final_snapshots": int(protected.get("snapshots") or 0)}
    try:
        md.parent.mkdir(parents=True, exist_ok=True)
        data = collect(ctx)
        drawn = chart(data, png)
        wpng = md.with_suffix(".writes.png")
        wdrawn = writes_chart(data, wpng)
        _write(md, render_report(ctx, failure, png.name if drawn else None, wpng.name if wdrawn else None))
        _write(html_path, render_html(ctx, failure, drawn, wdrawn))
    except OSError as e:
        raise StepFailed(f"cannot write the report: {e.strerror}", where=str(md),
                         hint="make the plans directory writable, then resume") from e
    probe = _probe_summary(collect(ctx))
    out: dict[str, Any] = {"path": str(md), "html": str(html_path),
                           "probe": {k: probe[k] for k in ("requests", "failures", "p50_ms", "p95_ms")}}
    if png.exists():
        out["chart"] = str(png)
    if data.write_verdict is not None:
        out["writes"] = {k: data.write_verdict[k] for k in ("acknowledged", "lost", "unreadable")}
    if data.cut:
        out["freeze_windows_s"] = {ref: e.get("window_s") for ref, e in sorted(data.cut.items())}
    return out


class WriteReportStep:
    kind: ClassVar[str] = "write-report"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        # A report written earlier in this run (e.g. at a failed gate) is outdated now: always rewrite it.
        return None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        if not _decommission(ctx):
            finish(ctx)  # stop the write probe and read its acknowledged keys back before the report is written
        return write_reports(ctx)

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        # The report is a record of what happened, including the rollback: keep it.
        return None
