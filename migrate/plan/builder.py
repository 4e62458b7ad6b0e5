"""Facts + config -> plan. Pure: no I/O, no clock, no SDKs (the caller passes ``now`` and ``who``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from migrate.config import STEP_KINDS, Environment, Hook
from migrate.plan.model import Fingerprint, Plan, Step
from migrate.redact import redact

DECOMMISSION_KINDS = ("protect-volumes", "remove-gateway", "handover-shared", "destroy-old-cluster", "retire-workspace")


def target_of(env: Environment) -> dict[str, Any]:
    """The account/region or project the plan is computed for."""
    if env.cloud == "aws" and env.aws is not None:
        return {"cloud": "aws", "region": env.aws.region, "account_id": env.aws.account_id}
    if env.gcp is not None:
        return {"cloud": "gcp", "project": env.gcp.project, "location": env.gcp.location}
    return {"cloud": env.cloud}


def _backend(env: Environment) -> dict[str, Any]:
    if env.terraform is None:
        return {}
    b = env.terraform.backend
    where = {"local": {"path": b.path}, "s3": {"bucket": b.bucket, "key": b.key}, "gcs": {"bucket": b.bucket}}
    return {"type": b.type, **{k: v for k, v in where[b.type].items() if v is not None}}


def _kind_steps(env_name: str, env: Environment, kind: str) -> list[tuple[str, str, dict[str, Any], str, str]]:
    """(slug, title, params, effect, undo) for one step kind; shift-traffic expands per weight step."""
    tf = env.terraform
    old, new = env.clusters.old.name, env.clusters.new.name
    ws, new_ws = (tf.workspace, tf.new_workspace) if tf else ("-", "-")
    if kind == "duplicate-workspace":
        return [(kind, f"Copy workspace {ws} to {new_ws}",
                 {"backend": _backend(env), "workspace": ws, "new_workspace": new_ws},
                 f"workspace {new_ws} is created with a copy of {ws}'s state, minus the cluster-owned addresses "
                 f"(so the cluster is never owned by both), and a fresh lineage; {ws} is only read",
                 f"delete workspace {new_ws} (after a backup)")]
    if kind == "detach-cluster":
        overrides = tf.ownership.model_dump() if tf else {}
        return [(kind, f"Take the cluster out of {new_ws}",
                 {"workspace": new_ws, "ownership_overrides": overrides},
                 f"checks that {new_ws} holds none of the old cluster's objects (the copy was written without "
                 f"them) and removes any that are still there, so terraform creates a new cluster there",
                 "nothing: the copy without the cluster is the safe state (undoing the copy deletes it)")]
    if kind == "provision-cluster":
        return [(kind, f"Create cluster {new}",
                 {"provisioner": env.provisioner, "cluster": new, "version": env.clusters.new.version,
                  **target_of(env),
                  **({"workspace": new_ws, "variables": redact(tf.variables)}
                     if env.provisioner == "terraform" and tf else {})},
                 f"cluster {new} and its node groups are created next to {old}",
                 f"destroy cluster {new} (only new-cluster resources)")]
    if kind == "wait-cluster-ready":
        return [(kind, f"Wait for {new} to be ready", {"cluster": new},
                 "nothing changes; waits until the cluster, node groups and API are ready", "nothing to undo")]
    if kind == "write-kubeconfig":
        return [(kind, f"Write a kubeconfig for {new}", {"cluster": new},
                 "a kubeconfig (mode 0600) for the new cluster is written under the state directory",
                 "remove the kubeconfig")]
    if kind == "replay-workloads":
        r = env.replay
        return [(kind, f"Replay workloads from {old} to {new}",
                 {"from": old, "to": new, "namespaces": r.namespaces.model_dump(),
                  "kinds": r.kinds.model_dump(), "labels": r.labels.model_dump(),
                  "transforms": [t.name or _transform_action(t.model_dump()) for t in r.transforms],
                  "concurrency": r.concurrency, "qps": r.qps},
                 f"the workloads read from {old} are applied to {new}; {old} is only read",
                 f"delete from {new} exactly the objects this replay created")]
    if kind in ("snapshot-volumes", "cut-volumes"):
        vol = env.replay.volumes
        if not vol.rules:
            return []  # no claim is carried: a bound claim is then a plan error of replay-workloads
        if kind == "snapshot-volumes":
            return [(kind, f"Take warm-up snapshots of {old}'s carried volumes",
                     {"strategies": sorted({r.strategy for r in vol.rules})},
                     f"a first snapshot of each carried volume is taken while {old} still serves, so that the "
                     "final one at the cut is incremental; nothing else changes",
                     "nothing: the snapshots are kept (tagged migrate-run) until an explicit cleanup")]
        return [(kind, f"Cut the stateful workloads over to {new}",
                 {"snapshot_timeout_s": vol.snapshot_timeout, "ready_timeout_s": vol.ready_timeout,
                  "zone_map": dict(vol.zone_map),
                  **({"region": vol.region} if vol.region and vol.region != target_of(env).get("region") else {})},
                 f"one workload at a time: its writer on {old} is frozen and scaled to 0, its volumes are "
                 f"snapshotted and restored for {new}, bound, scaled up there, and both clusters' Services point "
                 f"at the new writer; the write-unavailability window is measured",
                 f"scale the writers on {old} back up and point their Services back; the restored volumes are kept")]
    if kind == "wait-workloads-ready":
        return [(kind, f"Wait for workloads on {new}", {"cluster": new, "timeout_s": env.replay.ready_timeout},
                 "nothing changes; waits until every replayed workload is ready", "nothing to undo")]
    if kind == "open-gateway":
        return [(kind, f"Open a temporary API gateway to {new}",
                 {"name": env.gateway.name or f"migrate-{env_name}-{new}"},
                 f"an HTTP API with an HTTP_PROXY integration to {new}'s ingress is created",
                 "delete the temporary HTTP API")]
    if kind == "validate":
        v = env.validation
        return [(kind, f"Validate {new}",
                 {"smoke": len(v.smoke), "latency": v.latency is not None, "diff": v.diff is not None,
                  "suites": [s.name for s in v.suites]},
                 "nothing changes; built-in checks and pytest suites run against the new cluster; "
                 "a failure stops the run before traffic moves", "nothing to undo")]
    if kind == "shift-traffic":
        t = env.traffic
        if t is None:
            return []
        out = []
        total = len(t.steps)
        for i, w in enumerate(t.steps, start=1):
            share = round(100 * w.new / (w.old + w.new)) if w.old + w.new else 50
            where = t.record.name if t.record else t.api_id
            params = {"router": t.router, "target": where, "weights": w.model_dump(), "step": i, "of": total,
                      "soak_s": t.soak, "gate_interval_s": t.gate_interval, "thresholds": t.thresholds.model_dump()}
            gates = f"gates are checked every {t.gate_interval:g}s for {t.soak:g}s"
            if t.router == "gateway" and w.old:
                # One integration cannot split traffic: below 100% the step keeps old and only soaks.
                out.append((f"{kind}-{i}", f"Soak with all traffic on {old} (gateway router; step {i}/{total})",
                            params, f"{where} keeps sending every request to {old} (the gateway router is "
                                    f"all-or-nothing); {gates}", "nothing to undo"))
                continue
            out.append((f"{kind}-{i}", f"Shift traffic: {share}% to {new} (step {i}/{total})", params,
                        f"{where} sends {share}% of requests to {new}; {gates}; a failed gate sends everything "
                        f"back to {old}", f"set {where} back to 100% {old}"))
        return out
    if kind == "write-report":
        return [(kind, "Write the migration report", {},
                 "a Markdown report of the run is written next to the journal", "nothing to undo")]
    raise ValueError(f"unknown step kind {kind!r}")


def _transform_action(d: dict[str, Any]) -> str:
    return next((k for k, v in d.items() if v is not None and k not in ("name", "match")), "?")


def _hook_step(h: Hook) -> tuple[str, str, dict[str, Any], str, str]:
    params = {"name": h.name, "run": redact(h.run), "check": redact(h.check), "undo": redact(h.undo),
              "idempotent": h.idempotent, "env": redact({k: v for k, v in h.env.items()}),
              "timeout_s": h.timeout}
    effect = f"runs the operator's command {h.run[0]}"
    return (f"hook-{h.name}", f"Hook {h.name}", params, effect,
            f"run {h.undo[0]}" if h.undo else "nothing to undo (no undo command)")


def _with_hooks(entries: list[tuple[str, tuple[str, str, dict[str, Any], str, str]]],
                hooks: list[Hook]) -> list[tuple[str, tuple[str, str, dict[str, Any], str, str]]]:
    """Insert hooks before/after their anchor (a step kind or another hook); unanchored ones go last."""
    pending = list(hooks)
    progress = True
    while pending and progress:
        progress = False
        for h in list(pending):
            anchor = h.before or h.after
            if anchor is None:
                continue
            idx = [i for i, (k, _) in enumerate(entries) if k == anchor or k == f"hook:{anchor}"]
            if not idx:
                continue
            pos = idx[0] if h.before else idx[-1] + 1
            entries.insert(pos, (f"hook:{h.name}", _hook_step(h)))
            pending.remove(h)
            progress = True
    tail = next((i for i, (k, _) in enumerate(entries) if k == "write-report"), len(entries))
    for h in pending:  # unanchored, or anchored to a skipped step
        entries.insert(tail, (f"hook:{h.name}", _hook_step(h)))
        tail += 1
    return entries


def build_plan(
    env_name: str,
    env: Environment,
    *,
    config_digest: str,
    facts: Mapping[str, Any],
    available: Collection[str],
    now: str,
    who: str,
    operation: str = "migrate",
) -> Plan:
    """Compose the ordered steps for one environment and seal the plan with its digest."""
    entries: list[tuple[str, tuple[str, str, dict[str, Any], str, str]]] = []
    if operation == "decommission":
        for kind, step in _decommission_steps(env):
            entries.append((kind, step))
    else:
        for kind in STEP_KINDS:
            if kind in env.skip:
                continue
            for step in _kind_steps(env_name, env, kind):
                entries.append((kind, step))
        entries = _with_hooks(entries, env.hooks)
    pause_after = set(env.traffic.pause_after) if env.traffic else set()
    hooks = {h.name: h for h in env.hooks}
    steps: list[Step] = []
    for i, (kind, (slug, title, params, effect, undo)) in enumerate(entries, start=1):
        real_kind = "hook" if kind.startswith("hook:") else kind
        pause = False
        if real_kind == "shift-traffic":
            pause = params["step"] in pause_after and params["step"] != params["of"]
        elif real_kind == "hook":
            pause = hooks[params["name"]].pause_after
        derived = facts.get(real_kind)
        if isinstance(derived, dict) and isinstance(derived.get("params"), dict):
            # Facts may fix parameters, e.g. the new cluster's spec derived from the old cluster.
            params = {**params, **derived["params"]}
        steps.append(Step(id=f"{i:02d}-{slug}", kind=real_kind, title=title, params=redact(params),
                          effect=effect, undo=undo, available=real_kind in available, pause_after=pause))
    plan = Plan(
        operation=operation,
        env=env_name,
        target=target_of(env),
        created_at=now,
        created_by=who,
        fingerprint=Fingerprint(config=config_digest, facts=redact(dict(facts))),
        review=_review(env_name, env, facts, operation),
        steps=steps,
    )
    return plan.sealed()


def _decommission_steps(env: Environment) -> list[tuple[str, tuple[str, str, dict[str, Any], str, str]]]:
    tf = env.terraform
    old = env.clusters.old.name
    ws, new_ws = (tf.workspace, tf.new_workspace) if tf else ("-", "-")
    out: list[tuple[str, tuple[str, str, dict[str, Any], str, str]]] = [] if "protect-volumes" in env.skip else [
        ("protect-volumes", ("protect-volumes", f"Protect the data on {old}'s volumes",
                             {"accept_data_loss": [], "accepted_claims": []},
                             f"a final snapshot (tagged migrate-phase=decommission) of every volume of {old} whose "
                             "data was not carried, listed in the report; shared file systems' PVs set to Retain; "
                             "refused while a Delete volume holds data the new cluster lacks, unless accepted",
                             "nothing: the snapshots are kept until an explicit cleanup"))]
    if env.gateway.enabled and "open-gateway" not in env.skip:
        out.append(("remove-gateway", ("remove-gateway", "Remove the temporary gateway", {},
                                       "the temporary HTTP API is deleted", "re-create the gateway")))
    if tf is None:  # no state to hand over or retire: only the cluster itself goes
        out.append(("destroy-old-cluster", ("destroy-old-cluster", f"Destroy cluster {old}", {"cluster": old},
                                            f"cluster {old} is deleted through the cloud API",
                                            "none: destruction cannot be undone")))
        return [*out, _decommission_report()]
    out.append(("handover-shared", ("handover-shared", f"Hand shared resources to {new_ws}",
                                    {"from": ws, "to": new_ws},
                                    f"shared addresses are removed from {ws}; {new_ws} owns them alone",
                                    f"restore {ws}'s state from its backup")))
    effect = (f"terraform destroys the old cluster's addresses in {ws}; the gate allows deleting those only"
              if env.provisioner == "terraform" else
              f"cluster {old}, its node groups, add-ons and OIDC provider are deleted through the cloud API; "
              f"the old cluster's addresses then leave {ws}'s state (other cluster-owned objects, such as "
              "IAM roles, are not deleted: the step names them)")
    out.append(("destroy-old-cluster", ("destroy-old-cluster", f"Destroy cluster {old}",
                                        {"workspace": ws, "cluster": old}, effect,
                                        "none: destruction cannot be undone")))
    out.append(("retire-workspace", ("retire-workspace", f"Retire workspace {ws}", {"workspace": ws},
                                     f"workspace {ws} is deleted after a final backup",
                                     "restore the workspace from the final backup")))
    return [*out, _decommission_report()]


def _decommission_report() -> tuple[str, tuple[str, str, dict[str, Any], str, str]]:
    return ("write-report", ("write-report", "Write the decommission report", {},
                             "a Markdown report of the decommission (the final snapshots among it) is written "
                             "next to the plans", "nothing to undo"))


def _review(env_name: str, env: Environment, facts: Mapping[str, Any], operation: str) -> dict[str, Any]:
    """What a reviewer must see: created, changed, and never touched."""
    old, new = env.clusters.old.name, env.clusters.new.name
    tf = env.terraform
    ownership = next((f["ownership"] for f in (facts.get("detach-cluster"), facts.get("handover-shared"))
                      if isinstance(f, dict) and isinstance(f.get("ownership"), dict)), None)
    warnings = [w for f in facts.values() if isinstance(f, dict) for w in f.get("warnings") or []
                if isinstance(w, str)]
    if ownership:
        warnings += [w for w in ownership.get("warnings") or [] if isinstance(w, str)]
    rf = facts.get("replay-workloads")
    replay = {"kube_system": list(rf.get("kube_system") or []),
              "skipped_by_reason": dict(rf.get("skipped_by_reason") or {}),
              "volumes": list(rf.get("volumes") or []), "stateful": list(rf.get("stateful") or [])} \
        if isinstance(rf, dict) and operation != "decommission" else None
    if operation == "decommission":
        pf = facts.get("protect-volumes")
        rows = [r for r in (pf.get("volumes") or []) if isinstance(r, dict)] if isinstance(pf, dict) else []
        return {
            "create": [f"a final snapshot of {r['claim']} ({r['handle']})" for r in rows if r.get("snapshot")],
            "change": [f"workspace {tf.new_workspace if tf else '-'} becomes the sole owner of shared resources"]
            + [f"PV {r['pv']} of {r['claim']}: reclaim policy set to Retain (shared with {new})"
               for r in rows if r.get("strategy") == "shared" and r.get("reclaim") != "Retain"],
            "delete": [f"cluster {old}", f"workspace {tf.workspace if tf else '-'}", "the temporary gateway"]
            + [f"the data of {r['claim']} on {r['handle'] or r['pv']} (accepted with --accept-data-loss)"
               for r in rows if r.get("at_risk")],
            "never_touch": [f"cluster {new}", "shared resources (VPC, DNS zones, IAM)"],
            "ownership": ownership,
            "warnings": list(dict.fromkeys(warnings)),
            **({"old_volumes": rows} if rows else {}),
        }
    create = [f"cluster {new} (provisioner: {env.provisioner})"]
    if tf and "duplicate-workspace" not in env.skip:
        create.insert(0, f"workspace {tf.new_workspace}")
    if "replay-workloads" not in env.skip:
        create.append(f"the replayed workloads on {new}")
    if env.gateway.enabled and "open-gateway" not in env.skip:
        create.append("a temporary API gateway in front of the new cluster")
    change = []
    if env.traffic and "shift-traffic" not in env.skip:
        where = env.traffic.record.name if env.traffic.record else env.traffic.api_id
        weights = " -> ".join(f"{w.old}/{w.new}" for w in env.traffic.steps)
        change.append(f"{env.traffic.router} {where}: old/new weights {weights}")
    stateful = [w["workload"] for w in (replay or {}).get("stateful") or []]
    if stateful:
        change.append(f"cluster {old}: at the cut, the writers {', '.join(stateful)} are scaled to 0 and their "
                      f"Services become aliases of the new writers on {new} (rollback puts them back)")
    never = [f"cluster {old} and its workloads (read only" + (", but for the stateful writers above)" if stateful
                                                               else ")")]
    if tf:
        never.append(f"workspace {tf.workspace}'s state (read only until decommission)")
    never.append("shared resources (VPC, subnets, DNS zones, IAM): owned by one state throughout")
    return {"create": create, "change": change, "delete": [], "never_touch": never, "ownership": ownership,
            "warnings": list(dict.fromkeys(warnings)), **({"replay": replay} if replay is not None else {})}
