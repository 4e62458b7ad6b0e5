"""The REST semantics of the API server, independent of HTTP: verbs on objects held in the Store."""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import yaml

from . import managed, patch, validation
from .defaults import IPAllocator, apply_defaults
from .faults import Faults
from .resources import REVIEW_KINDS, Registry, ResourceType
from .schemas import SchemaNode, builtin_schemas, crd_node, crd_validator
from .selectors import field_selector, label_selector
from .status import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    namespace_not_found,
    not_found,
    success,
)
from .store import Bucket, Event, Obj, Store, clone

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp",
                "deletionGracePeriodSeconds", "managedFields", "selfLink")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what apiserver's generateName uses


_now_cache: tuple[int, str] = (0, "")


def now_iso() -> str:
    global _now_cache
    now = int(time.time())
    if _now_cache[0] != now:  # one strftime a second, not one per write
        _now_cache = (now, datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _now_cache[1]


@dataclass
class Request:
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection
    rt: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = ""
    user_agent: str = ""


@dataclass
class Response:
    code: int
    body: Obj
    warnings: list[str] = field(default_factory=list)


def _omit_empty(meta: Obj) -> None:
    """ObjectMeta's maps and lists are `omitempty`: a real server stores (and returns) an emptied
    ``annotations: {}`` as no annotations at all, so `kubectl diff` sees nothing to change."""
    for key in ("annotations", "labels", "finalizers", "ownerReferences"):
        if key in meta and not meta[key]:
            del meta[key]


ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}


def review(rt: ResourceType, body: Any) -> Obj:
    """The answer to an access or identity review: the sandbox's one user is a cluster admin, so every
    request is allowed, as RBAC allows system:masters."""
    obj: Obj = dict(body) if isinstance(body, dict) else {}
    obj.update(apiVersion=rt.api_version, kind=rt.kind)
    obj.setdefault("metadata", {})
    obj["metadata"].setdefault("creationTimestamp", None)
    if rt.kind == "SelfSubjectReview":
        obj["status"] = {"userInfo": ADMIN}
    elif rt.kind == "SelfSubjectRulesReview":
        obj["status"] = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                         "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
    else:
        obj["status"] = {"allowed": True, "reason": "the sandbox's user is a cluster admin (system:masters)"}
    return obj


def parse_body(raw: bytes) -> Any:
    if not raw:
        raise bad_request("the body of the request was in an unknown format - accepted media types include: "
                          "application/json, application/yaml")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:  # what orjson refuses but Go's decoder takes: integers beyond 64 bits
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise bad_request(f"error decoding YAML: {e}") from e


def _manager(req: Request, default_op: str) -> str:
    fm = req.query.get("fieldManager")
    if fm:
        return fm
    # The real server derives the manager from the user agent's program name.
    ua = req.user_agent.split("/", 1)[0].strip()
    return ua or default_op


def _bucket(rt: ResourceType) -> Bucket:
    return (rt.group, rt.plural)


def _spec_of(obj: Obj) -> Obj:
    """Everything that bumps `generation` when it changes: all but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class KubeAPI:
    def __init__(self, version: str = "1.29", faults: Faults | None = None, event_log_size: int = 100_000) -> None:
        self.version = version
        self.registry = Registry()
        self.store = Store(event_log_size)
        self.faults = faults or Faults()
        self.schemas = builtin_schemas(version)
        self.ips = IPAllocator()
        self._crd_validators: dict[tuple[str, str, str], Any] = {}
        # Hooks the controllers install: called after a CRD is created/changed/deleted.
        self.on_crd_change: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ helpers

    def schema_node(self, rt: ResourceType) -> SchemaNode | None:
        if rt.crd_schema is not None:
            return crd_node(rt.crd_schema)
        return self.schemas.node(rt.group, rt.version, rt.kind)

    def _validator(self, rt: ResourceType) -> Any:
        if rt.crd_schema is not None:
            key = (rt.group, rt.version, rt.plural)
            v = self._crd_validators.get(key)
            if v is None:
                v = crd_validator(rt.crd_schema)
                self._crd_validators[key] = v
            return v
        return self.schemas.validator(rt.group, rt.version, rt.kind)

    def present(self, rt: ResourceType, obj: Obj) -> Obj:
        """The object as a client of rt's version sees it (CRDs use the `None` conversion strategy)."""
        if obj.get("apiVersion") == rt.api_version and obj.get("kind") == rt.kind:
            return obj
        return {**obj, "apiVersion": rt.api_version, "kind": rt.kind}

    def _namespace_of(self, req: Request) -> str:
        return req.namespace if req.rt.namespaced else ""

    def _require_namespace(self, ns: str, creating: bool) -> None:
        nsobj = self.store.get(("", "namespaces"), "", ns)
        if nsobj is None:
            raise namespace_not_found(ns)
        if creating and nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, f"unable to create new content in namespace {ns} because it is being terminated",
                           "Forbidden", {"name": ns, "kind": "namespaces", "causes": [
                               {"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated",
                                "field": "metadata.namespace"}]})

    def _check_type(self, rt: ResourceType, obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise bad_request(f"the body of the request was not a {rt.kind} object")
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if kind and kind != rt.kind:
            raise bad_request(f"the server could not find the requested resource (kind {kind} in the body does not "
                              f"match {rt.kind})")
        if av and av != rt.api_version:
            raise bad_request(f"the API version in the data ({av}) does not match the expected API version "
                              f"({rt.api_version})")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        return obj

    def _dry_run(self, req: Request, body: Obj | None = None) -> bool:
        if req.query.get("dryRun") == "All":
            return True
        if body and body.get("dryRun") == ["All"]:
            return True
        if req.query.get("dryRun"):
            raise bad_request(f"unsupported dryRun value {req.query['dryRun']!r}; only All is supported")
        return False

    def _admit(self, req: Request, obj: Obj) -> list[str]:
        """Schema validation and the server's own checks, for a complete object about to be stored."""
        rt = req.rt
        validation.required_name(rt, obj)
        fv = req.query.get("fieldValidation", "Warn")
        if fv not in ("Strict", "Warn", "Ignore"):
            raise bad_request(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got {fv!r}')
        # Status written by controllers is not the client's input; the real server does not check it here.
        held = obj.pop("status", None) if "status" in rt.subresources and req.subresource != "status" else None
        try:
            warnings = validation.check_schema(rt, self._validator(rt), obj, fv)
        finally:
            if held is not None:
                obj["status"] = held
        validation.check_selector_matches_template(rt, obj)
        if rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition":
            self._validate_crd(rt, obj)
        return warnings

    def handle(self, req: Request) -> Response:
        self.faults.check(req.verb, req.rt.plural, req.namespace or None, req.name or None)
        if req.verb == "get":
            return Response(200, self.get(req))
        if req.verb == "list":
            return Response(200, self.list_objects(req))
        if req.verb == "create" and req.rt.kind in REVIEW_KINDS:
            return Response(201, review(req.rt, parse_body(req.body)))
        if req.verb == "create":
            return self.create(req)
        if req.verb == "update":
            return self.update(req)
        if req.verb == "patch":
            return self.patch(req)
        if req.verb == "delete":
            return self.delete(req)
        if req.verb == "deletecollection":
            return self.delete_collection(req)
        raise ApiError(405, f"the server does not allow this method on the requested resource ({req.verb})")

    # ------------------------------------------------------------------ reads

    def _get_live(self, req: Request) -> Obj:
        ns = self._namespace_of(req)
        obj = self.store.get(_bucket(req.rt), ns, req.name)
        if obj is None:
            raise not_found(req.rt, req.name)
        return obj

    def get(self, req: Request) -> Obj:
        obj = self._get_live(req)
        if req.subresource == "scale":
            return self._scale_of(req.rt, obj)
        return self.present(req.rt, obj)

    def _matcher(self, req: Request) -> Callable[[Obj], bool]:
        lsel = label_selector(req.query.get("labelSelector"))
        fsel = field_selector(req.query.get("fieldSelector"), req.rt.plural, req.rt.is_custom)
        return lambda o: lsel((o.get("metadata") or {}).get("labels") or {}) and fsel(o)

    def list_objects(self, req: Request) -> Obj:
        rt = req.rt
        match = self._matcher(req)
        ns = req.namespace if rt.namespaced and req.namespace else None
        limit = int(req.query.get("limit") or 0)
        start: tuple[str, str] | None = None
        token = req.query.get("continue")
        with self.store.lock:
            rv = self.store.resource_version
            items = self.store.objects(_bucket(rt), ns)
        if token:
            try:
                state = json.loads(base64.b64decode(token))
                start = (state["start"][0], state["start"][1])
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise bad_request(f"continue key is not valid: {e}") from e
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        matched = [o for o in items if match(o)]
        meta: Obj = {"resourceVersion": str(rv)}
        if limit and len(matched) > limit:
            last = matched[limit - 1]["metadata"]
            meta["continue"] = base64.b64encode(json.dumps(
                {"rv": rv, "start": [last.get("namespace", ""), last["name"]]}).encode()).decode()
            meta["remainingItemCount"] = len(matched) - limit
            matched = matched[:limit]
        if rt.is_custom:
            out_items = [self.present(rt, o) for o in matched]
        else:
            # Typed lists carry kind/apiVersion only on the list, as a real server encodes them.
            out_items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in matched]
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": out_items}

    def watch(self, req: Request, default_timeout: float = 1800.0) -> Generator[Obj | None, None, None]:
        """Yield watch events ({"type", "object"}); None is a heartbeat so callers can notice hang-ups."""
        rt = req.rt
        match = self._matcher(req)
        ns = req.namespace if rt.namespaced and req.namespace else None
        timeout = float(req.query.get("timeoutSeconds") or default_timeout)
        deadline = time.monotonic() + timeout
        rv_param = req.query.get("resourceVersion", "")
        bucket = _bucket(rt)
        initial: list[Obj] = []
        with self.store.lock:
            if rv_param in ("", "0"):
                initial = [o for o in self.store.objects(bucket, ns) if match(o)]
                last = self.store.resource_version
            else:
                try:
                    last = int(rv_param)
                except ValueError as e:
                    raise bad_request(f"invalid resource version: {rv_param!r}") from e
                if last < self.store.compacted_rv:
                    yield {"type": "ERROR", "object": ApiError(
                        410, f"too old resource version: {last} ({self.store.compacted_rv})", "Expired").status()}
                    return
        for o in initial:
            yield {"type": "ADDED", "object": self.present(rt, o)}
        while True:
            with self.store.lock:
                events = self.store.events_after(last)
                if not events and not self.store.closed:
                    remaining = deadline - time.monotonic()
                    if remaining > 0:
                        self.store.changed.wait(min(remaining, 1.0))
                        events = self.store.events_after(last)
                closed = self.store.closed
            for ev in events:
                last = ev.rv
                out = self._watch_event(ev, bucket, ns, match)
                if out is not None:
                    yield {"type": out[0], "object": self.present(rt, out[1])}
            if closed or time.monotonic() >= deadline:
                return
            if not events:
                yield None

    @staticmethod
    def _watch_event(ev: Event, bucket: Bucket, ns: str | None,
                     match: Callable[[Obj], bool]) -> tuple[str, Obj] | None:
        if ev.bucket != bucket or (ns is not None and ev.namespace != ns):
            return None
        if ev.type == "ADDED":
            return ("ADDED", ev.obj) if match(ev.obj) else None
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if match(ev.obj) else None
        now_m, was_m = match(ev.obj), ev.prev is not None and match(ev.prev)
        if now_m and was_m:
            return ("MODIFIED", ev.obj)
        if now_m:
            return ("ADDED", ev.obj)
        if was_m:
            return ("DELETED", ev.obj)
        return None

    # ------------------------------------------------------------------ writes

    def create(self, req: Request) -> Response:
        rt = req.rt
        if req.subresource:
            raise ApiError(405, f"the server does not allow this method on the requested resource "
                                f"({rt.plural}/{req.subresource})", "MethodNotAllowed")
        obj = self._check_type(rt, parse_body(req.body))
        return self._create_obj(req, obj, _manager(req, "create"), "Update")

    def _create_obj(self, req: Request, obj: Obj, manager: str, operation: str,
                    managed_fields: list[Obj] | None = None) -> Response:
        rt = req.rt
        meta = obj["metadata"]
        ns = self._namespace_of(req)
        if rt.namespaced:
            if meta.get("namespace") and req.namespace and meta["namespace"] != req.namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            if not ns:
                raise bad_request("the server could not find the requested resource: namespace is required")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise ApiError(500, "resourceVersion should not be set on objects to be created", "InternalError")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
        for k in _SERVER_META:
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        if "status" in rt.subresources and rt.kind not in ("Namespace",):
            obj.pop("status", None)  # status is written through the status subresource only
            if not rt.is_custom:
                obj["status"] = {}  # Go structs serialise an empty status as {}
        dry = self._dry_run(req)
        warnings = self._admit(req, obj)
        apply_defaults(rt.group, rt.kind, obj, self.ips)
        _omit_empty(meta)
        with self.store.lock:
            if rt.namespaced:
                self._require_namespace(ns, creating=True)
            if self.store.get(_bucket(rt), ns, meta["name"]) is not None:
                raise already_exists(rt, meta["name"])
            if managed_fields is not None:
                meta["managedFields"] = managed_fields
            else:
                managed.record_update(None, obj, manager, rt.api_version, meta["creationTimestamp"],
                                      self.schema_node(rt))
            if rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition" and not dry:
                self._crd_established(obj)
            if dry:
                return Response(201, self.present(rt, obj), warnings)
            stored = self.store.put(_bucket(rt), obj)
            if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
                self._register_crd(stored)
        return Response(201, self.present(rt, stored), warnings)

    def update(self, req: Request) -> Response:
        new = self._check_type(req.rt, parse_body(req.body))
        if new["metadata"].get("name") and new["metadata"]["name"] != req.name:
            raise bad_request(f"the name of the object ({new['metadata']['name']}) does not match the name on the "
                              f"URL ({req.name})")
        with self.store.lock:
            old = self._get_live(req)
            if req.subresource == "scale":
                return self._write_scale(req, old, new)
            return self._write(req, old, new, _manager(req, "update"))

    def _write(self, req: Request, old: Obj, new: Obj, manager: str, applied: bool = False) -> Response:
        """Replace `old` with `new` (a full object from PUT or a patch). Caller holds the store lock."""
        rt = req.rt
        new = clone(new)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        want_rv = meta.get("resourceVersion")
        if want_rv and want_rv != old_meta["resourceVersion"]:
            raise conflict(rt, req.name, "the object has been modified; please apply your changes to the latest "
                                         "version and try again")
        meta["name"] = old_meta["name"]
        if rt.namespaced:
            meta["namespace"] = old_meta["namespace"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if not applied:
            meta.pop("managedFields", None)
        status_sub = req.subresource == "status"
        if status_sub:
            # Only status changes through /status; everything else stays as stored.
            new = {**clone(old), "status": new.get("status")}
            if new["status"] is None:
                new.pop("status")
            meta = new["metadata"]
        elif "status" in rt.subresources:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        if rt.kind == "Service" and rt.group == "":
            self._carry_service_allocations(old, new)
        warnings = self._admit(req, new)
        apply_defaults(rt.group, rt.kind, new, self.ips)
        validation.check_immutable(rt, old, new)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise invalid(rt, req.name, [("FieldValueForbidden", "metadata.finalizers",
                                              f"Forbidden: no new finalizers can be added if the object is being "
                                              f"deleted, found new finalizers {sorted(added)!r}")])
        _omit_empty(meta)
        if not status_sub and _spec_of(new) != _spec_of(old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        now = now_iso()
        if not applied:
            managed.record_update(old, new, manager, rt.api_version, now, self.schema_node(rt), req.subresource)
        # A no-op write does not bump resourceVersion, as on a real server.
        if _strip_rv(new) == _strip_rv(old):
            return Response(200, self.present(rt, old), warnings)
        if self._dry_run(req):
            meta["resourceVersion"] = old_meta["resourceVersion"]
            return Response(200, self.present(rt, new), warnings)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and rt.kind != "Namespace":
            gone = self.store.remove(_bucket(rt), meta.get("namespace", ""), meta["name"])
            self._after_delete(rt, gone or new)
            return Response(200, self.present(rt, new), warnings)
        stored = self.store.put(_bucket(rt), new)
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self._register_crd(stored)
        return Response(200, self.present(rt, stored), warnings)

    @staticmethod
    def _carry_service_allocations(old: Obj, new: Obj) -> None:
        """Like the real service REST: an update without clusterIP/nodePort keeps the allocated ones."""
        ospec, nspec = old.get("spec") or {}, new.setdefault("spec", {})
        if not nspec.get("clusterIP") and ospec.get("clusterIP"):
            nspec["clusterIP"] = ospec["clusterIP"]
            if not nspec.get("clusterIPs") and ospec.get("clusterIPs"):
                nspec["clusterIPs"] = ospec["clusterIPs"]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in ospec.get("ports") or []}
        if nspec.get("type", "ClusterIP") in ("NodePort", "LoadBalancer"):
            for p in nspec.get("ports") or []:
                if isinstance(p, dict) and not p.get("nodePort"):
                    np = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                    if np:
                        p["nodePort"] = np

    def patch(self, req: Request) -> Response:
        rt = req.rt
        ctype = req.content_type.split(";")[0].strip()
        if ctype not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                                f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}"
                                + ("" if rt.is_custom else f", {STRATEGIC_PATCH}"), "UnsupportedMediaType")
        if ctype == STRATEGIC_PATCH and rt.is_custom:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                                f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}", "UnsupportedMediaType")
        body = parse_body(req.body)
        if ctype == APPLY_PATCH:
            return self._apply(req, body)
        with self.store.lock:
            old = self._get_live(req)
            # Patch a private copy: stored objects are shared with readers and must never change in place.
            base = clone(self._scale_of(rt, old) if req.subresource == "scale" else self.present(rt, old))
            try:
                if ctype == JSON_PATCH:
                    new = patch.json_patch(base, body)
                elif ctype == MERGE_PATCH:
                    new = patch.merge_patch(base, body)
                else:
                    meta = None if req.subresource == "scale" else self.schema_node(rt)
                    new = patch.strategic_merge(base, body, meta)
            except patch.PatchError as e:
                raise ApiError(422, str(e), "Invalid") from e
            if not isinstance(new, dict):
                raise bad_request("the patch produced something that is not an object")
            if req.subresource == "scale":
                return self._write_scale(req, old, new)
            if req.subresource != "status":
                # A patch that leaves resourceVersion as it was is not a precondition.
                nm = new.get("metadata") or {}
                if nm.get("resourceVersion") == old["metadata"]["resourceVersion"]:
                    nm.pop("resourceVersion", None)
            return self._write(req, old, new, _manager(req, "patch"))

    def _apply(self, req: Request, body: Any) -> Response:
        rt = req.rt
        manager = req.query.get("fieldManager")
        if not manager:
            raise bad_request("PATCH, application/apply-patch+yaml: fieldManager is required")
        force = req.query.get("force") in ("true", "1")
        applied = self._check_type(rt, body)
        if applied["metadata"].get("name") and applied["metadata"]["name"] != req.name:
            raise bad_request(f"the name of the object ({applied['metadata']['name']}) does not match the name on "
                              f"the URL ({req.name})")
        applied["metadata"]["name"] = req.name
        now = now_iso()
        node = self.schema_node(rt)
        with self.store.lock:
            old = self.store.get(_bucket(rt), self._namespace_of(req), req.name)
            if old is None:
                if req.subresource:
                    raise not_found(rt, req.name)
                new = managed.apply(None, applied, manager, force, rt.api_version, now, node)
                mf = new["metadata"].pop("managedFields")
                return self._create_obj(req, new, manager, "Apply", managed_fields=mf)
            if applied["metadata"].get("resourceVersion") and \
                    applied["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(rt, req.name, "the object has been modified; please apply your changes to the "
                                             "latest version and try again")
            applied["metadata"].pop("resourceVersion", None)
            try:
                new = managed.apply(self.present(rt, old), applied, manager, force, rt.api_version, now, node,
                                    req.subresource)
            except managed.ApplyConflict as e:
                n = len(e.conflicts)
                lines = [f'conflict with "{m}" using {av}: {p}' for m, av, p in e.conflicts]
                msg = (f"Apply failed with {n} conflict{'s' if n > 1 else ''}: " + "\n".join(lines)) if n > 1 \
                    else f"Apply failed with 1 conflict: {lines[0]}"
                raise ApiError(409, msg, "Conflict", {
                    "name": req.name, "kind": rt.plural, **({"group": rt.group} if rt.group else {}),
                    "causes": [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {av}',
                                "field": p} for m, av, p in e.conflicts]}) from e
            return self._write(req, old, new, manager, applied=True)

    # ------------------------------------------------------------------ scale

    def _scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        if "scale" not in rt.subresources:
            raise not_found(rt, obj["metadata"]["name"])
        spec_path, status_path = rt.scale_paths or (".spec.replicas", ".status.replicas")
        meta = obj["metadata"]
        sel = ((obj.get("spec") or {}).get("selector") or {})
        labels = sel.get("matchLabels") if isinstance(sel, dict) and "matchLabels" in sel else sel
        selector = ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) if isinstance(labels, dict) else ""
        scale: Obj = {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": _dig(obj, spec_path) or 0},
            "status": {"replicas": _dig(obj, status_path) or 0},
        }
        if selector:
            scale["status"]["selector"] = selector
        return scale

    def _write_scale(self, req: Request, old: Obj, scale: Obj) -> Response:
        rt = req.rt
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(rt, req.name, [("FieldValueInvalid", "spec.replicas",
                                          f"Invalid value: {replicas}: must be greater than or equal to 0")])
        want_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt, req.name, "the object has been modified; please apply your changes to the latest "
                                         "version and try again")
        new = clone(old)
        spec_path = (rt.scale_paths or (".spec.replicas", ""))[0]
        _set(new, spec_path, replicas)
        sub_req = Request("update", rt, req.namespace, req.name, "", req.query, b"", "", req.user_agent)
        resp = self._write(sub_req, old, new, _manager(req, "scale"))
        if resp.code < 300:
            resp.body = self._scale_of(rt, self._get_live(req)) if not self._dry_run(req) else \
                self._scale_of(rt, resp.body)
        return resp

    # ------------------------------------------------------------------ delete

    def delete(self, req: Request) -> Response:
        rt = req.rt
        opts = parse_body(req.body) if req.body.strip() else {}
        if not isinstance(opts, dict):
            opts = {}
        policy = opts.get("propagationPolicy") or req.query.get("propagationPolicy") or "Background"
        if opts.get("orphanDependents") is True:
            policy = "Orphan"
        with self.store.lock:
            old = self._get_live(req)
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise conflict(rt, req.name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                                             f"object meta: {old['metadata']['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(rt, req.name, f"Precondition failed: ResourceVersion in precondition: "
                                             f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                             f"{old['metadata']['resourceVersion']}")
            dry = self._dry_run(req, opts)
            return self._delete_obj(rt, old, policy, dry)

    def _delete_obj(self, rt: ResourceType, old: Obj, policy: str, dry: bool) -> Response:
        meta = old["metadata"]
        pending = bool(meta.get("finalizers")) or (rt.kind == "Namespace" and rt.group == "")
        if pending:
            if meta.get("deletionTimestamp"):
                return Response(200, self.present(rt, old))
            new = clone(old)
            nm = new["metadata"]
            nm["deletionTimestamp"] = now_iso()
            nm["deletionGracePeriodSeconds"] = 0
            nm["generation"] = int(nm.get("generation", 1)) + 1
            if rt.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
            if policy == "Orphan":
                nm["finalizers"] = [*nm.get("finalizers", []), "orphan"]
            if dry:
                return Response(200, self.present(rt, new))
            return Response(200, self.present(rt, self.store.put(_bucket(rt), new)))
        if dry:
            return Response(200, success(rt, meta["name"], meta["uid"]))
        if policy == "Foreground":
            self.collect_dependents(meta["uid"], "Background")
        gone = self.store.remove(_bucket(rt), meta.get("namespace", ""), meta["name"])
        self._after_delete(rt, gone or old, policy)
        return Response(200, success(rt, meta["name"], meta["uid"]))

    def _after_delete(self, rt: ResourceType, gone: Obj, policy: str = "Background") -> None:
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            for crt in self.registry.remove_crd(gone["metadata"]["name"]):
                self.store.drop_bucket(_bucket(crt))
            for fn in self.on_crd_change:
                fn()
        self.collect_dependents(gone["metadata"]["uid"], policy)

    def collect_dependents(self, owner_uid: str, policy: str) -> None:
        """The garbage collector, done synchronously: dependents go with their owner (or are orphaned)."""
        with self.store.lock:
            for rt in self.registry.all():
                for obj in self.store.objects(_bucket(rt)):
                    refs = obj["metadata"].get("ownerReferences") or []
                    if not any(r.get("uid") == owner_uid for r in refs):
                        continue
                    if policy == "Orphan" or len(refs) > 1:
                        new = clone(obj)
                        new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                        if not new["metadata"]["ownerReferences"]:
                            new["metadata"].pop("ownerReferences")
                        self.store.put(_bucket(rt), new)
                    else:
                        self._delete_obj(rt, obj, "Background", False)

    def delete_collection(self, req: Request) -> Response:
        rt = req.rt
        lst = self.list_objects(Request("list", rt, req.namespace, query={
            k: v for k, v in req.query.items() if k in ("labelSelector", "fieldSelector")}))
        opts = parse_body(req.body) if req.body.strip() else {}
        policy = (opts or {}).get("propagationPolicy") or req.query.get("propagationPolicy") or "Background"
        dry = self._dry_run(req, opts if isinstance(opts, dict) else None)
        items = []
        with self.store.lock:
            for item in lst["items"]:
                live = self.store.get(_bucket(rt), item["metadata"].get("namespace", ""), item["metadata"]["name"])
                if live is not None:
                    self._delete_obj(rt, live, policy, dry)
                    items.append(self.present(rt, live))
        return Response(200, {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                              "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items})

    # ------------------------------------------------------------------ internal writes (controllers)

    def update_internal(self, rt: ResourceType, namespace: str, name: str, mutate: Callable[[Obj], None],
                        manager: str = "kube-controller-manager", subresource: str = "status") -> Obj | None:
        """Read-modify-write without admission, as a controller does through the status subresource.
        Returns None when the object is gone or nothing changed."""
        with self.store.lock:
            old = self.store.get(_bucket(rt), namespace, name)
            if old is None:
                return None
            new = clone(old)
            mutate(new)
            if new == old:
                return None
            managed.record_update(old, new, manager, rt.api_version, now_iso(), self.schema_node(rt), subresource)
            return self.store.put(_bucket(rt), new)

    def delete_internal(self, rt: ResourceType, namespace: str, name: str) -> None:
        with self.store.lock:
            old = self.store.get(_bucket(rt), namespace, name)
            if old is not None:
                self._delete_obj(rt, old, "Background", False)

    def create_internal(self, rt: ResourceType, obj: Obj, manager: str = "kube-controller-manager") -> Obj | None:
        req = Request("create", rt, obj["metadata"].get("namespace", ""), query={"fieldManager": manager})
        try:
            return self._create_obj(req, clone(obj), manager, "Update").body
        except ApiError:
            return None

    # ------------------------------------------------------------------ CRDs

    def _validate_crd(self, rt: ResourceType, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        name = obj["metadata"].get("name", "")
        causes: list[tuple[str, str, str]] = []
        if name != f"{names.get('plural', '')}.{group}":
            causes.append(("FieldValueInvalid", "metadata.name",
                           f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
        versions = spec.get("versions") or []
        if sum(1 for v in versions if v.get("storage")) != 1:
            causes.append(("FieldValueInvalid", "spec.versions",
                           "Invalid value: must have exactly one version marked as storage version"))
        if causes:
            raise invalid(rt, name, causes)

    @staticmethod
    def _crd_established(obj: Obj) -> None:
        spec = obj.get("spec") or {}
        now = now_iso()
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        obj["status"] = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
        }

    def _register_crd(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        types = []
        versions = sorted(spec.get("versions") or [], key=lambda v: not v.get("storage"))
        for v in versions:
            if not v.get("served", True):
                continue
            schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object",
                                                                         "x-kubernetes-preserve-unknown-fields": True}
            subs = v.get("subresources") or {}
            sub_names = tuple(s for s in ("status", "scale") if s in subs)
            scale = subs.get("scale")
            scale_paths = (scale.get("specReplicasPath", ".spec.replicas"),
                           scale.get("statusReplicasPath", ".status.replicas")) if scale else None
            types.append(ResourceType(
                spec.get("group", ""), v["name"], names.get("plural", ""), names.get("kind", ""),
                spec.get("scope", "Namespaced") == "Namespaced", tuple(names.get("shortNames") or ()),
                names.get("singular", "") or str(names.get("kind", "")).lower(), sub_names,
                categories=tuple(names.get("categories") or ()), crd_schema=schema, scale_paths=scale_paths))
            self._crd_validators.pop((spec.get("group", ""), v["name"], names.get("plural", "")), None)
        self.registry.set_crd(crd["metadata"]["name"], types)
        for fn in self.on_crd_change:
            fn()


def _dig(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.strip(".").split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _set(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def _strip_rv(obj: Obj) -> Obj:
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}

