"""The three patch types of the Kubernetes API: JSON patch (RFC 6902), merge patch (RFC 7386) and
strategic merge patch, whose list semantics come from the `x-kubernetes-patch-*` schema extensions."""

from __future__ import annotations

from typing import Any, Protocol

from .store import clone


class PatchError(Exception):
    """The patch cannot be applied (a JSON-patch `test` failed, a path is missing, ...)."""


class PatchMeta(Protocol):
    """Where we are in the schema: what a field's patch strategy and merge key are."""

    def field(self, name: str) -> PatchMeta | None: ...
    def items(self) -> PatchMeta | None: ...
    def strategy(self) -> str: ...  # "", "merge", "retainKeys", "merge,retainKeys", "replace"
    def merge_key(self) -> str | None: ...


# ---------------------------------------------------------------- JSON patch


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}")
    return [_unescape(t) for t in pointer[1:].split("/")]


def _resolve(doc: Any, tokens: list[str]) -> Any:
    for t in tokens:
        if isinstance(doc, dict):
            if t not in doc:
                raise PatchError(f"missing path: {'/'.join(tokens)}")
            doc = doc[t]
        elif isinstance(doc, list):
            doc = doc[_index(doc, t, allow_end=False)]
        else:
            raise PatchError(f"cannot traverse into a scalar at {t!r}")
    return doc


def _index(lst: list, token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(lst)
    if not token.isdigit():
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    if i > len(lst) or (i == len(lst) and not allow_end):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, allow_end=False))
    raise PatchError("cannot remove from a scalar")


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = clone(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], _split(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation does not have a value")
        if kind == "add":
            doc = _add(doc, path, clone(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _resolve(doc, path)  # must exist
            doc, _ = _remove(doc, path) if path else (doc, None)
            doc = _add(doc, path, clone(op["value"]))
        elif kind in ("move", "copy"):
            src = _split(op.get("from", ""))
            if kind == "move":
                doc, value = _remove(doc, src)
            else:
                value = clone(_resolve(doc, src))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _resolve(doc, path) != op["value"]:
                raise PatchError(f"testing value {op['path']} failed")
        else:
            raise PatchError(f"unexpected kind of operation: {kind}")
    return doc


# ---------------------------------------------------------------- merge patch


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ---------------------------------------------------------------- strategic merge patch

_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strip_directives(value: Any) -> Any:
    """A new value taken from a patch must not keep `$patch` and friends."""
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [strip_directives(v) for v in value if not (isinstance(v, dict) and v.get(_DIRECTIVE))]
    return value


def strategic_merge(original: Any, patch: Any, meta: PatchMeta | None) -> Any:
    if not isinstance(patch, dict) or not isinstance(original, dict):
        return strip_directives(patch)
    out = _merge_map(original, patch, meta)
    return {} if out is None else out


def _merge_map(original: dict, patch: dict, meta: PatchMeta | None) -> dict | None:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return strip_directives(patch)
    result = dict(original)
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key.startswith(_ORDER):
            orders[key[len(_ORDER):]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE):]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        child = meta.field(key) if meta else None
        current = result.get(key)
        if isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and child is not None and "merge" in child.strategy().split(","):
            result[key] = _merge_list(current if isinstance(current, list) else [], value, child)
        else:
            result[key] = strip_directives(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            child = meta.field(field) if meta else None
            result[field] = _reorder(result[field], order, child.merge_key() if child else None)
    retain = patch.get(_RETAIN)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(original: list, patch: list, meta: PatchMeta) -> list:
    key = meta.merge_key()
    if any(isinstance(p, dict) and p.get(_DIRECTIVE) == "replace" for p in patch):
        return strip_directives(patch)
    if key is None:
        # A set of primitives (finalizers, ...): union, keeping the original order.
        out = list(original)
        for v in patch:
            if v not in out:
                out.append(strip_directives(v))
        return out
    items_meta = meta.items()
    out = list(original)
    for p in patch:
        if not isinstance(p, dict):
            continue
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == p.get(key)), None)
        if p.get(_DIRECTIVE) == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strip_directives(p))
        else:
            merged = _merge_map(out[idx], p, items_meta)
            if merged is None:
                out.pop(idx)
            else:
                out[idx] = merged
    return out


def _reorder(items: list, order: list, key: str | None) -> list:
    def ident(v: Any) -> Any:
        return v.get(key) if key and isinstance(v, dict) else v

    wanted = [ident(o) for o in order]
    pos = {repr(w): i for i, w in enumerate(wanted)}
    ranked = [(pos.get(repr(ident(v)), len(wanted) + i), v) for i, v in enumerate(items)]
    return [v for _, v in sorted(ranked, key=lambda t: t[0])]
