"""Admission-time checks: schema validation (422), unknown-field handling (fieldValidation), names,
label syntax, and the immutable fields a real server refuses to change."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import jsonschema

from .resources import ResourceType
from .status import ApiError, bad_request, invalid

if TYPE_CHECKING:
    from .schemas import SchemaValidator

Cause = tuple[str, str, str]  # (reason, field, message)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kinds whose names are DNS-1123 labels rather than subdomains.
_LABEL_NAMED = {"namespaces", "services"}
# RBAC objects allow path-segment names like "system:controller:foo".
_PATH_SEGMENT_NAMED = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}


def field_path(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def validate_name(rt: ResourceType, name: str) -> list[Cause]:
    if rt.plural in _PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            return [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": may not contain "/" or "%"')]
        return []
    if rt.plural in _LABEL_NAMED:
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return [("FieldValueInvalid", "metadata.name",
                     f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                     "alphanumeric characters or '-', and must start and end with an alphanumeric character")]
        return []
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return [("FieldValueInvalid", "metadata.name",
                 f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                 "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")]
    return []


def _qualified_name_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))


def validate_metadata(meta: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if isinstance(labels, dict):
        for k, v in labels.items():
            if not _qualified_name_ok(str(k)):
                causes.append(("FieldValueInvalid", "metadata.labels", f'Invalid value: "{k}": name part must '
                               "consist of alphanumeric characters, '-', '_' or '.'"))
            if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
                causes.append(("FieldValueInvalid", "metadata.labels",
                               f'Invalid value: "{v}": a valid label must be an empty string or consist of '
                               "alphanumeric characters, '-', '_' or '.'"))
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, dict):
        for k in annotations:
            if not _qualified_name_ok(str(k)):
                causes.append(("FieldValueInvalid", "metadata.annotations", f'Invalid value: "{k}": name part '
                               "must consist of alphanumeric characters, '-', '_' or '.'"))
    return causes


def _describe(err: jsonschema.ValidationError) -> list[Cause]:
    path = list(err.absolute_path)
    if err.validator == "required":
        m = re.match(r"^'([^']+)' is a required property", err.message)
        missing = m.group(1) if m else "?"
        return [("FieldValueRequired", field_path([*path, missing]), "Required value")]
    if err.validator == "enum":
        allowed = ", ".join(f'"{v}"' for v in (err.validator_value or []) if v is not None)
        return [("FieldValueNotSupported", field_path(path),
                 f"Unsupported value: {_quote(err.instance)}: supported values: {allowed}")]
    return [("FieldValueInvalid", field_path(path), f"Invalid value: {_quote(err.instance)}: {err.message}")]


def _quote(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, dict | list):
        return '"object"' if isinstance(v, dict) else '"array"'
    return str(v).lower() if isinstance(v, bool) else str(v)


def _unknown_fields(err: jsonschema.ValidationError) -> list[str]:
    inst = err.instance
    if not isinstance(inst, dict):
        return []
    schema = err.schema if isinstance(err.schema, dict) else {}
    known = set(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    return [k for k in inst if k not in known and not any(re.search(p, k) for p in patterns)]


def check_schema(rt: ResourceType, validator: SchemaValidator | None, obj: dict[str, Any],
                 field_validation: str) -> list[str]:
    """Validate `obj` in place. Unknown fields are removed (as decoding into Go structs would) and reported
    as warnings, or refused when fieldValidation=Strict. Returns warnings for the Warning header."""
    name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName", "")
    causes: list[Cause] = []
    unknown: list[tuple[list[Any], str]] = []
    if validator is not None:
        for err in validator.iter_errors(obj):
            if err.validator == "additionalProperties" and err.validator_value is False:
                unknown.extend((list(err.absolute_path), k) for k in _unknown_fields(err))
            else:
                causes.extend(_describe(err))
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        causes.extend(validate_metadata(meta))
    warnings = []
    if unknown:
        names = [field_path([*p, k]) for p, k in unknown]
        if field_validation == "Strict":
            msgs = ", ".join(f'unknown field "{n}"' for n in names)
            raise bad_request(f"strict decoding error: {msgs}")
        for path, key in unknown:
            parent: Any = obj
            for p in path:
                parent = parent[p]
            parent.pop(key, None)
        if field_validation != "Ignore":
            warnings = [f'unknown field "{n}"' for n in names]
    if causes:
        raise invalid(rt, name, causes)
    return warnings


def _get(obj: dict[str, Any], *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _immutable(causes: list[Cause], field: str, old: Any, new: Any, msg: str = "field is immutable") -> None:
    if old != new:
        causes.append(("FieldValueInvalid", field, f"Invalid value: {_quote(new)}: {msg}"))


def check_selector_matches_template(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Workload controllers need a selector that selects their own pod template."""
    if rt.group != "apps" or rt.kind not in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        return
    sel = _get(obj, "spec", "selector", "matchLabels") or {}
    labels = _get(obj, "spec", "template", "metadata", "labels") or {}
    if not isinstance(sel, dict) or not isinstance(labels, dict):
        return
    if any(labels.get(k) != v for k, v in sel.items()):
        name = obj["metadata"].get("name", "")
        raise invalid(rt, name, [("FieldValueInvalid", "spec.template.metadata.labels",
                                  f"Invalid value: {_labels_str(labels)}: `selector` does not match template "
                                  "`labels`")])


def _labels_str(labels: dict[str, Any]) -> str:
    return '"' + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + '"'


def check_immutable(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    causes: list[Cause] = []
    kind, group = rt.kind, rt.group
    if kind == "Service" and group == "":
        old_ip = _get(old, "spec", "clusterIP")
        if old_ip:
            _immutable(causes, "spec.clusterIP", old_ip, _get(new, "spec", "clusterIP"))
    elif group == "apps" and kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"):
        _immutable(causes, "spec.selector", _get(old, "spec", "selector"), _get(new, "spec", "selector"))
        if kind == "StatefulSet":
            allowed = {"replicas", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                       "minReadySeconds", "ordinals", "revisionHistoryLimit"}
            o = {k: v for k, v in (old.get("spec") or {}).items() if k not in allowed}
            n = {k: v for k, v in (new.get("spec") or {}).items() if k not in allowed}
            if o != n:
                causes.append(("FieldValueForbidden", "spec", "Forbidden: updates to statefulset spec for fields "
                               "other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
                               "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
    elif kind == "Job" and group == "batch":
        _immutable(causes, "spec.selector", _get(old, "spec", "selector"), _get(new, "spec", "selector"))
        _immutable(causes, "spec.template", _get(old, "spec", "template"), _get(new, "spec", "template"))
    elif kind == "PersistentVolumeClaim":
        o = {k: v for k, v in (old.get("spec") or {}).items() if k != "resources"}
        n = {k: v for k, v in (new.get("spec") or {}).items() if k != "resources"}
        if o != n:
            causes.append(("FieldValueForbidden", "spec", "Forbidden: spec is immutable after creation except "
                           "resources.requests and volumeAttributesClassName for bound claims"))
    elif kind in ("ConfigMap", "Secret") and group == "" and old.get("immutable"):
        for f in ("data", "binaryData", "stringData"):
            if old.get(f) != new.get(f):
                causes.append(("FieldValueForbidden", f, "Forbidden: field is immutable when `immutable` is set"))
        if new.get("immutable") is not True:
            causes.append(("FieldValueForbidden", "immutable", "Forbidden: field is immutable when `immutable` is set"))
    if causes:
        raise invalid(rt, old["metadata"]["name"], causes)


def required_name(rt: ResourceType, obj: dict[str, Any]) -> None:
    meta = obj.get("metadata") or {}
    if not meta.get("name"):
        raise invalid(rt, "", [("FieldValueRequired", "metadata.name", "Required value: name or generateName is "
                                "required")])
    causes = validate_name(rt, meta["name"])
    if causes:
        raise invalid(rt, meta["name"], causes)


def raise_if(cond: bool, err: ApiError) -> None:
    if cond:
        raise err
