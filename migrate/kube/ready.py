"""When a replayed object counts as ready (reference/replay.md, "When a workload is ready").

`evaluate` is pure: an object as the new cluster returns it in, a verdict out. The rules are those of
`kubectl rollout status`, kstatus and helm's ready checker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from migrate.kube.client import KubeClient
from migrate.kube.discovery import ResourceType, discover
from migrate.kube.objects import Key, Obj, dig, group_of

READY, PENDING, FAILED = "ready", "pending", "failed"


@dataclass(frozen=True)
class Verdict:
    state: str  # ready | pending | failed
    reason: str = ""

    @property
    def ready(self) -> bool:
        return self.state == READY


OK = Verdict(READY)


def _cond(obj: Obj, ctype: str) -> dict[str, Any] | None:
    for c in dig(obj, "status", "conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def _true(obj: Obj, ctype: str) -> bool:
    c = _cond(obj, ctype)
    return bool(c and c.get("status") == "True")


def _generic(obj: Obj) -> Verdict | None:
    """kstatus rules every kind obeys; None means "no objection"."""
    m = obj.get("metadata") or {}
    if m.get("deletionTimestamp"):
        return Verdict(PENDING, "Terminating")
    status = obj.get("status") or {}
    gen, seen = m.get("generation"), status.get("observedGeneration")
    if isinstance(gen, int) and isinstance(seen, int) and seen < gen:
        return Verdict(PENDING, f"controller has observed generation {seen}, not yet {gen}")
    stalled = _cond(obj, "Stalled")
    if stalled and stalled.get("status") == "True":
        return Verdict(FAILED, f"Stalled: {stalled.get('message') or stalled.get('reason', '')}".strip())
    rec = _cond(obj, "Reconciling")
    if rec and rec.get("status") == "True":
        return Verdict(PENDING, f"Reconciling: {rec.get('message') or rec.get('reason', '')}".strip())
    return None


def _deployment(obj: Obj) -> Verdict:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if not isinstance(st.get("observedGeneration"), int):
        return Verdict(PENDING, "waiting for the deployment controller")
    prog = _cond(obj, "Progressing")
    if prog and prog.get("reason") == "ProgressDeadlineExceeded":
        return Verdict(FAILED, f"ProgressDeadlineExceeded: {prog.get('message', '')}".rstrip(": "))
    want = int(spec.get("replicas", 1))
    updated, total, avail = (int(st.get(k, 0)) for k in ("updatedReplicas", "replicas", "availableReplicas"))
    if updated < want:
        return Verdict(PENDING, f"{updated} of {want} updated replicas")
    if total > updated:
        return Verdict(PENDING, f"{total - updated} old replicas are pending termination")
    if avail < updated:
        return Verdict(PENDING, f"{avail} of {updated} updated replicas are available")
    return OK


def _statefulset(obj: Obj) -> Verdict:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if not st.get("observedGeneration"):
        return Verdict(PENDING, "waiting for the statefulset controller")
    want = int(spec.get("replicas", 1))
    ready = int(st.get("readyReplicas", 0))
    if ready < want:
        return Verdict(PENDING, f"{ready} of {want} replicas ready")
    partition = dig(spec, "updateStrategy", "rollingUpdate", "partition")
    if isinstance(partition, int) and partition > 0:
        if int(st.get("updatedReplicas", 0)) < want - partition:
            return Verdict(PENDING, f"partitioned rollout: {st.get('updatedReplicas', 0)} of "
                                    f"{want - partition} updated")
        return OK
    if st.get("updateRevision") and st.get("currentRevision") != st.get("updateRevision"):
        return Verdict(PENDING, f"update revision {st.get('updateRevision')} is not current yet")
    return OK


def _daemonset(obj: Obj) -> Verdict:
    st = obj.get("status") or {}
    if not isinstance(st.get("observedGeneration"), int):
        return Verdict(PENDING, "waiting for the daemonset controller")
    desired = int(st.get("desiredNumberScheduled", 0))
    updated, avail = int(st.get("updatedNumberScheduled", 0)), int(st.get("numberAvailable", 0))
    if updated < desired:
        return Verdict(PENDING, f"{updated} of {desired} updated pods scheduled")
    if avail < desired:
        return Verdict(PENDING, f"{avail} of {desired} pods available")
    return OK


def _job(obj: Obj) -> Verdict:
    if _true(obj, "Failed"):
        c = _cond(obj, "Failed") or {}
        return Verdict(FAILED, f"Job failed: {c.get('reason', '')} {c.get('message', '')}".strip())
    if _true(obj, "Complete"):
        return OK
    if dig(obj, "spec", "suspend"):
        return OK  # a suspended Job is as intended
    return Verdict(PENDING, "Job has not completed")


def _pvc(obj: Obj) -> Verdict:
    phase = dig(obj, "status", "phase")
    if phase == "Bound":
        return OK
    if phase == "Lost":
        return Verdict(FAILED, "claim lost its volume")
    return Verdict(PENDING, f"claim is {phase or 'Pending'}")


def _service(obj: Obj) -> Verdict:
    if dig(obj, "spec", "type") != "LoadBalancer":
        return OK
    if dig(obj, "status", "loadBalancer", "ingress"):
        return OK
    return Verdict(PENDING, "load balancer has no ingress address yet")


def _crd(obj: Obj) -> Verdict:
    if _true(obj, "Established"):
        return OK
    names = _cond(obj, "NamesAccepted")
    if names and names.get("status") == "False":
        return Verdict(FAILED, f"names not accepted: {names.get('message', '')}")
    return Verdict(PENDING, "not Established yet")


def _pod(obj: Obj) -> Verdict:
    phase = dig(obj, "status", "phase")
    if phase in ("Succeeded",):
        return OK
    if phase == "Failed":
        return Verdict(FAILED, f"pod failed: {dig(obj, 'status', 'reason') or ''}".strip())
    if _true(obj, "Ready"):
        return OK
    return Verdict(PENDING, f"pod is {phase or 'Pending'}, not Ready")


_BY_KIND = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("", "Pod"): _pod,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def evaluate(obj: Obj) -> Verdict:
    """Ready, pending or failed, with a reason an operator can act on."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", ""))
    generic = _generic(obj)
    if generic is not None:
        return generic
    fn = _BY_KIND.get((group, kind))
    if fn is not None:
        return fn(obj)
    # Unknown kinds: a Ready condition, if they publish one, is the verdict.
    ready = _cond(obj, "Ready")
    if ready is not None and ready.get("status") != "True":
        return Verdict(PENDING, f"Ready is {ready.get('status')}: {ready.get('message') or ready.get('reason', '')}")
    return OK


def needs_wait(obj: Obj) -> bool:
    """Kinds that have a readiness to wait for; everything else is ready once it exists."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", ""))
    if (group, kind) in _BY_KIND:
        return kind != "Service" or dig(obj, "spec", "type") == "LoadBalancer"
    return "." in group and not group.endswith(".k8s.io")  # custom resources may publish Ready


# --- waiting on a cluster -----------------------------------------------------------------------------


@dataclass
class ReadyReport:
    ready: list[str]
    pending: dict[str, str]  # object -> why not yet
    failed: dict[str, str]  # object -> why it will not get ready
    waited: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.pending and not self.failed

    def to_dict(self, limit: int = 200) -> dict[str, Any]:
        return {"ok": self.ok, "ready": len(self.ready), "waited_s": round(self.waited, 2),
                "pending": dict(list(self.pending.items())[:limit]), "failed": dict(list(self.failed.items())[:limit])}


def pauses(most: float, first: float = 0.05) -> Iterator[float]:
    """Pauses between polls of a Kubernetes API: short at first, since most waits there end within a second
    (a fixed 0.5 s poll made every wait of a dev run up to half a second longer), doubling up to ``most``."""
    pause = min(first, most)
    while True:
        yield pause
        pause = min(pause * 2, most)


def wait_ready(kube: KubeClient, targets: list[tuple[str, str, str, str]], timeout: float, *, poll: float = 0.5,
               on_progress: Callable[[ReadyReport], None] | None = None) -> ReadyReport:
    """Wait until every target (apiVersion, kind, namespace, name) is ready, or `timeout` passes.

    One list per type and round (not a GET per object). Failed objects stop being waited for; the report
    names each object that is not ready, and why.
    """
    start = time.monotonic()
    disc = discover(kube)
    by_type: dict[ResourceType, set[tuple[str, str]]] = {}
    unknown: dict[str, str] = {}
    for api_version, kind, ns, name in targets:
        t = disc.find(api_version, kind)
        label = str(Key(group_of(api_version), kind, ns, name))
        if t is None:
            unknown[label] = f"the cluster does not serve {api_version} {kind}"
            continue
        by_type.setdefault(t, set()).add((ns, name))
    pause = pauses(poll)
    while True:
        report = ReadyReport([], {}, dict(unknown))
        for t, wanted in by_type.items():
            namespaces = {ns for ns, _ in wanted}
            path = t.path(next(iter(namespaces))) if len(namespaces) == 1 and t.namespaced else t.path()
            found: dict[tuple[str, str], Obj] = {}
            for o in kube.list_pages(path):
                m = o.get("metadata") or {}
                k = (str(m.get("namespace") or ""), str(m.get("name") or ""))
                if k in wanted:
                    found[k] = o
            for ns, name in sorted(wanted):
                label = str(Key(t.group, t.kind, ns, name))
                live = found.get((ns, name))
                v = evaluate(live) if live is not None else Verdict(PENDING, "not found on the cluster")
                if v.state == READY:
                    report.ready.append(label)
                elif v.state == FAILED:
                    report.failed[label] = v.reason
                else:
                    report.pending[label] = v.reason
        report.waited = time.monotonic() - start
        if on_progress is not None:
            on_progress(report)
        if not report.pending or report.waited >= timeout:
            if report.pending:
                report.pending = {k: f"not ready after {timeout:g}s: {v}" for k, v in report.pending.items()}
            return report
        time.sleep(min(next(pause), max(0.0, timeout - report.waited)))
