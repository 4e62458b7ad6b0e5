"""One interface over EKS and GKE for the cluster steps: spec, create, status, access, delete."""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from migrate.cloud.kubeconfig import ClusterAccess
from migrate.config import Environment
from migrate.errors import ConfigError, ProviderError


@dataclass(frozen=True)
class Readiness:
    cloud_missing: list[str]
    endpoint: str | None
    ca_data: str | None

    @property
    def active(self) -> bool:
        return not self.cloud_missing


# Workloads in kube-system that stand for a core add-on: (add-on, kind, name). EKS runs the ones of the
# managed add-ons it was asked for (clusters.new.eks.addons); GKE always runs kube-dns.
EKS_ADDON_WORKLOADS: dict[str, tuple[str, str]] = {
    "coredns": ("Deployment", "coredns"),
    "kube-proxy": ("DaemonSet", "kube-proxy"),
    "vpc-cni": ("DaemonSet", "aws-node"),
    "aws-ebs-csi-driver": ("Deployment", "ebs-csi-controller"),
}
EKS_DEFAULT_ADDONS = ("coredns", "kube-proxy", "vpc-cni")
GKE_CORE_WORKLOADS: list[tuple[str, str, str]] = [("kube-dns", "Deployment", "kube-dns")]


def _failed(failures: list[str], name: str) -> ProviderError:
    """The cloud gave up on the cluster: waiting longer cannot help, so say so now, with its reason."""
    return ProviderError("; ".join(failures), where=f"cluster {name}",
                         hint="fix the cause the cloud names; `rollback` deletes the failed cluster, "
                              "then run again")


class ClusterProvider(Protocol):
    def old_facts(self) -> dict[str, Any]: ...
    def new_spec(self) -> dict[str, Any]: ...
    def exists(self, name: str) -> bool: ...
    def create(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def readiness(self, spec: dict[str, Any]) -> Readiness: ...
    def core_addons(self, spec: dict[str, Any]) -> list[tuple[str, str, str]]: ...
    def after_active(self, spec: dict[str, Any], ready: Readiness) -> dict[str, Any]: ...
    def delete(self, spec: dict[str, Any], outputs: dict[str, Any]) -> None: ...
    def access(self, name: str, context: str) -> ClusterAccess: ...
    def token(self, name: str) -> str | None: ...
    def delete_old(self) -> dict[str, Any]: ...


class AwsClusters:
    def __init__(self, env: Environment) -> None:
        from migrate.cloud.aws.eks import Eks
        from migrate.cloud.aws.session import make_session

        assert env.aws is not None
        self.env = env
        self.region = env.aws.region
        self.profile = env.aws.profile
        self.session = make_session(env.aws.region, env.aws.profile)
        self.eks = Eks(self.session, env.aws.endpoint_url)

    def old_facts(self) -> dict[str, Any]:
        old = self.eks.describe(self.env.clusters.old.name)
        if old is None:
            return {"old": None}
        return {"old": {"arn": old.get("arn"), "version": old.get("version"), "status": old.get("status")},
                "new_exists": self.exists(self.env.clusters.new.name)}

    def new_spec(self) -> dict[str, Any]:
        c = self.env.clusters
        return self.eks.spec_from_old(c.old.name, c.new.name, c.new.version, c.new.eks).to_dict()

    def exists(self, name: str) -> bool:
        return self.eks.describe(name) is not None

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        from migrate.cloud.aws.eks import EksClusterSpec

        self.eks.create(EksClusterSpec.from_dict(spec))
        return {}

    def readiness(self, spec: dict[str, Any]) -> Readiness:
        from migrate.cloud.aws.eks import EksClusterSpec

        s = EksClusterSpec.from_dict(spec)
        st = self.eks.status(s)
        if st.failures:
            raise _failed(st.failures, s.name)
        if st.status == "ACTIVE":
            # Node groups and add-ons can only be created on an active cluster.
            self.eks.create_nodegroups(s)
            self.eks.create_addons(s)
            st = self.eks.status(s)
            if st.failures:
                raise _failed(st.failures, s.name)
        return Readiness(st.missing(s), st.endpoint, st.ca_data)

    def core_addons(self, spec: dict[str, Any]) -> list[tuple[str, str, str]]:
        # Every EKS cluster runs these (self-managed unless installed as managed add-ons), plus what is named.
        names = dict.fromkeys([*EKS_DEFAULT_ADDONS, *spec.get("addons", [])])
        return [(a, *EKS_ADDON_WORKLOADS[a]) for a in names if a in EKS_ADDON_WORKLOADS]

    def after_active(self, spec: dict[str, Any], ready: Readiness) -> dict[str, Any]:
        from migrate.cloud.aws.eks import EksClusterSpec

        s = EksClusterSpec.from_dict(spec)
        st = self.eks.status(s)
        out: dict[str, Any] = {"arn": st.arn, "endpoint": st.endpoint}
        if s.oidc and st.oidc_issuer:
            out["oidc_provider_arn"] = self.eks.ensure_oidc_provider(st.oidc_issuer, owner=s.name)
        return out

    def delete(self, spec: dict[str, Any], outputs: dict[str, Any]) -> None:
        from migrate.cloud.aws.eks import EksClusterSpec

        s = EksClusterSpec.from_dict(spec)
        _never_the_old(self.env, s.name)
        self.eks.delete(s, timeout=self.env.clusters.new.ready_timeout)
        arn = outputs.get("oidc_provider_arn")
        # Only a provider this toolkit created for this cluster (tagged so): one found already in place
        # for the issuer belongs to someone else.
        if arn and self.eks.oidc_provider_owner(str(arn)) == s.name:
            self.eks.delete_oidc_provider(str(arn))

    def delete_old(self) -> dict[str, Any]:
        """Decommission: delete the *old* cluster, its node groups, add-ons and OIDC provider."""
        from migrate.cloud.aws.eks import EksClusterSpec

        name = self.env.clusters.old.name
        c = self.eks.describe(name)
        if c is None:
            return {}
        groups = [str(g["nodegroupName"]) for g in self.eks.nodegroups(name)]
        try:
            addons = sorted(self.eks.addons(name))
        except ProviderError:
            addons = []  # an endpoint without the add-ons API has none to delete
        spec = EksClusterSpec(name=name, version=None, role_arn="", subnet_ids=[], security_group_ids=[],
                              endpoint_public_access=True, endpoint_private_access=False, encryption_key_arn=None,
                              nodegroups=[_named_group(g) for g in groups], addons=addons, oidc=False, tags={})
        issuer = ((c.get("identity") or {}).get("oidc") or {}).get("issuer")
        self.eks.delete(spec)
        out: dict[str, Any] = {"nodegroups": groups}
        if issuer:
            arn = self.eks.find_oidc_provider(issuer)
            if arn:
                self.eks.delete_oidc_provider(arn)
                out["oidc_provider_deleted"] = arn
        return out

    def access(self, name: str, context: str) -> ClusterAccess:
        c = self.eks.describe(name)
        if c is None or not c.get("endpoint"):
            raise ProviderError(f"cluster {name} has no API endpoint yet", where=f"EKS cluster {name}",
                                retryable=True)
        args = ["eks", "--cluster", name, "--region", self.region]
        if self.profile:
            args += ["--profile", self.profile]
        return ClusterAccess(context=context, server=str(c["endpoint"]),
                             ca_data=(c.get("certificateAuthority") or {}).get("data") or None,
                             token_args=args, token_env={})

    def token(self, name: str) -> str | None:
        from migrate.cloud.aws.token import eks_token

        return eks_token(self.session, name)


class GcpClusters:
    def __init__(self, env: Environment) -> None:
        from migrate.cloud.gcp.gke import Gke

        assert env.gcp is not None
        self.env = env
        self.gke = Gke(env.gcp)
        self._operations: dict[str, str] = {}  # cluster -> the create operation this provider started

    def old_facts(self) -> dict[str, Any]:
        old = self.gke.get(self.env.clusters.old.name)
        if old is None:
            return {"old": None}
        return {"old": {"self_link": old.self_link, "version": old.current_master_version,
                        "status": str(getattr(old.status, "name", old.status))},
                "new_exists": self.exists(self.env.clusters.new.name)}

    def new_spec(self) -> dict[str, Any]:
        c = self.env.clusters
        return self.gke.spec_from_old(c.old.name, c.new.name, c.new.version, c.new.gke).to_dict()

    def exists(self, name: str) -> bool:
        return self.gke.get(name) is not None

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        from migrate.cloud.gcp.gke import GkeClusterSpec

        s = GkeClusterSpec.from_dict(spec)
        op = self.gke.create(s)
        if op:
            self._operations[s.name] = op
        return {"operation": op} if op else {}

    def readiness(self, spec: dict[str, Any]) -> Readiness:
        from migrate.cloud.gcp.gke import GkeClusterSpec

        s = GkeClusterSpec.from_dict(spec)
        op = self._operations.get(s.name)
        if op:
            # A failed or aborted create raises here, with GKE's error, instead of waiting out the timeout.
            done, _ = self.gke.operation_done(op, cluster=s.name)
            if done:
                del self._operations[s.name]
        st = self.gke.status(s)
        if st.failures:
            raise _failed(st.failures, s.name)
        if st.status == "RUNNING" and self.gke.create_missing_node_pool(s):
            st = self.gke.status(s)  # a pool was missing (a resumed run, or deleted by hand): now PROVISIONING
        return Readiness(st.missing(s), st.endpoint, st.ca_data)

    def core_addons(self, spec: dict[str, Any]) -> list[tuple[str, str, str]]:
        return list(GKE_CORE_WORKLOADS)

    def after_active(self, spec: dict[str, Any], ready: Readiness) -> dict[str, Any]:
        return {"endpoint": ready.endpoint}

    def delete(self, spec: dict[str, Any], outputs: dict[str, Any]) -> None:
        from migrate.cloud.gcp.gke import GkeClusterSpec

        s = GkeClusterSpec.from_dict(spec)
        _never_the_old(self.env, s.name)
        self.gke.delete(s, timeout=self.env.clusters.new.ready_timeout)

    def delete_old(self) -> dict[str, Any]:
        from migrate.cloud.gcp.gke import GkeClusterSpec

        name = self.env.clusters.old.name
        op = self.gke.delete(GkeClusterSpec(name=name, version=None, network=None, subnetwork=None, node_pools=[],
                                            release_channel=None, labels={}))
        return {"operation": op} if op else {}

    def access(self, name: str, context: str) -> ClusterAccess:
        c = self.gke.get(name)
        if c is None or not c.endpoint:
            raise ProviderError(f"cluster {name} has no API endpoint yet", where=self.gke._name(name),
                                retryable=True)
        endpoint = str(c.endpoint)
        # GKE gives a bare address served over https; an emulator reached over plain http serves its
        # clusters over plain http too (the one documented sandbox mapping, docs/sandbox.md).
        scheme = "http" if (self.env.gcp and (self.env.gcp.endpoint or "").startswith("http://")) else "https"
        server = endpoint if endpoint.startswith(("http://", "https://")) else f"{scheme}://{endpoint}"
        ca = c.master_auth.cluster_ca_certificate if c.master_auth else None
        return ClusterAccess(context=context, server=server, ca_data=ca or None, token_args=["gke"], token_env={})

    def token(self, name: str) -> str | None:
        from migrate.cloud.gcp.auth import access_token

        assert self.env.gcp is not None
        if self.env.gcp.endpoint and self.env.gcp.endpoint.startswith("http://"):
            return None  # an emulator: no Google token to be had or needed
        return access_token()[0]


def _named_group(name: str) -> Any:
    from migrate.cloud.aws.eks import NodeGroupSpec

    return NodeGroupSpec(name=name, node_role_arn="", subnet_ids=[], instance_types=[], min_size=0, max_size=1,
                         desired_size=0)


def _never_the_old(env: Environment, name: str) -> None:
    # The undo of provisioning deletes by name: make sure that name can never be the old cluster's.
    if name == env.clusters.old.name:
        raise ConfigError(f"refusing to delete {name}: it is the old cluster",
                          where="clusters", hint="the new cluster's name must differ from the old one")


def provider_for(env: Environment) -> ClusterProvider:
    return AwsClusters(env) if env.cloud == "aws" else GcpClusters(env)


def kube_client(access: ClusterAccess, token: str | None) -> Any:
    """A kubernetes ApiClient for a cluster, with an in-memory token (never written to disk)."""
    from kubernetes import client as k8s

    cfg = k8s.Configuration()
    cfg.host = access.server
    if token:
        cfg.api_key = {"authorization": f"Bearer {token}"}
    if access.ca_data:
        # The client wants a file; one per CA (a public certificate), reused across polls.
        pem = base64.b64decode(access.ca_data)
        path = Path(tempfile.gettempdir()) / f"migrate-ca-{hashlib.sha256(pem).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_bytes(pem)
        cfg.ssl_ca_cert = str(path)
    cfg.retries = 1
    return k8s.ApiClient(cfg)


def api_missing(api_client: Any, expected_nodes: int,
                core_addons: list[tuple[str, str, str]] | None = None) -> list[str]:
    """What keeps the Kubernetes API from being usable: unanswered API, unready nodes, no kube-system,
    core add-ons ((add-on, kind, name) workloads in kube-system) absent or not ready."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        k8s.VersionApi(api_client).get_code(_request_timeout=5)
        core = k8s.CoreV1Api(api_client)
        nodes = core.list_node(_request_timeout=5).items
        namespaces = {n.metadata.name for n in core.list_namespace(_request_timeout=5).items if n.metadata}
        workloads: dict[tuple[str, str], Any] = {}
        if core_addons and "kube-system" in namespaces:
            apps = k8s.AppsV1Api(api_client)
            # Raw JSON: the client's models reject a just-created DaemonSet whose status is still empty.
            lists: dict[str, Any] = {
                "Deployment": apps.list_namespaced_deployment("kube-system", _request_timeout=5,
                                                              _preload_content=False),
                "DaemonSet": apps.list_namespaced_daemon_set("kube-system", _request_timeout=5,
                                                             _preload_content=False)}
            for kind, resp in lists.items():
                items = json.loads(resp.data).get("items") or []
                workloads.update({(kind, str(w["metadata"]["name"])): w for w in items})
    except (ApiException, HTTPError, OSError, ValueError) as e:  # ValueError: an answer that is not JSON
        return [f"the Kubernetes API does not answer ({getattr(e, 'status', '') or type(e).__name__})"]
    missing = []
    ready = [n for n in nodes if n.status and any(c.type == "Ready" and c.status == "True"
                                                  for c in (n.status.conditions or []))]
    if len(ready) < expected_nodes:
        missing.append(f"{len(ready)} of {expected_nodes} nodes are Ready")
    if "kube-system" not in namespaces:
        missing.append("namespace kube-system is missing")
        return missing
    for addon, kind, name in core_addons or []:
        w = workloads.get((kind, name))
        if w is None:
            missing.append(f"core add-on {addon} is missing ({kind} kube-system/{name} not found)")
        elif not _workload_ready(kind, w):
            missing.append(f"core add-on {addon} is not ready ({kind} kube-system/{name})")
    return missing


def _workload_ready(kind: str, w: dict[str, Any]) -> bool:
    st = w.get("status") or {}
    if kind == "Deployment":
        want = (w.get("spec") or {}).get("replicas")
        return int(st.get("availableReplicas") or 0) >= (1 if want is None else int(want))
    if "desiredNumberScheduled" not in st:  # not yet seen by its controller
        return False
    return int(st.get("numberReady") or 0) >= int(st["desiredNumberScheduled"] or 0)
