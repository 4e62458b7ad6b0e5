"""Discovery documents (/version, /api, /apis, per group-version resource lists) and OpenAPI v3, built
from the resource registry and the kubernetes-validate schemas so kubectl can resolve, validate, explain."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType
from .schemas import BuiltinSchemas

_SUB_VERBS = ["get", "patch", "update"]


def version_info(version: str) -> dict[str, str]:
    major, minor = version.lstrip("v").split(".")[:2]
    return {
        "major": major, "minor": minor, "gitVersion": f"v{major}.{minor}.0-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.21.0", "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group_entry(g, vs) for g, vs in registry.group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    vs = registry.group_versions().get(group)
    if not vs or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, vs)}


def _storage_hash(rt: ResourceType) -> str:
    return hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).hexdigest()[:11]


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in registry.all() if rt.group == group and rt.version == version]
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in sorted(types, key=lambda r: r.plural):
        entry: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular_name, "namespaced": rt.namespaced,
                                 "kind": rt.kind, "verbs": list(rt.verbs),
                                 "storageVersionHash": _storage_hash(rt)}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            s: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                                 "kind": rt.kind, "verbs": _SUB_VERBS}
            if sub == "scale":
                s.update(group="autoscaling", version="v1", kind="Scale")
            resources.append(s)
        if rt.plural == "namespaces" and not group:
            resources.append({"name": "namespaces/finalize", "singularName": "", "namespaced": False,
                              "kind": "Namespace", "verbs": ["update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}


# ---------------------------------------------------------------- OpenAPI v3

_REF = "#/$defs/"
V3_REFS = "#/components/schemas/"  # where OpenAPI v3 keeps definitions; v2 passes "#/definitions/"


def _to_openapi(node: Any, refs: str = V3_REFS) -> Any:
    """kubernetes-validate's JSON schema back into OpenAPI shape: refs (under ``refs``), single types, no closed
    objects."""
    if isinstance(node, list):
        return [_to_openapi(x, refs) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in ("properties", "patternProperties") and isinstance(v, dict):
            # A map of field name -> schema: JSONSchemaProps has fields named "$ref", "type", "allOf", ...
            out[k] = {name: _to_openapi(sub, refs) for name, sub in v.items()}
        elif k == "$ref" and isinstance(v, str) and v.startswith(_REF):
            out[k] = refs + v[len(_REF):]
        elif k == "type" and isinstance(v, list):
            types = [t for t in v if t != "null"]
            out[k] = types[0] if len(types) == 1 else types
        elif k == "additionalProperties" and v is False:
            continue
        elif k == "enum" and isinstance(v, list):
            out[k] = [x for x in v if x is not None]
        else:
            out[k] = _to_openapi(v, refs)
    if "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; the real spec wraps them in allOf.
        out = {k: v for k, v in out.items() if k != "$ref"} | {"allOf": [{"$ref": out["$ref"]}]}
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.add(ref[len(_REF):])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def _closure(defs: dict[str, Any], roots: list[str]) -> list[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(found - seen)
    return sorted(seen)


_PARAMS = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
]
_PATCH_TYPES = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json"]


def _op(rt: ResourceType, action: str, ref: str, body: bool = False, patch: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{action}{rt.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "responses": {"200": {"description": "OK",
                              "content": {"application/json": {"schema": {"$ref": ref}}}}},
    }
    if action in ("post", "put", "patch"):
        op["parameters"] = list(_PARAMS) + ([{"name": "force", "in": "query", "schema": {"type": "boolean"}}]
                                            if patch else [])
    if patch:
        types = [t for t in _PATCH_TYPES if not (rt.is_custom and "strategic" in t)]
        op["requestBody"] = {"content": {t: {"schema": {
            "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}} for t in types}}
    elif body:
        op["requestBody"] = {"content": {"application/json": {"schema": {"$ref": ref}}}}
    return op


def _crd_def_name(rt: ResourceType) -> str:
    return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{rt.kind}"


def crd_definitions(rt: ResourceType, refs: str = V3_REFS) -> dict[str, Any]:
    """A custom resource's definition and its List kind's, as the apiextensions server publishes them
    (kubectl validates a `FooList` file by the latter). ``refs``: where the document keeps definitions."""
    name = _crd_def_name(rt)
    meta = "io.k8s.apimachinery.pkg.apis.meta.v1."
    schema = json.loads(json.dumps(rt.crd_schema))
    props = schema.setdefault("properties", {})
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = {"allOf": [{"$ref": f"{refs}{meta}ObjectMeta"}]}
    schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    listed = {"type": "object", "required": ["items"],
              "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                             "items": {"type": "array", "items": {"allOf": [{"$ref": f"{refs}{name}"}]}},
                             "metadata": {"allOf": [{"$ref": f"{refs}{meta}ListMeta"}]}},
              "x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version,
                                                   "kind": f"{rt.kind}List"}]}
    return {name: schema, f"{name}List": listed}


def openapi_gv(registry: Registry, schemas: BuiltinSchemas, gv_path: str, version: str) -> dict[str, Any] | None:
    """The document for `api/v1` or `apis/<group>/<version>`."""
    parts = gv_path.split("/")
    if parts[0] == "api" and len(parts) == 2:
        group, ver = "", parts[1]
    elif parts[0] == "apis" and len(parts) == 3:
        group, ver = parts[1], parts[2]
    else:
        return None
    types = [rt for rt in registry.all() if rt.group == group and rt.version == ver]
    if not types:
        return None
    roots = ["io.k8s.apimachinery.pkg.apis.meta.v1.Patch", "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
             "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    prefix = f"/apis/{group}/{ver}" if group else f"/api/{ver}"
    for rt in types:
        if rt.is_custom:
            def_name = _crd_def_name(rt)
            components.update(crd_definitions(rt))
            roots.append("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")
        else:
            found = schemas.def_name(rt.group, rt.version, rt.kind)
            if found is None:
                continue
            def_name = found
            roots.append(def_name)
            # The List kind (ConfigMapList, RoleList, …): kubectl looks it up to validate a `*List` file.
            listed = schemas.def_name(rt.group, rt.version, f"{rt.kind}List")
            if listed is not None:
                roots.append(listed)
        ref = "#/components/schemas/" + def_name
        base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
        paths[base] = {"get": _op(rt, "list", ref), "post": _op(rt, "post", ref, body=True)}
        paths[base + "/{name}"] = {"get": _op(rt, "get", ref), "put": _op(rt, "put", ref, body=True),
                                   "patch": _op(rt, "patch", ref, patch=True), "delete": _op(rt, "delete", ref)}
    for name in _closure(schemas.defs, roots):
        components[name] = _to_openapi(schemas.defs[name])
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{version}"}, "paths": paths,
            "components": {"schemas": components}}


def openapi_root(registry: Registry, fingerprint: str) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.group_versions().items():
        for v in versions:
            key = f"apis/{group}/{v}" if group else f"api/{v}"
            h = hashlib.sha256(f"{key}:{fingerprint}".encode()).hexdigest()[:32].upper()
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
    return {"paths": paths}
