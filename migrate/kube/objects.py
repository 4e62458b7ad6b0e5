"""Plain-dict helpers shared by the replay modules: object keys, groups and safe lookups."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, NamedTuple

import orjson

Obj = dict[str, Any]


class Key(NamedTuple):
    """Identity of an object across clusters: uids differ, (group, kind, namespace, name) does not."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return Key(group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")),
               str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def annotations_of(obj: Obj) -> dict[str, str]:
    a = dig(obj, "metadata", "annotations")
    return a if isinstance(a, dict) else {}


def labels_of(obj: Obj) -> dict[str, str]:
    a = dig(obj, "metadata", "labels")
    return a if isinstance(a, dict) else {}


def dig(obj: Any, *path: str | int) -> Any:
    cur = obj
    for p in path:
        if isinstance(p, int):
            cur = cur[p] if isinstance(cur, list) and -len(cur) <= p < len(cur) else None
        else:
            cur = cur.get(p) if isinstance(cur, dict) else None
        if cur is None:
            return None
    return cur


def clone(obj: Obj) -> Obj:
    # JSON round trip is faster than deepcopy for plain JSON data and drops anything non-JSON.
    try:
        out: Obj = orjson.loads(orjson.dumps(obj))
        return out
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return copy.deepcopy(obj)


def to_json(obj: Any, *, sort_keys: bool = False) -> bytes:
    """Compact JSON: orjson, several times json's speed; json for what orjson refuses (an integer beyond
    64 bits)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(obj, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False).encode()


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def is_subset(want: Any, have: Any) -> bool:
    """True if every field of `want` has the same value in `have` (extra fields in `have` are server defaults).

    Lists are compared element by element and must have the same length: a list in a manifest is the whole list.
    """
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all(is_subset(v, have.get(k)) for k, v in want.items() if not (v is None and k not in have))
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return False
        return all(is_subset(w, h) for w, h in zip(want, have, strict=True))
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int | float) and isinstance(have, int | float):
        return float(want) == float(have)
    return bool(want == have)


def pod_specs(obj: Obj) -> list[Obj]:
    """Every pod spec inside an object: a Pod, a workload template, a CronJob's job template."""
    out: list[Obj] = []
    kind = obj.get("kind")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return out
    if kind == "Pod":
        out.append(spec)
    tpl = dig(spec, "template", "spec")
    if isinstance(tpl, dict):
        out.append(tpl)
    jt = dig(spec, "jobTemplate", "spec", "template", "spec")
    if isinstance(jt, dict):
        out.append(jt)
    return out


def containers(pod_spec: Obj) -> list[Obj]:
    out: list[Obj] = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod_spec.get(field) or []:
            if isinstance(c, dict):
                out.append(c)
    return out
