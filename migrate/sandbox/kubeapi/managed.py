"""managedFields bookkeeping and server-side apply (create, update, ownership conflicts, removal of
fields a manager stops applying). Field sets use the same FieldsV1 encoding as the real server."""

from __future__ import annotations

import json
from typing import Any

from .schemas import SchemaNode
from .store import clone

Path = tuple[str, ...]
_ITEM = object()  # marks "this list item exists" in a field set
_META_TRACKED = {"labels", "annotations", "finalizers", "ownerReferences"}


# Defaults of list-map keys: an applied port without `protocol` is the stored port with protocol TCP.
_KEY_DEFAULTS = {"protocol": "TCP"}


def _key_token(item: dict[str, Any], keys: list[str]) -> str:
    vals = {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in keys if k in item or k in _KEY_DEFAULTS}
    return "k:" + json.dumps(vals, sort_keys=True, separators=(",", ":"))


def _walk(v: Any, meta: SchemaNode | None, prefix: Path, out: dict[Path, Any]) -> None:
    if isinstance(v, dict):
        if not v or (meta is not None and meta.is_atomic_map()):
            out[prefix] = v
            return
        for k, x in v.items():
            _walk(x, meta.field(k) if meta else None, (*prefix, "f:" + k), out)
    elif isinstance(v, list):
        keys = meta.list_keys() if meta else []
        strategy = meta.strategy() if meta else ""
        if keys and v and all(isinstance(i, dict) for i in v):
            im = meta.items() if meta else None
            for item in v:
                p = (*prefix, _key_token(item, keys))
                out[p] = _ITEM
                for k, x in item.items():
                    _walk(x, im.field(k) if im else None, (*p, "f:" + k), out)
        elif "merge" in strategy.split(",") and v and not any(isinstance(i, dict | list) for i in v):
            for item in v:
                out[(*prefix, "v:" + json.dumps(item))] = _ITEM
        else:
            out[prefix] = v
    else:
        out[prefix] = v


def leaves(obj: dict[str, Any], meta: SchemaNode | None, status: bool = False) -> dict[Path, Any]:
    """Owned-able paths of an object and their values. status=True gives only the status part."""
    out: dict[Path, Any] = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if (k == "status") != status:
            continue
        if k == "metadata":
            if not isinstance(v, dict):
                continue
            mm = meta.field("metadata") if meta else None
            for mk in _META_TRACKED & set(v):
                _walk(v[mk], mm.field(mk) if mm else None, ("f:metadata", "f:" + mk), out)
            continue
        _walk(v, meta.field(k) if meta else None, ("f:" + k,), out)
    return out


def to_fields_v1(paths: set[Path] | dict[Path, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for p in sorted(paths):
        node = root
        for tok in p:
            node = node.setdefault(tok, {})
        if p and p[-1].startswith("k:"):
            node.setdefault(".", {})
    return root


def from_fields_v1(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for tok, sub in fields.items():
        if tok == ".":
            out.add(prefix)
            continue
        p = (*prefix, tok)
        if not sub or set(sub) == {"."}:
            out.add(p)
        else:
            out |= from_fields_v1(sub, p)
    return out


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def _same_entry(e: dict[str, Any], manager: str, operation: str, subresource: str) -> bool:
    return (e.get("manager") == manager and e.get("operation") == operation
            and e.get("subresource", "") == subresource)


def _entry(manager: str, operation: str, api_version: str, now: str, fields: dict[Path, Any] | set[Path],
           subresource: str) -> dict[str, Any]:
    e: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now,
                         "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(fields)}
    if subresource:
        e["subresource"] = subresource
    return e


def record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, api_version: str, now: str,
                  meta: SchemaNode | None, subresource: str = "") -> None:
    """An Update (create/replace/patch) gives `manager` the fields it changed and takes them from others."""
    status = subresource == "status"
    new_l = leaves(new, meta, status)
    old_l = leaves(old, meta, status) if old else {}
    changed = {p for p, v in new_l.items() if p not in old_l or old_l[p] != v}
    removed = set(old_l) - set(new_l)
    entries = _entries(old) if old else []
    out: list[dict[str, Any]] = []
    mine: set[Path] = set()
    for e in entries:
        owned = from_fields_v1(e.get("fieldsV1") or {})
        if _same_entry(e, manager, "Update", subresource):
            mine = owned
            continue
        if owned.isdisjoint(changed) and owned.isdisjoint(removed):
            out.append(e)  # untouched by this write: keep its encoding rather than rebuild it
            continue
        owned = owned - changed - removed
        if owned:
            out.append(dict(e, fieldsV1=to_fields_v1(owned)))
    mine = ((mine - removed) | changed) & set(new_l)
    if mine:
        out.append(_entry(manager, "Update", api_version, now, {p: new_l[p] for p in mine}, subresource))
    new["metadata"]["managedFields"] = out
    if not out:
        new["metadata"].pop("managedFields", None)


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, str, str]]) -> None:  # (manager, apiVersion, path)
        super().__init__("apply conflict")
        self.conflicts = conflicts


def path_str(p: Path) -> str:
    out = ""
    for tok in p:
        kind, val = tok[:2], tok[2:]
        if kind == "f:":
            out += "." + val
        elif kind == "k:":
            d = json.loads(val)
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in d.items()) + "]"
        elif kind == "v:":
            out += f"[{val}]"
    return out


def ssa_merge(live: Any, applied: Any, meta: SchemaNode | None) -> Any:
    if isinstance(applied, dict) and isinstance(live, dict) and not (meta is not None and meta.is_atomic_map()):
        out = dict(live)
        for k, v in applied.items():
            if v is None:
                continue
            out[k] = ssa_merge(live.get(k), v, meta.field(k) if meta else None)
        return out
    if isinstance(applied, list) and isinstance(live, list) and meta is not None:
        keys = meta.list_keys()
        if keys and all(isinstance(i, dict) for i in applied + live):
            res = list(live)
            im = meta.items()
            for item in applied:
                tok = _key_token(item, keys)
                idx = next((i for i, x in enumerate(res) if _key_token(x, keys) == tok), None)
                if idx is None:
                    res.append(clone(item))
                else:
                    res[idx] = ssa_merge(res[idx], item, im)
            return res
        if "merge" in meta.strategy().split(","):
            return live + [v for v in applied if v not in live]
    return clone(applied)


def _remove_path(obj: Any, p: Path) -> None:
    cur = obj
    for i, tok in enumerate(p):
        last = i == len(p) - 1
        kind, val = tok[:2], tok[2:]
        if kind == "f:":
            if not isinstance(cur, dict) or val not in cur:
                return
            if last:
                cur.pop(val)
                return
            cur = cur[val]
        elif kind in ("k:", "v:"):
            if not isinstance(cur, list):
                return
            if kind == "k:":
                want = json.loads(val)
                idx = next((j for j, x in enumerate(cur) if isinstance(x, dict)
                            and all(x.get(k) == v for k, v in want.items())), None)
            else:
                want = json.loads(val)
                idx = next((j for j, x in enumerate(cur) if x == want), None)
            if idx is None:
                return
            if last:
                cur.pop(idx)
                return
            cur = cur[idx]


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, force: bool, api_version: str,
          now: str, meta: SchemaNode | None, subresource: str = "") -> dict[str, Any]:
    """Server-side apply of `applied` by `manager`. Returns the new object (managedFields set).
    Raises ApplyConflict when another manager owns a field this apply would change, unless force."""
    status = subresource == "status"
    applied_l = leaves(applied, meta, status)
    if live is None:
        new = clone(applied)
        new.setdefault("metadata", {})["managedFields"] = [
            _entry(manager, "Apply", api_version, now, applied_l, subresource)]
        return new
    live_l = leaves(live, meta, status)
    entries = _entries(live)
    conflicts: list[tuple[str, str, str]] = []
    others: list[tuple[dict[str, Any], set[Path]]] = []
    prev_mine: set[Path] = set()
    for e in entries:
        owned = from_fields_v1(e.get("fieldsV1") or {})
        if _same_entry(e, manager, "Apply", subresource):
            prev_mine = owned
            continue
        if e.get("subresource", "") != subresource:
            others.append((e, owned))
            continue
        clash = {p for p in owned & set(applied_l) if live_l.get(p) != applied_l[p] and applied_l[p] is not _ITEM}
        if clash and not force:
            conflicts.extend((e["manager"], e.get("apiVersion", ""), path_str(p)) for p in sorted(clash))
        others.append((e, owned - clash if force else owned))
    if conflicts:
        raise ApplyConflict(conflicts)
    new = ssa_merge(clone(live), applied, meta)
    still_owned = set().union(*(o for _, o in others)) if others else set()
    for p in sorted(prev_mine - set(applied_l) - still_owned, key=len):
        if any(q[:len(p)] == p for q in still_owned):
            continue
        _remove_path(new, p)
    out = []
    for e, owned in others:
        if owned:
            out.append(dict(e, fieldsV1=to_fields_v1(owned)))
    out.append(_entry(manager, "Apply", api_version, now, applied_l, subresource))
    new.setdefault("metadata", {})["managedFields"] = out
    return new
