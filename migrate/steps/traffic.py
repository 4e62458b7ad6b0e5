"""open-gateway, remove-gateway and shift-traffic: the temporary gateway and the weighted cutover.

Files under ``<workdir>/traffic/`` (mode 0600) outlive the process, so a resumed run keeps them:
``targets.json`` (old and new load balancers, found once, before anything is switched), ``baseline.json``
(old-only latency before the first shift), ``samples.jsonl`` (every probe request), ``timeline.jsonl``
(weights, gate evaluations, rollbacks) and ``soaked.json`` (steps whose soak completed).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import boto3

from migrate.cloud.aws.apigw import ApiGateway, proxy_uri
from migrate.cloud.aws.cloudwatch import alarm_state
from migrate.cloud.aws.route53 import Route53
from migrate.cloud.aws.session import make_session
from migrate.config import Traffic
from migrate.errors import GateFailed, MigrateError, StepFailed
from migrate.kube.client import KubeClient
from migrate.plan.model import Step
from migrate.steps.base import Context
from migrate.traffic.cutover import StepSpec, rollback_to_old, run_step
from migrate.traffic.files import JsonLines, read_json, write_json
from migrate.traffic.gates import GateConfig, fmt_ms, stats
from migrate.traffic.ingress import list_services, match_new_ingress
from migrate.traffic.probe import Probe
from migrate.traffic.routers import GatewayRouter, Route53Router, Router, swap_host
from migrate.traffic.weights import ALL_OLD, Split, split_of
from migrate.validate.http import Http
from migrate.validate.smoke import check_response, headers_for

PROBE_MARGIN_S = 120.0  # the probe stops by itself this long after the step should have ended


# --- context helpers ----------------------------------------------------------


def traffic_dir(ctx: Context) -> Path:
    return ctx.workdir / "traffic"


def samples_file(ctx: Context) -> JsonLines:
    return JsonLines(traffic_dir(ctx) / "samples.jsonl")


def timeline_file(ctx: Context) -> JsonLines:
    return JsonLines(traffic_dir(ctx) / "timeline.jsonl")


def _traffic(ctx: Context) -> Traffic:
    if ctx.env.traffic is None:
        raise StepFailed("no traffic section for this environment", where=f"environments.{ctx.env_name}.traffic")
    return ctx.env.traffic


def aws_session(ctx: Context) -> tuple[boto3.Session, str | None]:
    if ctx.env.aws is not None:
        return make_session(ctx.env.aws.region, ctx.env.aws.profile), ctx.env.aws.endpoint_url
    if ctx.env.gateway.region:
        return make_session(ctx.env.gateway.region), None
    raise StepFailed("this environment has no AWS account for the gateway or Route 53",
                     where=f"environments.{ctx.env_name}.gateway.region",
                     hint="set gateway.region (an AWS region), or gateway.url for an alternative entry point")


def outputs_of(ctx: Context, kind: str) -> dict[str, Any]:
    """An earlier step's outputs by kind: from the plan, else by the step id's suffix (``NN-<kind>``)."""
    found = ctx.outputs_of_kind(kind)
    if found:
        return found
    return next((out for sid, out in ctx.outputs.items() if sid.endswith(f"-{kind}")), {})


def kubeconfig(ctx: Context) -> tuple[str, str, str]:
    """(path, old context, new context) from write-kubeconfig's outputs, or its file when it was skipped."""
    for out in [outputs_of(ctx, "write-kubeconfig"), *ctx.outputs.values()]:
        contexts = out.get("contexts") or {}
        if out.get("kubeconfig") and contexts.get("old") and contexts.get("new"):
            return str(out["kubeconfig"]), str(contexts["old"]), str(contexts["new"])
    path = ctx.workdir / "kubeconfig"
    if path.exists():
        return str(path), ctx.env.clusters.old.name, ctx.env.clusters.new.name
    raise StepFailed("no kubeconfig for the old and new clusters", where=f"environments.{ctx.env_name}",
                     hint="run the migration from the start (or resume it) so that write-kubeconfig runs first")


def kube_clients(ctx: Context) -> tuple[KubeClient, KubeClient]:
    path, old, new = kubeconfig(ctx)
    return KubeClient.from_kubeconfig(path, old), KubeClient.from_kubeconfig(path, new)


def gateway_name(ctx: Context) -> str:
    # Same default as the plan builder's open-gateway step.
    return ctx.env.gateway.name or f"migrate-{ctx.env_name}-{ctx.env.clusters.new.name}"


def resolve_targets(ctx: Context) -> dict[str, Any]:
    """Old and new load balancers (and, for the gateway router, integration URIs). Found once and kept:
    after a switch, the production API's integration no longer names the old load balancer."""
    path = traffic_dir(ctx) / "targets.json"
    known = read_json(path)
    if isinstance(known, dict) and known.get("new_host"):
        return known
    t = _traffic(ctx)
    session, endpoint = aws_session(ctx)
    out: dict[str, Any] = {}
    if t.router == "route53":
        assert t.record is not None
        r53 = Route53(session, endpoint)
        router = Route53Router(r53, r53.zone_id(t.record.zone), t.record.name, old_set_id=t.record.old_set_id,
                               new_set_id=t.record.new_set_id, ttl=t.record.ttl)
        out["old_host"] = router.old_target()
    else:
        assert t.api_id is not None
        old_uri = ApiGateway(session, endpoint).integration_uri(t.api_id)
        out["old_uri"] = old_uri
        out["old_host"] = urlsplit(old_uri).netloc
    old_kube, new_kube = kube_clients(ctx)
    with old_kube, new_kube:
        out["service"], out["new_host"] = match_new_ingress(list_services(old_kube), list_services(new_kube),
                                                            out["old_host"])
    if "old_uri" in out:
        out["new_uri"] = swap_host(out["old_uri"], out["old_host"], out["new_host"])
    write_json(path, out)
    return out


def make_router(ctx: Context, targets: dict[str, Any] | None = None) -> Router:
    t = _traffic(ctx)
    session, endpoint = aws_session(ctx)
    if t.router == "route53":
        assert t.record is not None
        r53 = Route53(session, endpoint)
        return Route53Router(r53, r53.zone_id(t.record.zone), t.record.name, old_set_id=t.record.old_set_id,
                             new_set_id=t.record.new_set_id, ttl=t.record.ttl,
                             new_target=(targets or {}).get("new_host"), insync_timeout=t.insync_timeout)
    assert t.api_id is not None
    targets = targets or resolve_targets(ctx)
    return GatewayRouter(ApiGateway(session, endpoint), t.api_id, old_uri=targets["old_uri"],
                         new_uri=targets["new_uri"])


def entry_url(ctx: Context) -> str:
    """Where users reach the service: the record's name, or the production API's endpoint."""
    t = _traffic(ctx)
    if t.router == "route53":
        assert t.record is not None
        return f"http://{t.record.name.rstrip('.')}"
    assert t.api_id is not None
    session, endpoint = aws_session(ctx)
    api = ApiGateway(session, endpoint).get(t.api_id)
    if api is None:
        raise StepFailed(f"the production API {t.api_id} does not exist", where=f"environments.{ctx.env_name}"
                         ".traffic.api_id")
    return api.endpoint


# --- open-gateway / remove-gateway ------------------------------------------


class OpenGatewayStep:
    kind: ClassVar[str] = "open-gateway"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        if ctx.env.gateway.url:
            return {"url": ctx.env.gateway.url, "alternative": True}
        session, endpoint = aws_session(ctx)
        gw = ApiGateway(session, endpoint)
        for api in gw.find(step.params.get("name") or gateway_name(ctx)):
            if gw.is_complete(api.api_id):
                targets = read_json(traffic_dir(ctx) / "targets.json") or {}
                return {"api_id": api.api_id, "name": api.name, "url": api.endpoint,
                        "integration_uri": gw.integration_uri(api.api_id), "new_ingress": targets.get("new_host")}
        return None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        if ctx.env.gateway.url:
            return {"url": ctx.env.gateway.url, "alternative": True}
        name = step.params.get("name") or gateway_name(ctx)
        targets = resolve_targets(ctx)
        session, endpoint = aws_session(ctx)
        gw = ApiGateway(session, endpoint)
        for stale in gw.find(name):
            # A killed earlier attempt left a half-built API (is_done said so): replace it.
            gw.delete(stale.api_id)
        uri = proxy_uri(targets["new_host"])
        tags = {"migrate:env": ctx.env_name, "migrate:cluster": ctx.env.clusters.new.name}
        api = gw.create_proxy_api(name, uri, tags)
        ctx.log(f"temporary gateway {api.endpoint} -> {uri}")
        return {"api_id": api.api_id, "name": name, "url": api.endpoint, "integration_uri": uri,
                "new_ingress": targets["new_host"], "service": targets["service"]}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        remove_gateway(ctx, step.params.get("name") or gateway_name(ctx), outputs.get("api_id"))


def remove_gateway(ctx: Context, name: str, api_id: str | None = None) -> list[str]:
    if ctx.env.gateway.url:
        return []
    session, endpoint = aws_session(ctx)
    gw = ApiGateway(session, endpoint)
    ids = {a.api_id for a in gw.find(name)} | ({api_id} if api_id else set())
    return sorted(i for i in ids if gw.delete(i))


class RemoveGatewayStep:
    kind: ClassVar[str] = "remove-gateway"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        if ctx.env.gateway.url:
            return {"deleted": [], "alternative": True}
        session, endpoint = aws_session(ctx)
        return None if ApiGateway(session, endpoint).find(gateway_name(ctx)) else {"deleted": []}

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        deleted = remove_gateway(ctx, gateway_name(ctx))
        ctx.log(f"temporary gateway removed: {', '.join(deleted) or 'none left'}")
        return {"deleted": deleted}

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        # "re-create the gateway": the same API, in front of the new cluster.
        gw_step = Step(id=step.id, kind="open-gateway", title=step.title, params={"name": gateway_name(ctx)},
                       effect="", undo="")
        if OpenGatewayStep().is_done(gw_step, ctx) is None:
            OpenGatewayStep().apply(gw_step, ctx)


# --- shift-traffic ------------------------------------------------------------


def _soaked_path(ctx: Context) -> Path:
    return traffic_dir(ctx) / "soaked.json"


def clear_soaked(ctx: Context) -> None:
    # Any return to the old cluster invalidates earlier soaks: the next attempt must soak every step again.
    write_json(_soaked_path(ctx), {})


def _gates(t: Traffic) -> GateConfig:
    th = t.thresholds
    return GateConfig(error_rate=th.error_rate, latency_ratio=th.latency_ratio, min_requests=th.min_requests,
                      latency_floor_ms=th.latency_floor_ms, latency_min_requests=th.latency_min_requests)


def _probe(ctx: Context, url: str, duration: float, tag: str) -> Probe:
    t = _traffic(ctx)
    return Probe(url.rstrip("/") + "/" + t.probe_path.lstrip("/"), rate=t.probe_rate, duration=duration,
                 max_requests=int(t.probe_rate * duration) + 1, timeout=t.probe_timeout,
                 backend_header=t.backend_header, sink=traffic_dir(ctx) / "samples.jsonl", tag=tag)


def measure_baseline(ctx: Context, router: Router, url: str) -> dict[str, Any] | None:
    """Old-only latency, measured once before the first shift, kept for every later step and resume."""
    path = traffic_dir(ctx) / "baseline.json"
    known = read_json(path)
    if isinstance(known, dict) and "p95_ms" in known:
        return known
    t = _traffic(ctx)
    if router.current() != router.effective(ALL_OLD) or t.baseline <= 0:
        ctx.log("no old-only latency baseline (traffic already moved): the latency gate is off for this run")
        return None
    with _probe(ctx, url, t.baseline + PROBE_MARGIN_S, "baseline") as probe:
        start = time.time()
        time.sleep(t.baseline)
    window = stats(probe.samples(since=start))
    baseline = {"t": start, **window.to_dict()}
    write_json(path, baseline)
    ctx.log(f"baseline on the old cluster: p50 {fmt_ms(window.p50_ms)} ms, p95 {fmt_ms(window.p95_ms)} ms "
            f"over {window.requests} requests")
    return baseline


def _extra_checks(ctx: Context, url: str) -> Any:
    t = _traffic(ctx)
    if t.gate_check is None and t.cloudwatch_alarm is None:
        return None
    http = Http(timeout=t.probe_timeout)
    session = aws_session(ctx) if t.cloudwatch_alarm else None

    def extra() -> tuple[str | None, str | None]:
        failed = None
        if t.gate_check is not None:
            c = t.gate_check
            problems = check_response(c, http.fetch(url.rstrip("/") + "/" + c.path.lstrip("/"), c.method,
                                                    headers_for(c)))
            failed = f"{c.method} {c.path}: {'; '.join(problems)}" if problems else None
        state = alarm_state(session[0], t.cloudwatch_alarm, session[1]) if session and t.cloudwatch_alarm else None
        return failed, state
    return extra


class ShiftTrafficStep:
    kind: ClassVar[str] = "shift-traffic"

    def facts(self, ctx: Context) -> dict[str, Any]:
        return {}

    def is_done(self, step: Step, ctx: Context) -> dict[str, Any] | None:
        """Done only if the weights are in place AND this step's soak completed: a run killed mid-soak
        re-soaks the step on resume instead of skipping its gates."""
        marker = (read_json(_soaked_path(ctx)) or {}).get(step.id)
        split = split_of(step.params["weights"])
        if not isinstance(marker, dict) or marker.get("weights") != split.to_dict():
            return None
        router = make_router(ctx, read_json(traffic_dir(ctx) / "targets.json"))
        return dict(marker.get("outputs") or {}) if router.current() == router.effective(split) else None

    def apply(self, step: Step, ctx: Context) -> dict[str, Any]:
        t = _traffic(ctx)
        split = split_of(step.params["weights"])
        targets = resolve_targets(ctx)
        router = make_router(ctx, targets)
        _check_earlier_steps_in_effect(step, ctx, router)
        applied = router.effective(split)
        note = _all_or_nothing_note(router, split, applied)
        if note:
            ctx.log(note)
        url = entry_url(ctx)
        baseline = measure_baseline(ctx, router, url)
        spec = StepSpec(tag=step.id, split=split, soak_s=float(step.params.get("soak_s", t.soak)),
                        gate_interval_s=float(step.params.get("gate_interval_s", t.gate_interval)), gates=_gates(t))
        duration = router.settle_s + spec.soak_s + PROBE_MARGIN_S
        try:
            with _probe(ctx, url, duration, step.id) as probe:
                outcome = run_step(router, spec, probe, timeline_file(ctx),
                                   baseline_p95_ms=(baseline or {}).get("p95_ms"),
                                   extra=_extra_checks(ctx, url), log=ctx.log)
        except GateFailed as e:
            clear_soaked(ctx)
            _report_failure(ctx, e)
            raise
        outputs = {"weights": split.to_dict(), "applied": applied.to_dict(),
                   "new_share": round(applied.new_share, 4), "router": router.describe(),
                   "new_target": targets.get("new_host"), "insync_s": round(outcome.insync_s, 3),
                   "settle_s": router.settle_s, "soak_s": spec.soak_s, "gates_evaluated": outcome.gates_evaluated,
                   "soak_window": outcome.soak_window,
                   "baseline_p95_ms": (baseline or {}).get("p95_ms"), **({"note": note} if note else {})}
        soaked = read_json(_soaked_path(ctx)) or {}
        soaked[step.id] = {"weights": split.to_dict(), "t": time.time(), "outputs": outputs}
        write_json(_soaked_path(ctx), soaked)
        return outputs

    def reverted_by_failure(self, step: Step, ctx: Context, error: MigrateError) -> list[str]:
        """The earlier shift-traffic steps this failure took back. A failed gate sends all traffic to the old
        cluster (the cutover loop raises GateFailed only after that is in sync), so none of the earlier weight
        steps is in effect any more; for any other failure, only when the router reads 100 % old. The engine
        journals them as rolled back, and the next run re-shifts and re-soaks from the first step."""
        earlier = _earlier_shifts(step, ctx)
        if not earlier:
            return []
        if isinstance(error, GateFailed) or current_split(ctx).all_old:
            return [s.id for s in earlier]
        return []

    def rollback(self, step: Step, ctx: Context, outputs: dict[str, Any]) -> None:
        """100 % old in one batch; nothing to do when it already is (safe twice)."""
        router = make_router(ctx, read_json(traffic_dir(ctx) / "targets.json"))
        if router.current() != router.effective(ALL_OLD):
            rollback_to_old(router, timeline_file(ctx), step.id, "rollback requested")
        clear_soaked(ctx)


def _earlier_shifts(step: Step, ctx: Context) -> list[Step]:
    if ctx.plan is None:
        return []
    ids = [s.id for s in ctx.plan.steps]
    if step.id not in ids:
        return []
    return [s for s in ctx.plan.steps[:ids.index(step.id)] if s.kind == ShiftTrafficStep.kind]


def _check_earlier_steps_in_effect(step: Step, ctx: Context, router: Router) -> None:
    """Refuse to jump from 100 % old to a later weight step, skipping the canary and its soak. The engine
    journals the earlier steps as undone when a gate's automatic rollback takes them back; this catches a
    return to the old cluster it never saw (killed during the rollback, a partial ``rollback --to``, a change
    by hand). The failure marks those steps undone (``reverted_by_failure``): the next run starts at the first."""
    earlier = _earlier_shifts(step, ctx)
    if not earlier:
        return
    expected = router.effective(split_of(earlier[-1].params["weights"]))
    if expected.all_old or not router.current().all_old:
        return
    raise StepFailed(
        f"all traffic is on the old cluster, but {step.id} follows {earlier[-1].id} ({expected.label()}), "
        "which is no longer in effect",
        where=router.describe(),
        hint="nothing was changed; the earlier weight steps are now journaled as undone: run the same command "
             "again to re-shift and re-soak from the first step",
    )


def _all_or_nothing_note(router: Router, split: Split, applied: Split) -> str | None:
    """What a router that cannot express the split does instead (the gateway router: one integration)."""
    if applied == split:
        return None
    if applied.new_share == 0:
        return (f"{router.describe()} is all-or-nothing: {split.label()} cannot be expressed with one "
                "integration; traffic stays 100% on the old cluster and this step only soaks")
    return (f"{router.describe()} is all-or-nothing: {split.label()} cannot be expressed with one "
            f"integration; this step sends {applied.label()}")


def _report_failure(ctx: Context, error: GateFailed) -> None:
    """The run stops here, before write-report: write the report now, so the failed run has one too."""
    from migrate.steps.report import write_reports

    try:
        write_reports(ctx, failure=str(error.what))
    except Exception as e:  # the report must never hide the gate failure itself
        ctx.log(f"could not write the report: {e}")


def current_split(ctx: Context) -> Split:
    return make_router(ctx, read_json(traffic_dir(ctx) / "targets.json")).current()
