"""Sandbox-level fault injection: the faults that rollback must be shown against.

- ``http_error``: a cluster's data plane answers ``status`` on a path prefix;
- ``never_ready``: a workload never turns ready (also for clusters that do not exist yet);
- ``state_write``: S3 PUTs to matching state keys fail;
- ``eks_delay``: EKS clusters (and node groups) report CREATING for N seconds after create;
- ``snapshot_pending``: EBS snapshots stay ``pending`` for N seconds after they are taken (-1: for ever),
  as a snapshot of a big or busy volume does;
- ``gke_create_error``: a GKE cluster create fails: its operation ends DONE with an error and the cluster
  goes to ERROR with that ``statusMessage`` (a quota error by default), as GKE does when it gives up.

Faults are plain data so they can travel over the control API as JSON.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class HttpFault:
    cluster: str
    path: str = "/"
    status: int = 503


@dataclass(frozen=True)
class WorkloadFault:
    cluster: str
    namespace: str
    name: str
    resource: str = "deployments"


@dataclass(frozen=True)
class StateWriteFault:
    bucket: str = ""  # empty matches every bucket
    key_contains: str = ""  # e.g. "dev-green"; empty matches every key
    count: int = -1  # how many writes fail; -1 = until cleared


GKE_QUOTA_MESSAGE = ("Insufficient regional quota to satisfy request: resource \"CPUS\": request requires "
                     "'12.0' and is short '4.0'. project has a quota of '8.0' with '8.0' available.")


@dataclass(frozen=True)
class GkeCreateFault:
    cluster: str = ""  # empty matches every cluster created from now on
    message: str = GKE_QUOTA_MESSAGE
    code: int = 8  # google.rpc.Code RESOURCE_EXHAUSTED


@dataclass
class SandboxFaults:
    http: list[HttpFault] = field(default_factory=list)
    workloads: list[WorkloadFault] = field(default_factory=list)
    state_writes: list[StateWriteFault] = field(default_factory=list)
    eks_delay: float = 0.0
    snapshot_pending: float | None = None
    gke_create: list[GkeCreateFault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def http_status(self, cluster: str, path: str) -> int | None:
        with self._lock:
            for f in self.http:
                if f.cluster == cluster and path.startswith(f.path):
                    return f.status
        return None

    def take_state_write(self, bucket: str, key: str) -> bool:
        """True when this write must fail; a counted fault is used up by it."""
        with self._lock:
            for i, f in enumerate(self.state_writes):
                if (not f.bucket or f.bucket == bucket) and f.key_contains in key:
                    if f.count > 0:
                        rest = f.count - 1
                        if rest:
                            self.state_writes[i] = StateWriteFault(f.bucket, f.key_contains, rest)
                        else:
                            del self.state_writes[i]
                    return True
        return False

    def snapshot_seconds(self, default: float) -> float:
        """How long a snapshot taken now stays pending (negative: for ever)."""
        with self._lock:
            return default if self.snapshot_pending is None else self.snapshot_pending

    def gke_create_error(self, cluster: str) -> GkeCreateFault | None:
        """The fault that makes this GKE cluster's create fail, if any."""
        with self._lock:
            return next((f for f in self.gke_create if f.cluster in ("", cluster)), None)

    def workloads_for(self, cluster: str) -> list[WorkloadFault]:
        with self._lock:
            return [w for w in self.workloads if w.cluster == cluster]

    def add(self, kind: str, spec: dict[str, Any]) -> None:
        with self._lock:
            if kind == "http":
                status = int(spec.get("status", 503))
                if not 500 <= status <= 599:
                    raise ValueError("an injected HTTP fault must be a 5xx status")
                self.http.append(HttpFault(str(spec["cluster"]), str(spec.get("path", "/")), status))
            elif kind == "never_ready":
                self.workloads.append(WorkloadFault(str(spec["cluster"]), str(spec.get("namespace", "default")),
                                                    str(spec["name"]), str(spec.get("resource", "deployments"))))
            elif kind == "state_write":
                self.state_writes.append(StateWriteFault(str(spec.get("bucket", "")), str(spec.get("key_contains", "")),
                                                         int(spec.get("count", -1))))
            elif kind == "eks_delay":
                self.eks_delay = max(0.0, float(spec["seconds"]))
            elif kind == "snapshot_pending":
                self.snapshot_pending = float(spec.get("seconds", -1))
            elif kind == "gke_create_error":
                self.gke_create.append(GkeCreateFault(str(spec.get("cluster", "")),
                                                      str(spec.get("message") or GKE_QUOTA_MESSAGE),
                                                      int(spec.get("code", 8))))
            else:
                raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")

    def clear(self) -> None:
        with self._lock:
            self.http.clear()
            self.workloads.clear()
            self.state_writes.clear()
            self.eks_delay = 0.0
            self.snapshot_pending = None
            self.gke_create.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"http": [asdict(f) for f in self.http], "never_ready": [asdict(w) for w in self.workloads],
                    "state_write": [asdict(s) for s in self.state_writes], "eks_delay": self.eks_delay,
                    "snapshot_pending": self.snapshot_pending,
                    "gke_create_error": [asdict(g) for g in self.gke_create]}


FAULT_KINDS = ("http", "never_ready", "state_write", "eks_delay", "snapshot_pending", "gke_create_error")
