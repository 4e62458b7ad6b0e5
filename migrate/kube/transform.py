"""Declarative transforms from `migrate.yaml` (`replay.transforms`), applied in order to sanitized objects.

Every rule is data: a match on kind, namespace and name (shell-style globs) plus exactly one action. The
result names the rules that changed each object, so a reviewer sees why a manifest differs from the old
cluster. A rule that leaves an object invalid is named in the error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from migrate.config import Transform
from migrate.kube.objects import Obj, clone, containers, dig, meta, pod_specs, to_json

ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
_ACTIONS = ("registry", "storage_class", "set_annotations", "remove_annotations", "set_labels", "remove_labels",
            "role_arn", "cluster_name", "replicas", "json_patch")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_REPLICA_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")


class TransformError(ValueError):
    """A rule could not be applied, or left the object invalid."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"transform {rule!r}: {message}")
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class TransformContext:
    old_cluster: str = ""
    new_cluster: str = ""


@dataclass
class Transformed:
    obj: Obj
    applied: list[str] = field(default_factory=list)


def rule_name(t: Transform, index: int) -> str:
    if t.name:
        return t.name
    action = next((a for a in _ACTIONS if getattr(t, a) is not None), "rule")
    return f"{action}#{index + 1}"


def matches(t: Transform, obj: Obj) -> bool:
    m = obj.get("metadata") or {}
    want = t.match
    if "kind" in want and not fnmatchcase(str(obj.get("kind", "")).lower(), want["kind"].lower()):
        return False
    if "namespace" in want and not fnmatchcase(str(m.get("namespace") or ""), want["namespace"]):
        return False
    return not ("name" in want and not fnmatchcase(str(m.get("name") or ""), want["name"]))


# --- actions: each edits `obj` in place and returns True if it changed it -----------------------------


def _image_prefix_match(image: str, prefix: str) -> str | None:
    """The remainder of `image` after the registry/repository `prefix`, or None. Docker Hub short names count."""
    if prefix in ("docker.io", "docker.io/library"):
        first, slash, _rest = image.partition("/")
        if not slash:
            image = f"docker.io/library/{image}"
        elif "." not in first and ":" not in first and first != "localhost":
            image = f"docker.io/{image}"
    if image == prefix:
        return ""
    if image.startswith(prefix) and image[len(prefix)] in "/:@":
        return image[len(prefix):]
    return None


def rewrite_registry(obj: Obj, spec: dict[str, str]) -> bool:
    src, dst = spec.get("from", "").rstrip("/"), spec.get("to", "").rstrip("/")
    if not src or not dst:
        raise ValueError("registry needs both 'from' and 'to'")
    changed = False
    for ps in pod_specs(obj):
        for c in containers(ps):
            image = c.get("image")
            if isinstance(image, str):
                rest = _image_prefix_match(image, src)
                if rest is not None:
                    c["image"] = dst + rest
                    changed = True
    return changed


def map_storage_class(obj: Obj, mapping: dict[str, str]) -> bool:
    changed = False

    def fix(spec: Any) -> None:
        nonlocal changed
        if isinstance(spec, dict) and spec.get("storageClassName") in mapping:
            spec["storageClassName"] = mapping[spec["storageClassName"]]
            changed = True

    kind = obj.get("kind")
    if kind in ("PersistentVolumeClaim", "PersistentVolume"):
        fix(obj.get("spec"))
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        beta = "volume.beta.kubernetes.io/storage-class"
        if ann.get(beta) in mapping:
            ann[beta] = mapping[ann[beta]]
            changed = True
    elif kind == "StatefulSet":
        for tpl in dig(obj, "spec", "volumeClaimTemplates") or []:
            fix((tpl or {}).get("spec"))
    return changed


def _set_map(obj: Obj, where: str, values: dict[str, str]) -> bool:
    m = meta(obj).setdefault(where, {})
    changed = any(m.get(k) != v for k, v in values.items())
    m.update(values)
    return changed


def _remove_keys(obj: Obj, where: str, keys: list[str]) -> bool:
    m = (obj.get("metadata") or {}).get(where) or {}
    gone = [k for k in list(m) if any(fnmatchcase(k, pat) for pat in keys)]
    for k in gone:
        del m[k]
    if where in (obj.get("metadata") or {}) and not m:
        del obj["metadata"][where]
    return bool(gone)


def _replace_strings(value: Any, fn: Any) -> tuple[Any, bool]:
    """Apply fn to every string value (never to keys) of a JSON tree."""
    if isinstance(value, str):
        new = fn(value)
        return new, new != value
    if isinstance(value, dict):
        changed = False
        for k, v in value.items():
            value[k], c = _replace_strings(v, fn)
            changed = changed or c
        return value, changed
    if isinstance(value, list):
        changed = False
        for i, v in enumerate(value):
            value[i], c = _replace_strings(v, fn)
            changed = changed or c
        return value, changed
    return value, False


def _content(obj: Obj) -> list[tuple[Any, str]]:
    """The parts of an object that string substitutions may touch: not its identity, not Secret payloads."""
    parts: list[tuple[Any, str]] = []
    m = obj.get("metadata") or {}
    for k in ("annotations", "labels"):
        if isinstance(m.get(k), dict):
            parts.append((m, k))
    for k in obj:
        if k in ("apiVersion", "kind", "metadata", "status"):
            continue
        if obj.get("kind") == "Secret" and k in ("data", "stringData"):
            continue  # opaque; a rule on purpose (json_patch) can still change it
        parts.append((obj, k))
    return parts


def map_role_arn(obj: Obj, mapping: dict[str, str]) -> bool:
    changed = False
    for parent, k in _content(obj):
        parent[k], c = _replace_strings(parent[k], lambda s: mapping.get(s, s))
        changed = changed or c
    return changed


_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+")



def substitute_cluster_name(obj: Obj, ctx: TransformContext) -> bool:
    if not ctx.old_cluster or not ctx.new_cluster:
        raise ValueError("cluster_name needs both cluster names")
    # Most objects never name the cluster: one search of their JSON skips walking every string (a name of
    # DNS characters appears in it as it is; anything JSON escapes is walked as before).
    if _PLAIN_NAME.fullmatch(ctx.old_cluster) and ctx.old_cluster.encode() not in to_json(obj):
        return False
    # Whole-word only: 'dev-blue' in '/aws/eks/dev-blue/logs' but not in 'dev-bluebird'.
    pat = re.compile(rf"(?<![A-Za-z0-9]){re.escape(ctx.old_cluster)}(?![A-Za-z0-9])")
    changed = False
    for parent, k in _content(obj):
        parent[k], c = _replace_strings(parent[k], lambda s: pat.sub(ctx.new_cluster, s))
        changed = changed or c
    return changed


def copy_current_replicas(obj: Obj, source: Obj | None) -> bool:
    """Start the new workload at the old one's *current* count (HPA-driven), not its manifest's."""
    if source is None or not isinstance(obj.get("spec"), dict):
        return False
    if obj.get("kind") not in _REPLICA_KINDS and "replicas" not in obj["spec"]:
        return False
    current = dig(source, "status", "replicas")
    if not isinstance(current, int):
        current = dig(source, "spec", "replicas")
    if not isinstance(current, int) or obj["spec"].get("replicas") == current:
        return False
    obj["spec"]["replicas"] = current
    return True


# --- JSON patch (RFC 6902) ----------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise ValueError(f"path {path!r} does not exist")
            cur = cur[p]
        elif isinstance(cur, list):
            if not p.isdigit() or int(p) >= len(cur):
                raise ValueError(f"path {path!r} does not exist")
            cur = cur[int(p)]
        else:
            raise ValueError(f"path {path!r} does not exist")
    return cur


def _add(doc: Any, path: str, value: Any, replace: bool = False) -> None:
    parts = _pointer(path)
    if not parts:
        raise ValueError("cannot replace the whole object")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise ValueError(f"path {path!r} does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
            return
        if not last.isdigit() or int(last) > len(parent) - (1 if replace else 0):
            raise ValueError(f"path {path!r} is out of range")
        if replace:
            parent[int(last)] = value
        else:
            parent.insert(int(last), value)
    else:
        raise ValueError(f"path {path!r} does not exist")


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise ValueError("cannot remove the whole object")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise ValueError(f"path {path!r} does not exist")


def json_patch(obj: Obj, ops: list[dict[str, Any]]) -> bool:
    """Apply RFC 6902 operations; a failed `test` or a missing path is an error (the rule is then reported)."""
    before = clone(obj)
    for i, op in enumerate(ops):
        kind, path = op.get("op"), op.get("path", "")
        try:
            if kind == "add":
                _add(obj, path, clone({"v": op["value"]})["v"])
            elif kind == "replace":
                _add(obj, path, clone({"v": op["value"]})["v"], replace=True)
            elif kind == "remove":
                _remove(obj, path)
            elif kind == "move":
                _add(obj, path, _remove(obj, op["from"]))
            elif kind == "copy":
                _add(obj, path, clone({"v": _walk(obj, _pointer(op["from"]), op["from"])})["v"])
            elif kind == "test":
                if _walk(obj, _pointer(path), path) != op.get("value"):
                    raise ValueError(f"test failed at {path!r}")
            else:
                raise ValueError(f"unknown op {kind!r}")
        except KeyError as e:
            raise ValueError(f"operation {i + 1} ({kind}) lacks {e.args[0]!r}") from None
        except ValueError as e:
            raise ValueError(f"operation {i + 1} ({kind}): {e}") from None
    return obj != before


# --- validity -----------------------------------------------------------------------------------------


def problems(obj: Obj) -> list[str]:
    """Client-side checks that catch what a transform typically breaks; the server validates the rest."""
    out: list[str] = []
    if not isinstance(obj.get("apiVersion"), str) or not obj.get("apiVersion"):
        out.append("apiVersion is missing")
    if not isinstance(obj.get("kind"), str) or not obj.get("kind"):
        out.append("kind is missing")
    m = obj.get("metadata")
    if not isinstance(m, dict):
        return [*out, "metadata is missing"]
    name = m.get("name")
    if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
        out.append(f"metadata.name {name!r} is not a valid name")
    for key, value in (m.get("labels") or {}).items():
        prefix, _, short = str(key).rpartition("/")
        if not _LABEL_NAME.match(short) or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
            out.append(f"label key {key!r} is invalid")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            out.append(f"label {key}={value!r}: a label value must be 63 characters or fewer, alphanumeric at both "
                       "ends, with '-', '_' or '.' between")
    for key, value in (m.get("annotations") or {}).items():
        if not isinstance(value, str):
            out.append(f"annotation {key} must be a string, not {type(value).__name__}")
    for ps in pod_specs(obj):
        for c in containers(ps):
            if not isinstance(c.get("image"), str) or not c["image"].strip():
                out.append(f"container {c.get('name')!r} has no image")
    replicas = dig(obj, "spec", "replicas")
    if obj.get("kind") in _REPLICA_KINDS and replicas is not None and (
            not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
        out.append(f"spec.replicas {replicas!r} must be a non-negative integer")
    return out


# --- the pipeline -------------------------------------------------------------------------------------


def apply_one(t: Transform, obj: Obj, ctx: TransformContext, source: Obj | None) -> bool:
    if t.registry is not None:
        return rewrite_registry(obj, t.registry)
    if t.storage_class is not None:
        return map_storage_class(obj, t.storage_class)
    if t.set_annotations is not None:
        return _set_map(obj, "annotations", t.set_annotations)
    if t.remove_annotations is not None:
        return _remove_keys(obj, "annotations", t.remove_annotations)
    if t.set_labels is not None:
        return _set_map(obj, "labels", t.set_labels)
    if t.remove_labels is not None:
        return _remove_keys(obj, "labels", t.remove_labels)
    if t.role_arn is not None:
        return map_role_arn(obj, t.role_arn)
    if t.cluster_name:
        return substitute_cluster_name(obj, ctx)
    if t.replicas == "copy-current":
        return copy_current_replicas(obj, source)
    if t.json_patch is not None:
        return json_patch(obj, t.json_patch)
    return False


def transform(obj: Obj, rules: list[Transform], ctx: TransformContext, source: Obj | None = None) -> Transformed:
    """Apply the matching rules in order to a copy of `obj`. Raises TransformError naming the rule that failed
    or that left the object invalid."""
    out = Transformed(obj)
    copied = False
    for i, t in enumerate(rules):
        if not matches(t, out.obj):
            continue
        name = rule_name(t, i)
        if not copied:
            out.obj = clone(obj)  # the input stays as it was: the review shows both
            copied = True
        try:
            changed = apply_one(t, out.obj, ctx, source)
        except (ValueError, TypeError, AttributeError) as e:
            raise TransformError(name, str(e)) from e
        if changed:
            out.applied.append(name)
            bad = problems(out.obj)
            if bad:
                raise TransformError(name, "; ".join(bad))
    return out
