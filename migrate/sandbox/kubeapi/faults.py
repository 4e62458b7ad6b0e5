"""Fault injection: API errors (429/5xx) for the next N matching requests, and workloads that never get
ready or whose rollout fails. Faults can be set in-process, over HTTP (/_sandbox/faults) or with an
annotation on the object itself (`sandbox.migrate.dev/fault: never-ready|failed-rollout`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .status import ApiError

FAULT_ANNOTATION = "sandbox.migrate.dev/fault"
WORKLOAD_FAULTS = ("never-ready", "failed-rollout")

_MESSAGES = {
    429: "the server has received too many requests and has asked us to try again later",
    500: "an error on the server (\"injected fault\") has prevented the request from succeeding",
    502: "the server responded with 502 Bad Gateway (injected fault)",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}


@dataclass
class ApiFault:
    code: int
    remaining: int
    resource: str | None = None  # plural, e.g. "deployments"; None matches every resource
    namespace: str | None = None
    name: str | None = None
    verbs: list[str] | None = None  # get, list, watch, create, update, patch, delete, deletecollection
    retry_after: int | None = None

    def matches(self, verb: str, resource: str | None, namespace: str | None, name: str | None) -> bool:
        return ((self.resource is None or self.resource == resource)
                and (self.namespace is None or self.namespace == namespace)
                and (self.name is None or self.name == name)
                and (self.verbs is None or verb in self.verbs))


@dataclass
class Faults:
    _api: list[ApiFault] = field(default_factory=list)
    _workloads: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Called with the (resource, namespace, name) whose workload fault was set or cleared, so the
    # controllers reconcile them now rather than at the object's next change.
    _listeners: list[Callable[[list[tuple[str, str, str]]], None]] = field(default_factory=list)

    def subscribe(self, listener: Callable[[list[tuple[str, str, str]]], None]) -> None:
        self._listeners.append(listener)

    def _changed(self, keys: list[tuple[str, str, str]]) -> None:
        for listener in list(self._listeners):
            listener(keys)

    def api_errors(self, code: int = 503, count: int = 1, *, resource: str | None = None,
                   namespace: str | None = None, name: str | None = None, verbs: list[str] | None = None,
                   retry_after: int | None = None) -> ApiFault:
        """Answer the next `count` matching requests with `code` (429 or 5xx)."""
        if code != 429 and not 500 <= code <= 599:
            raise ValueError("injected API errors must be 429 or 5xx")
        fault = ApiFault(code, count, resource, namespace, name, verbs,
                         retry_after if retry_after is not None else (1 if code == 429 else None))
        with self._lock:
            self._api.append(fault)
        return fault

    def never_ready(self, resource: str, namespace: str, name: str) -> None:
        self._set_workload(resource, namespace, name, "never-ready")

    def failed_rollout(self, resource: str, namespace: str, name: str) -> None:
        self._set_workload(resource, namespace, name, "failed-rollout")

    def _set_workload(self, resource: str, namespace: str, name: str, fault: str) -> None:
        with self._lock:
            self._workloads[(resource, namespace, name)] = fault
        self._changed([(resource, namespace, name)])

    def clear(self) -> None:
        with self._lock:
            self._api.clear()
            cleared = list(self._workloads)
            self._workloads.clear()
        self._changed(cleared)

    def check(self, verb: str, resource: str | None, namespace: str | None, name: str | None) -> None:
        """Raise the injected error if a fault matches this request, using up one of its N answers."""
        with self._lock:
            for fault in self._api:
                if fault.remaining > 0 and fault.matches(verb, resource, namespace, name):
                    fault.remaining -= 1
                    code = fault.code
                    retry = fault.retry_after
                    break
            else:
                return
            self._api = [f for f in self._api if f.remaining > 0]
        raise ApiError(code, _MESSAGES.get(code, f"injected fault {code}"), retry_after=retry,
                       details={"causes": [{"reason": "InjectedFault", "message": "sandbox fault injection"}]}
                       if code >= 500 else ({"retryAfterSeconds": retry} if retry else None))

    def workload_fault(self, resource: str, obj: dict[str, Any]) -> str | None:
        meta = obj.get("metadata") or {}
        annotated = (meta.get("annotations") or {}).get(FAULT_ANNOTATION)
        if annotated in WORKLOAD_FAULTS:
            return str(annotated)
        with self._lock:
            return self._workloads.get((resource, meta.get("namespace", ""), meta.get("name", "")))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"api": [asdict(f) for f in self._api],
                    "workloads": [{"resource": r, "namespace": ns, "name": n, "fault": f}
                                  for (r, ns, n), f in self._workloads.items()]}

    def load(self, spec: dict[str, Any]) -> None:
        """The HTTP control endpoint's body: {"api": [{code, count, ...}], "workloads": [{...}]}."""
        for a in spec.get("api") or []:
            self.api_errors(int(a.get("code", 503)), int(a.get("count", 1)), resource=a.get("resource"),
                            namespace=a.get("namespace"), name=a.get("name"), verbs=a.get("verbs"),
                            retry_after=a.get("retry_after"))
        for w in spec.get("workloads") or []:
            if w.get("fault") not in WORKLOAD_FAULTS:
                raise ValueError(f"unknown workload fault {w.get('fault')!r}; use one of {WORKLOAD_FAULTS}")
            self._set_workload(w["resource"], w.get("namespace", ""), w["name"], w["fault"])
