"""Label selectors (equality and set-based) and field selectors, parsed as the API server does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .status import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")

# Field selectors a real server accepts beyond metadata.name / metadata.namespace.
EXTRA_FIELDS: dict[str, set[str]] = {
    "pods": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "status.phase", "status.podIP", "status.nominatedNodeName", "spec.hostNetwork"},
    "events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
               "reason", "reportingComponent", "source", "type"},
    "secrets": {"type"},
    "namespaces": {"status.phase"},
    "nodes": {"spec.unschedulable"},
    "replicasets": {"status.replicas"},
    "jobs": {"status.successful"},
}


def _split_terms(text: str) -> list[str]:
    # Commas separate requirements except inside "in (a,b)".
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return [t for t in terms if t.strip()]


def _label_eq(k: str, v: str) -> Predicate:
    return lambda lb: lb.get(k) == v


def _label_ne(k: str, v: str) -> Predicate:
    return lambda lb: lb.get(k) != v


def _label_in(k: str, vs: set[str], inside: bool) -> Predicate:
    return lambda lb: (lb.get(k) in vs) == inside


def _label_exists(k: str, present: bool) -> Predicate:
    return lambda lb: (k in lb) == present


def _field_cmp(path: str, v: str, equal: bool) -> Predicate:
    return lambda o: (_field_value(o, path) == v) == equal


def label_selector(text: str | None) -> Predicate:
    if not text:
        return lambda _labels: True
    preds: list[Predicate] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                preds.append(_label_ne(key, val))
            else:
                preds.append(_label_eq(key, val))
            continue
        m = _SET_RE.match(term)
        if not m:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
        neg, key, op, values = m.groups()
        if neg and op:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
        if op:
            vals = {v.strip() for v in (values or "").split(",") if v.strip()}
            if op == "in":
                preds.append(_label_in(key, vals, True))
            else:
                preds.append(_label_in(key, vals, False))
        elif neg:
            preds.append(_label_exists(key, False))
        else:
            preds.append(_label_exists(key, True))
    return lambda labels: all(p(labels) for p in preds)


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return str(cur).lower()
    return str(cur)


def field_selector(text: str | None, plural: str, custom: bool = False) -> Predicate:
    if not text:
        return lambda _obj: True
    allowed = {"metadata.name", "metadata.namespace"} | EXTRA_FIELDS.get(plural, set())
    preds: list[Predicate] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        path, op, val = m.groups()
        if path not in allowed:
            raise bad_request(f'"{path}" is not a known field selector: only "metadata.name", "metadata.namespace"'
                              if custom else f"field label not supported: {path}")
        if op == "!=":
            preds.append(_field_cmp(path, val, False))
        else:
            preds.append(_field_cmp(path, val, True))
    return lambda obj: all(p(obj) for p in preds)
