"""Server-side table printing (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``), the columns the
API server's printers give each kind, so that ``kubectl get`` and ``-o wide`` read as on a real cluster.
Custom resources use their CRD's ``additionalPrinterColumns``. Kinds without a printer get Name and Age,
as the generic printer does."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType
from .store import Obj

Cell = Any
Column = tuple[str, str, int, Callable[[Obj], Cell]]  # name, type, priority (1: -o wide only), value


def _get(obj: Obj, *path: Any, default: Any = None) -> Any:
    cur: Any = obj
    for p in path:
        if isinstance(cur, dict):
            cur = cur.get(p)
        elif isinstance(cur, list) and isinstance(p, int) and -len(cur) <= p < len(cur):
            cur = cur[p]
        else:
            return default
        if cur is None:
            return default
    return cur


def age(ts: str | None) -> str:
    """Kubernetes' HumanDuration of the time since ``ts`` (2s, 5m12s, 3h, 4d, 2y)."""
    if not ts:
        return "<unknown>"
    try:
        then = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    s = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    return f"{d}d" if d < 365 * 2 else f"{d // 365}y"


def _name(o: Obj) -> str:
    return str(_get(o, "metadata", "name", default=""))


def _age(o: Obj) -> str:
    return age(_get(o, "metadata", "creationTimestamp"))


def _none(v: Any) -> str:
    return "<none>" if v in (None, "", [], {}) else str(v)


def _containers(o: Obj, field: str) -> str:
    cs = _get(o, "spec", "template", "spec", "containers", default=[]) or _get(o, "spec", "jobTemplate", "spec",
                                                                           "template", "spec", "containers",
                                                                           default=[])
    return ",".join(str(c.get(field, "")) for c in cs) or "<none>"


def _selector(o: Obj) -> str:
    sel = _get(o, "spec", "selector", default={})
    if isinstance(sel, dict) and ("matchLabels" in sel or "matchExpressions" in sel):
        parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
        for e in sel.get("matchExpressions") or []:
            parts.append(f"{e.get('key')} {str(e.get('operator', '')).lower()} ({','.join(e.get('values') or [])})")
        return ",".join(parts) or "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted((sel or {}).items())) or "<none>"


def _cond(o: Obj, ctype: str) -> str | None:
    for c in _get(o, "status", "conditions", default=[]) or []:
        if c.get("type") == ctype:
            return str(c.get("status"))
    return None


def _pod_ready(o: Obj) -> str:
    cs = _get(o, "spec", "containers", default=[]) or []
    ready = sum(1 for s in _get(o, "status", "containerStatuses", default=[]) or [] if s.get("ready"))
    return f"{ready}/{len(cs)}"


def _pod_status(o: Obj) -> str:
    if _get(o, "metadata", "deletionTimestamp"):
        return "Terminating"
    for s in _get(o, "status", "containerStatuses", default=[]) or []:
        waiting = _get(s, "state", "waiting", "reason")
        if waiting:
            return str(waiting)
        term = _get(s, "state", "terminated", "reason")
        if term and _get(o, "status", "phase") not in ("Succeeded",):
            return str(term)
    phase = _get(o, "status", "phase", default="Pending")
    return "Completed" if phase == "Succeeded" else str(phase)


def _restarts(o: Obj) -> int:
    return sum(int(s.get("restartCount", 0)) for s in _get(o, "status", "containerStatuses", default=[]) or [])


def _ports(o: Obj) -> str:
    out = []
    for p in _get(o, "spec", "ports", default=[]) or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        out.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _external_ip(o: Obj) -> str:
    if _get(o, "spec", "type") == "LoadBalancer":
        ing = _get(o, "status", "loadBalancer", "ingress", default=[]) or []
        return ",".join(str(i.get("hostname") or i.get("ip")) for i in ing) or "<pending>"
    return ",".join(_get(o, "spec", "externalIPs", default=[]) or []) or "<none>"


def _node_status(o: Obj) -> str:
    ready = _cond(o, "Ready")
    status = "Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"
    return f"{status},SchedulingDisabled" if _get(o, "spec", "unschedulable") else status


def _roles(o: Obj) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = [k[len(prefix):] for k in (_get(o, "metadata", "labels", default={}) or {}) if k.startswith(prefix)]
    return ",".join(sorted(roles)) or "<none>"


def _address(o: Obj, kind: str) -> str:
    return ",".join(str(a.get("address")) for a in _get(o, "status", "addresses", default=[]) or []
                    if a.get("type") == kind) or "<none>"


def _modes(o: Obj, *path: str) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(m, m) for m in _get(o, *path, default=[]) or [])


def _duration(o: Obj) -> str:
    start, end = _get(o, "status", "startTime"), _get(o, "status", "completionTime")
    if not start:
        return ""
    if not end:
        return age(start)
    t0 = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
    t1 = datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ")
    secs = int((t1 - t0).total_seconds())
    return f"{secs}s" if secs < 120 else f"{secs // 60}m{secs % 60}s"


def _ingress_hosts(o: Obj) -> str:
    hosts = [str(r.get("host")) for r in _get(o, "spec", "rules", default=[]) or [] if r.get("host")]
    return ",".join(hosts) or "*"


def _hpa_targets(o: Obj) -> str:
    out = []
    for m in _get(o, "spec", "metrics", default=[]) or []:
        t = _get(m, "resource", "target", default={}) or {}
        if "averageUtilization" in t:
            out.append(f"<unknown>/{t['averageUtilization']}%")
        elif t:
            out.append(f"<unknown>/{t.get('averageValue') or t.get('value')}")
    return ", ".join(out) or "<none>"


def _apiservice_service(o: Obj) -> str:
    svc = _get(o, "spec", "service")
    return f"{svc.get('namespace')}/{svc.get('name')}" if isinstance(svc, dict) else "Local"


def _apiservice_available(o: Obj) -> str:
    for c in _get(o, "status", "conditions", default=[]) or []:
        if c.get("type") == "Available":
            return "True" if c.get("status") == "True" else f"False ({c.get('reason')})"
    return "Unknown"


def _ready_of(o: Obj) -> str:
    return f"{_get(o, 'status', 'readyReplicas', default=0)}/{_get(o, 'spec', 'replicas', default=1)}"


def _event_object(o: Obj) -> str:
    inv = o.get("involvedObject") or {}
    return f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}"


_NAME: Column = ("Name", "string", 0, _name)
_AGE: Column = ("Age", "string", 0, _age)
_WIDE_WORKLOAD: list[Column] = [("Containers", "string", 1, lambda o: _containers(o, "name")),
                                ("Images", "string", 1, lambda o: _containers(o, "image")),
                                ("Selector", "string", 1, _selector)]

COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "pods"): [_NAME, ("Ready", "string", 0, _pod_ready), ("Status", "string", 0, _pod_status),
                   ("Restarts", "string", 0, lambda o: str(_restarts(o))), _AGE,
                   ("IP", "string", 1, lambda o: _none(_get(o, "status", "podIP"))),
                   ("Node", "string", 1, lambda o: _none(_get(o, "spec", "nodeName"))),
                   ("Nominated Node", "string", 1, lambda o: _none(_get(o, "status", "nominatedNodeName"))),
                   ("Readiness Gates", "string", 1, lambda o: _none(_get(o, "spec", "readinessGates")))],
    ("apps", "deployments"): [_NAME, ("Ready", "string", 0, lambda o: _ready_of(o)),
                              ("Up-to-date", "integer", 0, lambda o: _get(o, "status", "updatedReplicas", default=0)),
                              ("Available", "integer", 0,
                               lambda o: _get(o, "status", "availableReplicas", default=0)), _AGE, *_WIDE_WORKLOAD],
    ("apps", "replicasets"): [_NAME, ("Desired", "integer", 0, lambda o: _get(o, "spec", "replicas", default=1)),
                              ("Current", "integer", 0, lambda o: _get(o, "status", "replicas", default=0)),
                              ("Ready", "integer", 0, lambda o: _get(o, "status", "readyReplicas", default=0)),
                              _AGE, *_WIDE_WORKLOAD],
    ("", "replicationcontrollers"): [
        _NAME, ("Desired", "integer", 0, lambda o: _get(o, "spec", "replicas", default=1)),
        ("Current", "integer", 0, lambda o: _get(o, "status", "replicas", default=0)),
        ("Ready", "integer", 0, lambda o: _get(o, "status", "readyReplicas", default=0)), _AGE, *_WIDE_WORKLOAD],
    ("apps", "statefulsets"): [_NAME, ("Ready", "string", 0, lambda o: _ready_of(o)),
                               _AGE, *_WIDE_WORKLOAD[:2]],
    ("apps", "daemonsets"): [_NAME,
                             ("Desired", "integer", 0,
                              lambda o: _get(o, "status", "desiredNumberScheduled", default=0)),
                             ("Current", "integer", 0,
                              lambda o: _get(o, "status", "currentNumberScheduled", default=0)),
                             ("Ready", "integer", 0, lambda o: _get(o, "status", "numberReady", default=0)),
                             ("Up-to-date", "integer", 0,
                              lambda o: _get(o, "status", "updatedNumberScheduled", default=0)),
                             ("Available", "integer", 0, lambda o: _get(o, "status", "numberAvailable", default=0)),
                             ("Node Selector", "string", 0, lambda o: ",".join(
                                 f"{k}={v}" for k, v in sorted((_get(o, "spec", "template", "spec", "nodeSelector",
                                                                     default={}) or {}).items())) or "<none>"),
                             _AGE, *_WIDE_WORKLOAD],
    ("batch", "jobs"): [_NAME, ("Completions", "string", 0,
                                lambda o: f"{_get(o, 'status', 'succeeded', default=0)}/"
                                          f"{_get(o, 'spec', 'completions', default=1)}"),
                        ("Duration", "string", 0, _duration), _AGE, *_WIDE_WORKLOAD],
    ("batch", "cronjobs"): [_NAME, ("Schedule", "string", 0, lambda o: _get(o, "spec", "schedule", default="")),
                            ("Timezone", "string", 0, lambda o: _none(_get(o, "spec", "timeZone"))),
                            ("Suspend", "boolean", 0, lambda o: bool(_get(o, "spec", "suspend", default=False))),
                            ("Active", "integer", 0, lambda o: len(_get(o, "status", "active", default=[]) or [])),
                            ("Last Schedule", "string", 0,
                             lambda o: age(_get(o, "status", "lastScheduleTime"))
                             if _get(o, "status", "lastScheduleTime") else "<none>"),
                            _AGE, ("Containers", "string", 1, lambda o: _containers(o, "name")),
                            ("Images", "string", 1, lambda o: _containers(o, "image"))],
    ("", "services"): [_NAME, ("Type", "string", 0, lambda o: _get(o, "spec", "type", default="ClusterIP")),
                       ("Cluster-IP", "string", 0, lambda o: _none(_get(o, "spec", "clusterIP"))),
                       ("External-IP", "string", 0, _external_ip), ("Port(s)", "string", 0, _ports), _AGE,
                       ("Selector", "string", 1, lambda o: ",".join(
                           f"{k}={v}" for k, v in sorted((_get(o, "spec", "selector", default={}) or {}).items()))
                        or "<none>")],
    ("", "nodes"): [_NAME, ("Status", "string", 0, _node_status), ("Roles", "string", 0, _roles), _AGE,
                    ("Version", "string", 0, lambda o: _get(o, "status", "nodeInfo", "kubeletVersion", default="")),
                    ("Internal-IP", "string", 1, lambda o: _address(o, "InternalIP")),
                    ("External-IP", "string", 1, lambda o: _address(o, "ExternalIP")),
                    ("OS-Image", "string", 1, lambda o: _get(o, "status", "nodeInfo", "osImage", default="")),
                    ("Kernel-Version", "string", 1,
                     lambda o: _get(o, "status", "nodeInfo", "kernelVersion", default="")),
                    ("Container-Runtime", "string", 1,
                     lambda o: _get(o, "status", "nodeInfo", "containerRuntimeVersion", default=""))],
    ("", "namespaces"): [_NAME, ("Status", "string", 0, lambda o: _get(o, "status", "phase", default="Active")),
                         _AGE],
    ("", "persistentvolumeclaims"): [
        _NAME, ("Status", "string", 0, lambda o: _get(o, "status", "phase", default="Pending")),
        ("Volume", "string", 0, lambda o: _get(o, "spec", "volumeName", default="")),
        ("Capacity", "string", 0, lambda o: _get(o, "status", "capacity", "storage", default="")),
        ("Access Modes", "string", 0, lambda o: _modes(o, "status", "accessModes")),
        ("StorageClass", "string", 0, lambda o: _get(o, "spec", "storageClassName", default="")), _AGE,
        ("VolumeMode", "string", 1, lambda o: _get(o, "spec", "volumeMode", default="Filesystem"))],
    ("", "persistentvolumes"): [
        _NAME, ("Capacity", "string", 0, lambda o: _get(o, "spec", "capacity", "storage", default="")),
        ("Access Modes", "string", 0, lambda o: _modes(o, "spec", "accessModes")),
        ("Reclaim Policy", "string", 0, lambda o: _get(o, "spec", "persistentVolumeReclaimPolicy", default="")),
        ("Status", "string", 0, lambda o: _get(o, "status", "phase", default="Pending")),
        ("Claim", "string", 0, lambda o: f"{_get(o, 'spec', 'claimRef', 'namespace')}/"
                                         f"{_get(o, 'spec', 'claimRef', 'name')}" if _get(o, "spec", "claimRef")
         else ""),
        ("StorageClass", "string", 0, lambda o: _get(o, "spec", "storageClassName", default="")),
        ("Reason", "string", 0, lambda o: _get(o, "status", "reason", default="")), _AGE,
        ("VolumeMode", "string", 1, lambda o: _get(o, "spec", "volumeMode", default="Filesystem"))],
    ("", "events"): [("Last Seen", "string", 0, lambda o: age(o.get("lastTimestamp") or o.get("eventTime"))),
                     ("Type", "string", 0, lambda o: o.get("type", "")),
                     ("Reason", "string", 0, lambda o: o.get("reason", "")),
                     ("Object", "string", 0, _event_object),
                     ("Subobject", "string", 1, lambda o: _get(o, "involvedObject", "fieldPath", default="")),
                     ("Source", "string", 1, lambda o: _get(o, "source", "component", default="")),
                     ("Message", "string", 0, lambda o: o.get("message", "")),
                     ("First Seen", "string", 1, lambda o: age(o.get("firstTimestamp"))),
                     ("Count", "string", 1, lambda o: str(o.get("count", 1))),
                     ("Name", "string", 1, _name)],
    ("", "configmaps"): [_NAME, ("Data", "integer", 0, lambda o: len(o.get("data") or {}) +
                                 len(o.get("binaryData") or {})), _AGE],
    ("", "secrets"): [_NAME, ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
                      ("Data", "integer", 0, lambda o: len(o.get("data") or {})), _AGE],
    ("", "serviceaccounts"): [_NAME, ("Secrets", "integer", 0, lambda o: len(o.get("secrets") or [])), _AGE],
    ("networking.k8s.io", "ingresses"): [
        _NAME, ("Class", "string", 0, lambda o: _none(_get(o, "spec", "ingressClassName"))),
        ("Hosts", "string", 0, _ingress_hosts),
        ("Address", "string", 0, lambda o: ",".join(str(i.get("hostname") or i.get("ip")) for i in _get(
            o, "status", "loadBalancer", "ingress", default=[]) or [])),
        ("Ports", "string", 0, lambda o: "80, 443" if _get(o, "spec", "tls") else "80"), _AGE],
    ("autoscaling", "horizontalpodautoscalers"): [
        _NAME, ("Reference", "string", 0, lambda o: f"{_get(o, 'spec', 'scaleTargetRef', 'kind')}/"
                                                    f"{_get(o, 'spec', 'scaleTargetRef', 'name')}"),
        ("Targets", "string", 0, _hpa_targets),
        ("MinPods", "string", 0, lambda o: str(_get(o, "spec", "minReplicas", default=1))),
        ("MaxPods", "integer", 0, lambda o: _get(o, "spec", "maxReplicas", default=0)),
        ("Replicas", "integer", 0, lambda o: _get(o, "status", "currentReplicas", default=0)), _AGE],
    ("apiregistration.k8s.io", "apiservices"): [_NAME, ("Service", "string", 0, _apiservice_service),
                                               ("Available", "string", 0, _apiservice_available), _AGE],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        _NAME, ("Created At", "date", 0, lambda o: _get(o, "metadata", "creationTimestamp", default=""))],
}

_JSONPATH_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_\-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]")


def jsonpath(obj: Obj, path: str) -> Any:
    """The subset of JSONPath CRDs use in printer columns: ``.a.b``, ``[0]``, ``[?(@.type=="Ready")]``."""
    cur: Any = [obj]
    pos = 0
    path = path.strip()
    while pos < len(path):
        m = _JSONPATH_STEP.match(path, pos)
        if not m:
            return None
        pos = m.end()
        nxt: list[Any] = []
        for c in cur:
            if m.group(1) is not None and isinstance(c, dict) and m.group(1) in c:
                nxt.append(c[m.group(1)])
            elif m.group(2) is not None and isinstance(c, list) and int(m.group(2)) < len(c):
                nxt.append(c[int(m.group(2))])
            elif m.group(3) is not None and isinstance(c, list):
                nxt += [x for x in c if isinstance(x, dict) and str(x.get(m.group(3))) == m.group(4)]
        cur = nxt
    return cur[0] if len(cur) == 1 else (cur or None)


def crd_columns(crd: Obj | None, version: str) -> list[Column]:
    """A custom resource's columns: Name, its CRD's additionalPrinterColumns for ``version``, Age last unless
    the CRD places it."""
    cols: list[Column] = [_NAME]
    spec_versions = _get(crd or {}, "spec", "versions", default=[]) or []
    printer = next((v.get("additionalPrinterColumns") for v in spec_versions if v.get("name") == version), None) \
        or []
    for c in printer:
        path = str(c.get("jsonPath", ""))
        ctype = str(c.get("type", "string"))

        def value(o: Obj, path: str = path, ctype: str = ctype) -> Cell:
            v = jsonpath(o, path)
            if ctype == "date" and isinstance(v, str):
                return age(v)
            return "<none>" if v is None else v

        cols.append((str(c.get("name", "")), "string" if ctype == "date" else ctype, int(c.get("priority", 0)),
                     value))
    if not any(c[0] == "Age" for c in cols):
        cols.append(_AGE)
    return cols


def columns_for(rt: ResourceType, crd: Obj | None = None) -> list[Column]:
    if crd is not None:
        return crd_columns(crd, rt.version)
    return COLUMNS.get((rt.group, rt.plural), [_NAME, _AGE])


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def to_table(rt: ResourceType, body: Obj, include: str, crd: Obj | None = None) -> Obj:
    """A list (or one object) as a meta.k8s.io/v1 Table; ``include`` is the includeObject parameter."""
    items = body.get("items") if str(body.get("kind", "")).endswith("List") else [body]
    cols = columns_for(rt, crd)
    rows = []
    for o in items or []:
        row: Obj = {"cells": [fn(o) for _, _, _, fn in cols]}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o.get("metadata") or {}}
        rows.append(row)
    meta = dict(body.get("metadata") or {}) if str(body.get("kind", "")).endswith("List") else \
        {"resourceVersion": _get(body, "metadata", "resourceVersion", default="")}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": [{"name": n, "type": t, "format": "name" if n == "Name" else "",
                                   "description": n, "priority": p} for n, t, p, _ in cols],
            "rows": rows}
