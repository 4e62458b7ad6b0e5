"""GKE through google-cloud-container (REST transport): read, create, readiness, delete."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from migrate.cloud.gcp.auth import credentials
from migrate.cloud.poll import poll
from migrate.config import GcpTarget, GkeSettings
from migrate.errors import CredentialsError, ProviderError


@dataclass(frozen=True)
class NodePoolSpec:
    name: str
    machine_type: str
    node_count: int


@dataclass(frozen=True)
class GkeClusterSpec:
    name: str
    version: str | None
    network: str | None
    subnetwork: str | None
    node_pools: list[NodePoolSpec]
    release_channel: str | None
    labels: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GkeClusterSpec:
        return cls(**{**d, "node_pools": [NodePoolSpec(**p) for p in d.get("node_pools", [])]})


@dataclass(frozen=True)
class GkeStatus:
    status: str | None
    endpoint: str | None = None
    ca_data: str | None = None
    node_pools: dict[str, str] = field(default_factory=dict)
    # Parts GKE gave up on (cluster or node pool in ERROR), with GKE's statusMessage.
    failures: list[str] = field(default_factory=list)

    def missing(self, spec: GkeClusterSpec) -> list[str]:
        out = []
        if self.status != "RUNNING":
            out.append(f"cluster {spec.name} is {self.status or 'absent'}")
        for p in spec.node_pools:
            st = self.node_pools.get(p.name)
            if st != "RUNNING":
                out.append(f"node pool {p.name} is {st or 'absent'}")
        return out


@contextmanager
def gcp_errors(doing: str, where: str | None = None) -> Iterator[None]:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as aexc

    try:
        yield
    except (gexc.Unauthenticated, gexc.PermissionDenied, aexc.DefaultCredentialsError) as e:
        raise CredentialsError(f"Google refused the credentials while {doing}: {e}", where=where,
                               hint="check GOOGLE_APPLICATION_CREDENTIALS and the account's roles") from e
    except (gexc.TooManyRequests, gexc.ServiceUnavailable, gexc.InternalServerError, gexc.GatewayTimeout,
            gexc.DeadlineExceeded) as e:
        raise ProviderError(f"GKE is busy or failing while {doing}: {e}", where=where, retryable=True) from e
    except gexc.GoogleAPICallError as e:
        raise ProviderError(f"GKE error while {doing}: {e}", where=where) from e
    except (aexc.TransportError, ConnectionError, OSError) as e:
        raise ProviderError(f"GKE endpoint unreachable while {doing}: {e}", where=where, retryable=True,
                            hint="check the network and gcp.endpoint") from e


def _status_name(value: Any) -> str:
    return str(getattr(value, "name", value))


# Node pool states in which GKE runs an operation on the cluster: another one would be refused.
_POOL_BUSY = {"PROVISIONING", "RECONCILING", "STOPPING"}


def _reason(obj: Any) -> str:
    """GKE's reason for a cluster or node pool in ERROR: statusMessage, then its conditions."""
    parts = [str(obj.status_message)] if getattr(obj, "status_message", "") else []
    parts += [str(c.message) for c in getattr(obj, "conditions", []) or [] if c.message]
    return "; ".join(dict.fromkeys(parts)) or "GKE gives no statusMessage for it"


def precondition_failed(e: BaseException) -> bool:
    """True for GKE's FAILED_PRECONDITION (e.g. "cluster is running incompatible operation")."""
    from google.api_core import exceptions as gexc

    cause = e.__cause__ if isinstance(e, ProviderError) else e
    if isinstance(cause, gexc.FailedPrecondition):
        return True
    if not isinstance(cause, gexc.GoogleAPICallError):
        return False
    # Over REST a 400 becomes BadRequest whatever its status; the body says FAILED_PRECONDITION.
    response = getattr(cause, "response", None)
    try:
        return bool(response is not None and response.json()["error"]["status"] == "FAILED_PRECONDITION")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


class Gke:
    def __init__(self, target: GcpTarget, *, poll_interval: float = 5.0, delete_timeout: float = 1800.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from google.cloud import container_v1

        self.poll_interval = poll_interval
        self.delete_timeout = delete_timeout
        self.sleep = sleep
        self.target = target
        self.parent = f"projects/{target.project}/locations/{target.location}"
        options = {"api_endpoint": target.endpoint} if target.endpoint else None
        with gcp_errors("creating the GKE client", where=self.parent):
            self.client = container_v1.ClusterManagerClient(
                credentials=credentials(target.endpoint), transport="rest", client_options=options)
        self._types = container_v1

    def _name(self, cluster: str) -> str:
        return f"{self.parent}/clusters/{cluster}"

    def get(self, cluster: str) -> Any | None:
        from google.api_core import exceptions as gexc

        try:
            with gcp_errors("reading the cluster", where=self._name(cluster)):
                return self.client.get_cluster(name=self._name(cluster))
        except ProviderError as e:
            if isinstance(e.__cause__, gexc.NotFound):
                return None
            raise

    def spec_from_old(self, old_name: str, new_name: str, version: str | None,
                      settings: GkeSettings | None) -> GkeClusterSpec:
        s = settings or GkeSettings()
        old = self.get(old_name)
        if old is None:
            raise ProviderError(f"the old cluster {old_name} does not exist", where=self._name(old_name),
                                hint="check clusters.old.name, gcp.project and gcp.location")
        pools = ([NodePoolSpec(p.name, p.machine_type, p.node_count) for p in s.node_pools]
                 if s.node_pools is not None else
                 [NodePoolSpec(p.name, p.config.machine_type or "e2-standard-4", int(p.initial_node_count or 1))
                  for p in old.node_pools])
        channel = s.release_channel or (_status_name(old.release_channel.channel)
                                        if old.release_channel and old.release_channel.channel else None)
        if channel == "UNSPECIFIED":
            channel = None
        return GkeClusterSpec(
            name=new_name, version=version or old.current_master_version or None,
            network=s.network or old.network or None, subnetwork=s.subnetwork or old.subnetwork or None,
            node_pools=pools, release_channel=channel,
            labels={**dict(old.resource_labels), **s.labels, "migrate-replaces": old_name},
        )

    def status(self, spec: GkeClusterSpec) -> GkeStatus:
        c = self.get(spec.name)
        if c is None:
            return GkeStatus(status=None)
        status = _status_name(c.status)
        failures = [f"GKE cluster {spec.name} is {status}: {_reason(c)}"] if status == "ERROR" else []
        if not failures:  # pools of a cluster in ERROR share its reason: name them only on their own
            failures = [f"node pool {p.name} of GKE cluster {spec.name} is ERROR: {_reason(p)}"
                        for p in c.node_pools if _status_name(p.status) == "ERROR"]
        return GkeStatus(status=status, endpoint=c.endpoint or None,
                         ca_data=(c.master_auth.cluster_ca_certificate or None) if c.master_auth else None,
                         node_pools={p.name: _status_name(p.status) for p in c.node_pools}, failures=failures)

    def create(self, spec: GkeClusterSpec) -> str | None:
        """Start creating the cluster; returns the operation name, or None if it already exists."""
        if self.get(spec.name) is not None:
            return None
        t = self._types
        cluster = t.Cluster(
            name=spec.name,
            initial_cluster_version=spec.version or "",
            network=spec.network or "",
            subnetwork=spec.subnetwork or "",
            resource_labels=spec.labels,
            node_pools=[self._pool(p) for p in spec.node_pools],
        )
        if spec.release_channel:
            cluster.release_channel = t.ReleaseChannel(channel=t.ReleaseChannel.Channel[spec.release_channel])
        with gcp_errors("creating the cluster", where=self._name(spec.name)):
            op = self.client.create_cluster(parent=self.parent, cluster=cluster)
        return str(op.name)

    def _pool(self, p: NodePoolSpec) -> Any:
        t = self._types
        return t.NodePool(name=p.name, initial_node_count=p.node_count,
                          config=t.NodeConfig(machine_type=p.machine_type))

    def create_missing_node_pool(self, spec: GkeClusterSpec) -> str | None:
        """Start creating one node pool of the spec that the RUNNING cluster lacks (a resumed run, a pool
        deleted by hand). GKE runs one operation per cluster at a time, so one pool per call, none while a
        pool is still changing. Returns the operation name, or None when nothing was started."""
        c = self.get(spec.name)
        if c is None or _status_name(c.status) != "RUNNING":
            return None
        have = {p.name: _status_name(p.status) for p in c.node_pools}
        if any(st in _POOL_BUSY for st in have.values()):
            return None
        for p in spec.node_pools:
            if p.name in have:
                continue
            try:
                with gcp_errors(f"creating node pool {p.name}", where=self._name(spec.name)):
                    op = self.client.create_node_pool(parent=self._name(spec.name), node_pool=self._pool(p))
            except ProviderError as e:
                if precondition_failed(e):  # another operation runs on the cluster: next time
                    return None
                raise
            return str(op.name)
        return None

    def operation_done(self, op_name: str, cluster: str | None = None) -> tuple[bool, str]:
        """(done, status) of an operation; a failed or aborted one raises a permanent ProviderError."""
        name = op_name if op_name.startswith("projects/") else f"{self.parent}/operations/{op_name}"
        with gcp_errors("reading the operation", where=name):
            op = self.client.get_operation(name=name)
        status = _status_name(op.status)
        what = f"GKE operation {op_name.rsplit('/', 1)[-1]} ({_status_name(op.operation_type)})"
        if cluster:
            what += f" for cluster {cluster}"
        reason = (op.error.message if op.error and op.error.message else "") or op.status_message
        if status == "ABORTING" or (status == "DONE" and op.error and (op.error.code or op.error.message)):
            raise ProviderError(f"{what} {'is aborting' if status == 'ABORTING' else 'failed'}: "
                                f"{reason or 'GKE gives no reason'}", where=self._name(cluster) if cluster else name,
                                hint="fix the cause; rollback removes what was created, then run again")
        return status == "DONE", status

    def delete(self, spec: GkeClusterSpec, timeout: float | None = None) -> str | None:
        """Start deleting the cluster; returns the operation name, or None if it is gone already.

        GKE refuses (FAILED_PRECONDITION) while another operation runs on the cluster, e.g. its
        create: that is waited out with backoff, then the delete is sent again.
        """
        where = self._name(spec.name)

        def attempt() -> tuple[bool, str | None]:
            if self.get(spec.name) is None:
                return True, None
            try:
                with gcp_errors("deleting the cluster", where=where):
                    op = self.client.delete_cluster(name=where)
            except ProviderError as e:
                if precondition_failed(e):
                    raise ProviderError(f"cluster {spec.name} is busy with another operation: {e.__cause__}",
                                        where=where, retryable=True) from e.__cause__
                raise
            return True, str(op.name)

        return poll(attempt, timeout=self.delete_timeout if timeout is None else timeout,
                    what="GKE to accept the cluster's deletion", where=where, interval=self.poll_interval,
                    sleep=self.sleep)
