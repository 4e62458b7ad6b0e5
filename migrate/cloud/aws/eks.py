"""EKS through boto3: read the old cluster, create the new one, report readiness, delete.

Every call is idempotent: creating something that exists is not an error, and
deleting something that is gone is not either.

Add-ons: an endpoint without the EKS add-ons API (moto, which the sandbox runs, has none: its
``/clusters/NAME/addons`` routes answer a bare 404) raises one clear, permanent error naming
``clusters.new.eks.addons``; with ``addons: []`` add-ons are skipped (neither copied nor installed).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

import boto3

from migrate.cloud.aws.session import aws_errors, client, error_code
from migrate.cloud.poll import poll
from migrate.config import EksSettings
from migrate.errors import ProviderError

# Tag put on the IAM OIDC provider the toolkit creates, so that undo deletes only a provider it made.
OIDC_OWNER_TAG = "migrate/cluster"
# Statuses EKS never leaves by itself: waiting longer cannot help.
_FAILED = {"FAILED"}
_PART_FAILED = {"CREATE_FAILED", "DELETE_FAILED"}
# Error codes an endpoint gives for an API it does not have (moto: a bare 404 page, parsed as code "404").
_NO_API_CODES = {"404", "UnknownOperationException", "InvalidAction"}


@dataclass(frozen=True)
class NodeGroupSpec:
    name: str
    node_role_arn: str
    subnet_ids: list[str]
    instance_types: list[str]
    min_size: int
    max_size: int
    desired_size: int
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EksClusterSpec:
    name: str
    version: str | None
    role_arn: str
    subnet_ids: list[str]
    security_group_ids: list[str]
    endpoint_public_access: bool
    endpoint_private_access: bool
    encryption_key_arn: str | None
    nodegroups: list[NodeGroupSpec]
    addons: list[str]
    oidc: bool
    tags: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EksClusterSpec:
        return cls(**{**d, "nodegroups": [NodeGroupSpec(**n) for n in d.get("nodegroups", [])]})


@dataclass(frozen=True)
class EksStatus:
    status: str | None  # None: the cluster does not exist
    endpoint: str | None = None
    ca_data: str | None = None
    oidc_issuer: str | None = None
    arn: str | None = None
    nodegroups: dict[str, str] = field(default_factory=dict)
    addons: dict[str, str] = field(default_factory=dict)
    # Parts that EKS gave up on (cluster FAILED, node group or add-on CREATE_FAILED), with EKS's reason.
    failures: list[str] = field(default_factory=list)

    def missing(self, spec: EksClusterSpec) -> list[str]:
        """What keeps the cluster from being ready, in words an operator can act on."""
        out = []
        if self.status != "ACTIVE":
            out.append(f"cluster {spec.name} is {self.status or 'absent'}")
        for ng in spec.nodegroups:
            st = self.nodegroups.get(ng.name)
            if st != "ACTIVE":
                out.append(f"node group {ng.name} is {st or 'absent'}")
        for addon in spec.addons:
            st = self.addons.get(addon)
            if st != "ACTIVE":
                out.append(f"add-on {addon} is {st or 'absent'}")
        return out


def _issues(part: dict[str, Any]) -> str:
    """EKS's reason for a failed cluster, node group or add-on: its ``health.issues``."""
    issues = (part.get("health") or {}).get("issues") or []
    text = "; ".join(
        f"{i.get('code', '?')}: {i.get('message', '')}".rstrip(": ")
        + (f" ({', '.join(map(str, i['resourceIds']))})" if i.get("resourceIds") else "")
        for i in issues)
    return text or "EKS reports no health issues for it"


def no_addons_api(e: BaseException) -> bool:
    """True when the endpoint has no EKS add-ons API at all (moto), as opposed to a missing add-on."""
    return error_code(e) in _NO_API_CODES


def _no_addons_api_error(name: str) -> ProviderError:
    # Not the SDK's text: it is the endpoint's bare 404 page, nothing an operator can use.
    return ProviderError(
        "this EKS endpoint has no add-ons API (it answers 404 with no EKS error; moto, which the sandbox "
        "runs, has none), so add-ons cannot be listed or installed", where=f"EKS cluster {name}",
        hint="set clusters.new.eks.addons: [] for this environment; add-ons are then skipped "
             "(neither copied from the old cluster nor installed)")


class Eks:
    def __init__(self, session: boto3.Session, endpoint_url: str | None = None, *, poll_interval: float = 5.0,
                 delete_timeout: float = 1800.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.eks = client(session, "eks", endpoint_url)
        self._iam: Any = None
        self.poll_interval = poll_interval
        self.delete_timeout = delete_timeout
        self.sleep = sleep

    @property
    def iam(self) -> Any:
        # Made on first use: only the OIDC provider calls need it, and a client costs a tenth of a second.
        if self._iam is None:
            self._iam = client(self.session, "iam", self.endpoint_url)
        return self._iam

    # -- reads -------------------------------------------------------------

    def describe(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors("describing the cluster", where=f"EKS cluster {name}"):
                return dict(self.eks.describe_cluster(name=name)["cluster"])
        except ProviderError as e:
            if error_code(e) == "ResourceNotFoundException":
                return None
            raise

    def nodegroups(self, name: str) -> list[dict[str, Any]]:
        with aws_errors("listing node groups", where=f"EKS cluster {name}"):
            names = self.eks.list_nodegroups(clusterName=name).get("nodegroups", [])
            return [self.eks.describe_nodegroup(clusterName=name, nodegroupName=n)["nodegroup"] for n in names]

    def addon_details(self, name: str) -> dict[str, dict[str, Any]]:
        try:
            with aws_errors("listing add-ons", where=f"EKS cluster {name}"):
                names = self.eks.list_addons(clusterName=name).get("addons", [])
                return {a: dict(self.eks.describe_addon(clusterName=name, addonName=a)["addon"]) for a in names}
        except ProviderError as e:
            if no_addons_api(e):
                raise _no_addons_api_error(name) from e.__cause__
            raise

    def addons(self, name: str) -> dict[str, str]:
        return {a: str(d.get("status")) for a, d in self.addon_details(name).items()}

    def spec_from_old(self, old_name: str, new_name: str, version: str | None,
                      settings: EksSettings | None) -> EksClusterSpec:
        """The new cluster's spec: the old cluster's settings, overridden by the configuration."""
        s = settings or EksSettings()
        old = self.describe(old_name)
        if old is None:
            raise ProviderError(f"the old cluster {old_name} does not exist", where=f"EKS cluster {old_name}",
                                hint="check clusters.old.name and the region")
        vpc = old.get("resourcesVpcConfig", {})
        old_groups = self.nodegroups(old_name) if s.nodegroups is None else []
        node_role = next((g.get("nodeRole") for g in old_groups if g.get("nodeRole")), None)
        subnets = list(s.subnet_ids if s.subnet_ids is not None else vpc.get("subnetIds", []))
        if s.nodegroups is not None:
            groups = [NodeGroupSpec(name=g.name, node_role_arn=g.node_role_arn or str(node_role or ""),
                                    subnet_ids=list(g.subnet_ids or subnets), instance_types=list(g.instance_types),
                                    min_size=g.min_size, max_size=g.max_size, desired_size=g.desired_size,
                                    labels=dict(g.labels)) for g in s.nodegroups]
        else:
            groups = [NodeGroupSpec(
                name=str(g["nodegroupName"]), node_role_arn=str(g.get("nodeRole", "")),
                subnet_ids=list(subnets if s.subnet_ids is not None else g.get("subnets", subnets)),
                instance_types=list(g.get("instanceTypes") or ["m5.large"]),
                min_size=int(g.get("scalingConfig", {}).get("minSize", 1)),
                max_size=int(g.get("scalingConfig", {}).get("maxSize", 3)),
                desired_size=int(g.get("scalingConfig", {}).get("desiredSize", 2)),
                labels=dict(g.get("labels") or {})) for g in old_groups]
        enc = old.get("encryptionConfig") or []
        old_key = enc[0].get("provider", {}).get("keyArn") if enc else None
        return EksClusterSpec(
            name=new_name,
            version=version or old.get("version"),
            role_arn=s.role_arn or str(old.get("roleArn", "")),
            subnet_ids=subnets,
            security_group_ids=list(s.security_group_ids if s.security_group_ids is not None
                                    else vpc.get("securityGroupIds", [])),
            endpoint_public_access=(s.endpoint_public_access if s.endpoint_public_access is not None
                                    else bool(vpc.get("endpointPublicAccess", True))),
            endpoint_private_access=(s.endpoint_private_access if s.endpoint_private_access is not None
                                     else bool(vpc.get("endpointPrivateAccess", False))),
            encryption_key_arn=s.encryption_key_arn or old_key,
            nodegroups=groups,
            addons=list(s.addons) if s.addons is not None else sorted(self.addons(old_name)),
            oidc=s.oidc,
            tags={**dict(old.get("tags") or {}), **s.tags, "migrate/replaces": old_name},
        )

    def status(self, spec: EksClusterSpec) -> EksStatus:
        c = self.describe(spec.name)
        if c is None:
            return EksStatus(status=None)
        status = str(c.get("status"))
        failures = []
        if status in _FAILED:
            failures.append(f"EKS cluster {spec.name} is {status}: {_issues(c)}")
        groups_full = self.nodegroups(spec.name) if status not in _FAILED else []
        groups = {str(g["nodegroupName"]): str(g.get("status")) for g in groups_full}
        failures += [f"node group {g['nodegroupName']} of EKS cluster {spec.name} is {g.get('status')}: "
                     f"{_issues(g)}" for g in groups_full if g.get("status") in _PART_FAILED]
        addons_full = self.addon_details(spec.name) if spec.addons and status == "ACTIVE" else {}
        addons = {a: str(d.get("status")) for a, d in addons_full.items()}
        failures += [f"add-on {a} of EKS cluster {spec.name} is {d.get('status')}: {_issues(d)}"
                     for a, d in addons_full.items() if d.get("status") in _PART_FAILED]
        return EksStatus(status=status, endpoint=c.get("endpoint"),
                         ca_data=(c.get("certificateAuthority") or {}).get("data"),
                         oidc_issuer=((c.get("identity") or {}).get("oidc") or {}).get("issuer"),
                         arn=c.get("arn"), nodegroups=groups, addons=addons, failures=failures)

    # -- writes ------------------------------------------------------------

    def create(self, spec: EksClusterSpec) -> None:
        """Create whatever of the cluster does not exist yet (cluster, node groups, add-ons)."""
        where = f"EKS cluster {spec.name}"
        if self.describe(spec.name) is None:
            kwargs: dict[str, Any] = {
                "name": spec.name, "roleArn": spec.role_arn,
                "resourcesVpcConfig": {"subnetIds": spec.subnet_ids, "securityGroupIds": spec.security_group_ids,
                                       "endpointPublicAccess": spec.endpoint_public_access,
                                       "endpointPrivateAccess": spec.endpoint_private_access},
                "tags": spec.tags,
            }
            if spec.version:
                kwargs["version"] = spec.version
            if spec.encryption_key_arn:
                kwargs["encryptionConfig"] = [{"resources": ["secrets"],
                                               "provider": {"keyArn": spec.encryption_key_arn}}]
            self._idempotent("creating the cluster", where, lambda: self.eks.create_cluster(**kwargs))

    def create_nodegroups(self, spec: EksClusterSpec) -> None:
        existing = {str(g["nodegroupName"]) for g in self.nodegroups(spec.name)}
        for ng in spec.nodegroups:
            if ng.name in existing:
                continue
            self._idempotent(f"creating node group {ng.name}", f"EKS cluster {spec.name}",
                             lambda ng=ng: self.eks.create_nodegroup(
                                 clusterName=spec.name, nodegroupName=ng.name, nodeRole=ng.node_role_arn,
                                 subnets=ng.subnet_ids, instanceTypes=ng.instance_types, labels=ng.labels,
                                 scalingConfig={"minSize": ng.min_size, "maxSize": ng.max_size,
                                                "desiredSize": ng.desired_size},
                                 tags={**spec.tags}))

    def create_addons(self, spec: EksClusterSpec) -> None:
        if not spec.addons:
            return  # skipped: nothing asked for (the sandbox's setting, as moto has no add-ons API)
        present = self.addons(spec.name)
        for addon in spec.addons:
            if addon not in present:
                try:
                    self._idempotent(f"installing add-on {addon}", f"EKS cluster {spec.name}",
                                     lambda addon=addon: self.eks.create_addon(
                                         clusterName=spec.name, addonName=addon))
                except ProviderError as e:
                    if no_addons_api(e):
                        raise _no_addons_api_error(spec.name) from e.__cause__
                    raise

    def find_oidc_provider(self, issuer: str) -> str | None:
        host = urlparse(issuer).netloc + urlparse(issuer).path
        with aws_errors("listing OIDC providers", where=issuer):
            for p in self.iam.list_open_id_connect_providers().get("OpenIDConnectProviderList", []):
                if str(p["Arn"]).endswith(host):
                    return str(p["Arn"])
        return None

    def ensure_oidc_provider(self, issuer: str, owner: str | None = None) -> str:
        """The IAM OIDC provider for the cluster's issuer (IRSA needs it). Returns its ARN.

        One this creates is tagged ``migrate/cluster=<owner>``: undo deletes only a provider so tagged.
        """
        found = self.find_oidc_provider(issuer)
        if found:
            return found
        tags = [{"Key": OIDC_OWNER_TAG, "Value": owner}] if owner else []
        with aws_errors("creating the OIDC provider", where=issuer):
            resp = self.iam.create_open_id_connect_provider(
                Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=[_thumbprint(issuer)], Tags=tags)
        return str(resp["OpenIDConnectProviderArn"])

    def oidc_provider_owner(self, arn: str) -> str | None:
        """The cluster named by the provider's ``migrate/cluster`` tag; None if untagged or gone."""
        try:
            with aws_errors("reading the OIDC provider", where=arn):
                tags = self.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn).get("Tags") or []
        except ProviderError as e:
            if error_code(e) == "NoSuchEntity":
                return None
            raise
        return next((str(t["Value"]) for t in tags if t.get("Key") == OIDC_OWNER_TAG), None)

    def delete_oidc_provider(self, arn: str) -> None:
        try:
            with aws_errors("deleting the OIDC provider", where=arn):
                self.iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        except ProviderError as e:
            if error_code(e) != "NoSuchEntity":
                raise

    def nodegroup_gone(self, cluster: str, nodegroup: str) -> tuple[bool, str]:
        """(True, "gone") once describe_nodegroup says ResourceNotFound; else (False, its status)."""
        try:
            with aws_errors(f"reading node group {nodegroup}", where=f"EKS cluster {cluster}"):
                ng = self.eks.describe_nodegroup(clusterName=cluster, nodegroupName=nodegroup)["nodegroup"]
        except ProviderError as e:
            if error_code(e) == "ResourceNotFoundException":
                return True, "gone"
            raise
        if ng.get("status") == "DELETE_FAILED":
            raise ProviderError(f"EKS could not delete node group {nodegroup}: {_issues(ng)}",
                                where=f"EKS cluster {cluster}",
                                hint="fix the cause (see the EKS console), then run rollback again")
        return False, f"node group {nodegroup} is {ng.get('status')}"

    def delete(self, spec: EksClusterSpec, timeout: float | None = None) -> None:
        """Delete add-ons, node groups and the cluster. Only names from the spec: never the old cluster.

        EKS refuses delete_cluster (ResourceInUseException) while node groups remain, and a node
        group takes minutes to go: wait for each to be gone, then delete the cluster, retrying while
        EKS still says it is in use.
        """
        where = f"EKS cluster {spec.name}"
        if self.describe(spec.name) is None:
            return
        deadline = time.monotonic() + (self.delete_timeout if timeout is None else timeout)

        def accepted(doing: str, call: Callable[[], Any]) -> None:
            # ResourceInUseException (a node group still being created, node groups still attached to the
            # cluster) is retryable: poll waits it out, up to the deadline. Gone already is done.
            def attempt() -> tuple[bool, None]:
                self._gone_ok(doing, where, call)
                return True, None

            poll(attempt, timeout=max(deadline - time.monotonic(), 0.0), what=f"EKS to accept {doing}",
                 where=where, interval=self.poll_interval, sleep=self.sleep)

        for addon in spec.addons:
            try:
                accepted(f"deleting add-on {addon}",
                         functools.partial(self.eks.delete_addon, clusterName=spec.name, addonName=addon))
            except ProviderError as e:
                if not no_addons_api(e):  # an endpoint without add-ons has none to delete
                    raise
        for ng in spec.nodegroups:
            accepted(f"deleting node group {ng.name}",
                     functools.partial(self.eks.delete_nodegroup, clusterName=spec.name, nodegroupName=ng.name))
        for ng in spec.nodegroups:
            poll(functools.partial(self.nodegroup_gone, spec.name, ng.name),
                 timeout=max(deadline - time.monotonic(), 0.0), what=f"node group {ng.name} to be deleted",
                 where=where, interval=self.poll_interval, sleep=self.sleep)
        accepted("deleting the cluster", functools.partial(self.eks.delete_cluster, name=spec.name))

    def _idempotent(self, doing: str, where: str, call: Any) -> None:
        try:
            with aws_errors(doing, where=where):
                call()
        except ProviderError as e:
            if error_code(e) != "ResourceInUseException":  # already exists
                raise

    def _gone_ok(self, doing: str, where: str, call: Any) -> None:
        try:
            with aws_errors(doing, where=where):
                call()
        except ProviderError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise


def _thumbprint(issuer: str) -> str:
    """IAM no longer checks thumbprints for EKS issuers (their CA is in its trusted library).

    Fetching the certificate would mean a network call from planning code, so the
    well-formed root-CA thumbprint that `eksctl` also registers is used.
    """
    del issuer
    return "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
