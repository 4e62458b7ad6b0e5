"""Kubernetes schemas: the JSON schemas shipped by `kubernetes-validate` for built-in kinds (one set per
Kubernetes minor), the `openAPIV3Schema` of CRDs, and a schema walker that patch/apply use for list keys."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import marshal
import os
import re
import sys
import threading
import types
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import fastjsonschema
import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

_BASE = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
_DEFS_ID = "https://kubernetes.io/api/_definitions.json"


def available_versions() -> list[tuple[int, int]]:
    out = []
    for name in os.listdir(_BASE):
        m = re.match(r"^v(\d+)\.(\d+)\.\d+-local$", name)
        if m:
            out.append((int(m.group(1)), int(m.group(2))))
    return sorted(out)


def schema_version_for(version: str) -> str:
    """The newest shipped schema set not newer than the emulated cluster, like kubernetes-validate does."""
    m = re.match(r"^v?(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"bad Kubernetes version {version!r}; expected like 1.29")
    want = (int(m.group(1)), int(m.group(2)))
    fits = [v for v in available_versions() if v <= want]
    if not fits:
        raise ValueError(f"kubernetes-validate ships no schemas for {version} or older")
    return f"{fits[-1][0]}.{fits[-1][1]}"


class SchemaNode:
    """A position in a schema; implements the PatchMeta protocol of patch.py."""

    __slots__ = ("_defs", "_node")

    def __init__(self, node: dict[str, Any], defs: dict[str, Any]) -> None:
        self._node = node
        self._defs = defs

    def _resolved(self) -> dict[str, Any]:
        node = self._node
        for _ in range(20):
            ref = node.get("$ref")
            if not isinstance(ref, str):
                break
            node = self._defs.get(ref.rsplit("/", 1)[-1], {})
        if "allOf" in node and len(node["allOf"]) == 1 and "properties" not in node:
            return SchemaNode(node["allOf"][0], self._defs)._resolved()
        return node

    def field(self, name: str) -> SchemaNode | None:
        node = self._resolved()
        props = node.get("properties") or {}
        if name in props:
            return SchemaNode(props[name], self._defs)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return SchemaNode(extra, self._defs)
        return None

    def items(self) -> SchemaNode | None:
        items = self._resolved().get("items")
        return SchemaNode(items, self._defs) if isinstance(items, dict) else None

    def _ext(self, name: str) -> Any:
        if name in self._node:
            return self._node[name]
        return self._resolved().get(name)

    def strategy(self) -> str:
        s = self._ext("x-kubernetes-patch-strategy")
        if s:
            return str(s)
        if self._ext("x-kubernetes-list-type") in ("map", "set"):
            return "merge"
        return ""

    def merge_key(self) -> str | None:
        key = self._ext("x-kubernetes-patch-merge-key")
        if key:
            return str(key)
        keys = self._ext("x-kubernetes-list-map-keys")
        if keys and self._ext("x-kubernetes-list-type") == "map":
            return str(keys[0])
        return None

    def list_keys(self) -> list[str]:
        keys = self._ext("x-kubernetes-list-map-keys")
        if keys and self._ext("x-kubernetes-list-type") == "map":
            return [str(k) for k in keys]
        key = self.merge_key()
        return [key] if key else []

    def is_atomic_map(self) -> bool:
        return self._ext("x-kubernetes-map-type") == "atomic"


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "migrate-sandbox", "validators")


def _compiled_code(key: str, schema: dict[str, Any]) -> Any:
    """The validator's code object, from the user's cache when an earlier process compiled the same schema:
    compiling a Pod's validator takes ~60 ms, loading it ~1 ms, and a fresh emulator meets a dozen kinds."""
    ident = hashlib.sha256(f"{fastjsonschema.VERSION}|{sys.version}|{marshal.version}|{key}".encode()).hexdigest()
    path = os.path.join(_cache_dir(), f"{ident}.bin")
    with contextlib.suppress(OSError, ValueError, EOFError, TypeError), open(path, "rb") as f:
        cached = marshal.load(f)
        if isinstance(cached, types.CodeType):
            return cached
    # No defaults (they would be written into the object), no format checks (jsonschema's default, which the
    # errors come from, asserts none), and no error details: only pass or fail is read from this copy.
    source = fastjsonschema.compile_to_code(schema, use_default=False, use_formats=False, detailed_exceptions=False)
    code = compile(source, f"<validator {key[:60]}>", "exec")
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            marshal.dump(code, f)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
    return code


class SchemaValidator:
    """jsonschema for the error list, in front of it a fastjsonschema-compiled copy of the same schema for
    the common case of a valid object: 15x faster per write, which was a third of the emulator's CPU.
    Only an object the compiled copy rejects pays for jsonschema, so the errors keep their exact shape."""

    def __init__(self, slow: jsonschema.Draft202012Validator, compiled: dict[str, Any], key: str) -> None:
        self._slow = slow
        self._compiled_schema: dict[str, Any] | None = compiled
        self._key = key
        self._fast: Any = None
        self._lock = threading.Lock()

    def _compile(self) -> Any:
        with self._lock:
            if self._fast is None and self._compiled_schema is not None:
                scope: dict[str, Any] = {}
                exec(_compiled_code(self._key, self._compiled_schema), scope)
                self._fast = scope["validate"]
                self._compiled_schema = None
            return self._fast

    @property
    def slow(self) -> jsonschema.Draft202012Validator:
        return self._slow

    def passes_compiled(self, obj: Any) -> bool:
        fast = self._fast or self._compile()
        try:
            fast(obj)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def iter_errors(self, obj: Any) -> Iterator[jsonschema.ValidationError]:
        return iter(()) if self.passes_compiled(obj) else self._slow.iter_errors(obj)


class BuiltinSchemas:
    """The schema set of one Kubernetes minor. Loading takes ~10 ms; validators are built lazily."""

    def __init__(self, version: str) -> None:
        self.version = schema_version_for(version)
        path = os.path.join(_BASE, f"v{self.version}.0-local-strict", "_definitions.json")
        with open(path) as f:
            doc = json.load(f)
        self.defs: dict[str, Any] = doc["$defs"]
        self._registry: Registry = Resource.from_contents(doc) @ Registry()
        self._gvk: dict[tuple[str, str, str], str] = {}
        for name, d in self.defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind", []):
                self._gvk[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = name
        self._validators: dict[str, SchemaValidator] = {}
        self._lock = threading.Lock()

    def def_name(self, group: str, version: str, kind: str) -> str | None:
        return self._gvk.get((group, version, kind))

    def node(self, group: str, version: str, kind: str) -> SchemaNode | None:
        name = self.def_name(group, version, kind)
        return SchemaNode(self.defs[name], self.defs) if name else None

    def validator(self, group: str, version: str, kind: str) -> SchemaValidator | None:
        name = self.def_name(group, version, kind)
        if name is None:
            return None
        with self._lock:
            v = self._validators.get(name)
            if v is None:
                slow = jsonschema.Draft202012Validator({"$ref": f"{_DEFS_ID}#/$defs/{name}"}, registry=self._registry)
                v = SchemaValidator(slow, {"$defs": self.defs, "$ref": f"#/$defs/{name}"},
                                    f"builtin|{kubernetes_validate.__version__}|{self.version}|{name}")
                self._validators[name] = v
            return v


@lru_cache(maxsize=8)
def builtin_schemas(version: str) -> BuiltinSchemas:
    return BuiltinSchemas(version)


# ---------------------------------------------------------------- CRD schemas


def crd_to_jsonschema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3 structural schema -> JSON schema, with pruning made visible as additionalProperties."""

    def conv(node: Any, root: bool = False) -> Any:
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "properties":
                out[k] = {pk: conv(pv) for pk, pv in v.items()}
            elif k in ("items", "additionalProperties", "not"):
                out[k] = conv(v)
            elif k in ("allOf", "anyOf", "oneOf"):
                out[k] = [conv(x) for x in v]
            elif k == "nullable":
                continue
            else:
                out[k] = v
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if root:
            props = out.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props["metadata"] = {"type": "object"}
        # Structural pruning: unknown fields are dropped unless the schema preserves them.
        keeps_unknown = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-embedded-resource")
        if out.get("type") == "object" and "additionalProperties" not in out and not keeps_unknown:
            out["additionalProperties"] = False
        return out

    return conv(copy.deepcopy(schema), root=True)


def crd_validator(schema: dict[str, Any]) -> SchemaValidator:
    converted = crd_to_jsonschema(schema)
    key = "crd|" + hashlib.sha256(json.dumps(converted, sort_keys=True).encode()).hexdigest()
    return SchemaValidator(jsonschema.Draft202012Validator(converted), converted, key)


def crd_node(schema: dict[str, Any]) -> SchemaNode:
    return SchemaNode(schema, {})
