"""Apply planned manifests to the new cluster, phase by phase, with bounded concurrency.

Strategy per object: if the new cluster already holds it and every field of the manifest already has the
manifest's value, nothing is sent (`unchanged`). If it is missing, it is created (POST). Otherwise it is
server-side applied with our field manager and `force` (the replay owns these fields). A create that meets
AlreadyExists (a resumed run, a retried timeout) falls back to apply. Re-running therefore writes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from migrate.kube.client import APPLY_PATCH, KubeApiError, KubeClient
from migrate.kube.discovery import Discovery, ResourceType, discover
from migrate.kube.objects import Key, Obj, dig, is_subset, key_of
from migrate.kube.order import CRDS, PHASE_NAMES
from migrate.kube.ready import evaluate

FIELD_MANAGER = "migrate-replay"
CREATED, UNCHANGED, UPDATED, FAILED = "created", "unchanged", "updated", "failed"


@dataclass
class Planned:
    key: Key
    obj: Obj
    phase: int
    transforms: list[str] = field(default_factory=list)
    sanitized_by: list[str] = field(default_factory=list)
    base: Obj | None = None  # the sanitized object before transforms, kept only when a transform changed it


@dataclass
class Result:
    key: Key
    action: str  # created | unchanged | updated | failed
    reason: str = ""
    phase: int = 0
    uid: str = ""
    status: int = 0  # the server's HTTP status for failures (0: decided before asking the server)

    def to_dict(self) -> dict[str, object]:
        return {"object": str(self.key), "action": self.action, "reason": self.reason,
                "phase": PHASE_NAMES[self.phase], **({"status": self.status} if self.status else {})}


OnResult = Callable[[Result], None]


@dataclass
class ApplyOptions:
    concurrency: int = 8
    field_manager: str = FIELD_MANAGER
    crd_timeout: float = 60.0
    webhook_timeout: float = 120.0
    poll: float = 0.25


class Applier:
    def __init__(self, kube: KubeClient, opts: ApplyOptions, on_result: OnResult | None = None) -> None:
        self.kube = kube
        self.opts = opts
        self._on_result = on_result
        self._lock = threading.Lock()
        self.results: list[Result] = []
        self.discovery: Discovery = Discovery()

    # ------------------------------------------------------------------ bookkeeping

    def record(self, r: Result) -> Result:
        with self._lock:
            self.results.append(r)
            if self._on_result is not None:
                self._on_result(r)
        return r

    # ------------------------------------------------------------------ one object

    def _live_index(self, items: list[Planned]) -> dict[Key, Obj]:
        """The new cluster's copies of this phase's objects, one paged list per type (not a GET per object)."""
        live: dict[Key, Obj] = {}
        wanted = {it.key for it in items}
        for t in {t for it in items if (t := self.discovery.find(it.obj["apiVersion"], it.key.kind))}:
            namespaces = {it.key.namespace for it in items if it.key.kind == t.kind and it.key.group == t.group}
            # One namespace: list just that one (cheap on a big cluster); several: one cluster-wide list.
            path = t.path(next(iter(namespaces))) if len(namespaces) == 1 and t.namespaced else t.path()
            try:
                for o in self.kube.list_pages(path):
                    k = key_of(o)
                    if k in wanted:
                        live[k] = o
            except KubeApiError as e:
                if e.status not in (403, 404, 405):
                    raise
        return live

    def _apply_patch(self, t: ResourceType, it: Planned) -> Obj:
        return self.kube.request("PATCH", t.path(it.key.namespace, it.key.name), body=it.obj,
                                 content_type=APPLY_PATCH,
                                 query={"fieldManager": self.opts.field_manager, "force": "true"})

    def _update(self, t: ResourceType, it: Planned, live: Obj) -> Result:
        if is_subset(it.obj, live):
            return Result(it.key, UNCHANGED, phase=it.phase, uid=str(dig(live, "metadata", "uid") or ""))
        out = self._apply_patch(t, it)
        same = dig(out, "metadata", "resourceVersion") == dig(live, "metadata", "resourceVersion")
        return Result(it.key, UNCHANGED if same else UPDATED, phase=it.phase, uid=str(dig(out, "metadata", "uid")))

    def apply_one(self, it: Planned, live: Obj | None) -> Result:
        t = self.discovery.find(it.obj.get("apiVersion", ""), it.key.kind)
        if t is None:
            return Result(it.key, FAILED, f"the new cluster does not serve {it.obj.get('apiVersion')} {it.key.kind}",
                          it.phase)
        try:
            if live is not None:
                return self._update(t, it, live)
            try:
                _code, out = self.kube.call("POST", t.path(it.key.namespace), body=it.obj)
                return Result(it.key, CREATED, phase=it.phase, uid=str(dig(out, "metadata", "uid") or ""))
            except KubeApiError as e:
                if e.status != 409:
                    raise
            # AlreadyExists: someone (or our own timed-out attempt) created it meanwhile.
            current = self.kube.request("GET", t.path(it.key.namespace, it.key.name))
            return self._update(t, it, current)
        except KubeApiError as e:
            return Result(it.key, FAILED, e.summary(), it.phase, status=e.status)

    # ------------------------------------------------------------------ phases

    def run_phase(self, phase: int, items: list[Planned]) -> list[Result]:
        live = self._live_index(items)
        if self.opts.concurrency <= 1 or len(items) == 1:
            return [self.record(self.apply_one(it, live.get(it.key))) for it in items]
        with ThreadPoolExecutor(max_workers=self.opts.concurrency, thread_name_prefix="replay") as pool:
            return list(pool.map(lambda it: self.record(self.apply_one(it, live.get(it.key))), items))

    def wait_established(self, results: list[Result]) -> None:
        """CRDs first, and nothing that uses them until the server serves them (Established)."""
        t = self.discovery.find("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        pending = {r.key.name: r for r in results if r.action != FAILED}
        if t is None or not pending:
            return
        deadline = time.monotonic() + self.opts.crd_timeout
        last: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                try:
                    v = evaluate(self.kube.request("GET", t.path("", name)))
                except KubeApiError as e:
                    last[name] = e.summary()
                    continue
                if v.ready:
                    del pending[name]
                else:
                    last[name] = v.reason
            if pending:
                time.sleep(self.opts.poll)
        for name, r in pending.items():
            r.action, r.reason = FAILED, f"not Established after {self.opts.crd_timeout:g}s: {last.get(name, '')}"

    def run(self, items: Iterable[Planned], before_phase: Callable[[int, list[Planned]], list[Planned]] | None = None,
            ) -> list[Result]:
        by_phase: dict[int, list[Planned]] = {}
        for it in items:
            by_phase.setdefault(it.phase, []).append(it)
        self.discovery = discover(self.kube)
        for phase in sorted(by_phase):
            batch = by_phase[phase]
            if before_phase is not None:
                batch = before_phase(phase, batch)
            if not batch:
                continue
            results = self.run_phase(phase, batch)
            if phase == CRDS:
                self.wait_established(results)
                self.discovery = discover(self.kube)  # the new types are served now
        return self.results
