"""AWS in the sandbox: moto in server mode, plus hooks that give moto what it lacks.

moto runs in this (daemon) process, so its backends can be hooked directly:
- EKS ``create_cluster`` starts a Kubernetes API emulator for the cluster and makes ``describe_cluster``
  report it: ``endpoint`` is the emulator's ``http://127.0.0.1:PORT`` and ``certificateAuthority.data`` a
  base64 PEM placeholder (plain http: nothing to verify). ``delete_cluster`` stops it and reports DELETING
  (moto reports ACTIVE). The ``eks_delay`` fault keeps new clusters and node groups CREATING for a while.
- API Gateway v2 ``create_api`` opens a local proxy for the API (moto has no data plane) and sets the API's
  ``ApiEndpoint`` to it, so callers use the endpoint exactly as on AWS.
- S3 ``put_object`` fails while a ``state_write`` fault matches the bucket and key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3.session


def _share_region_lookups() -> None:
    """moto asks a new boto3 Session for a service's regions at import and at each backend's first use, and
    every new Session parses botocore's endpoint data again: half a second of the sandbox's start. The
    answer is the same data whichever session gives it, so one session answers all of them."""
    real = boto3.session.Session.get_available_regions
    if getattr(real, "_sandbox_shared", False):
        return
    shared = boto3.session.Session()

    @cache
    def regions(service_name: str, partition_name: str = "aws", allow_non_regional: bool = False) -> list[str]:
        return list(real(shared, service_name, partition_name, allow_non_regional))

    def get_available_regions(self: boto3.session.Session, service_name: str, partition_name: str = "aws",
                              allow_non_regional: bool = False) -> list[str]:
        return list(regions(service_name, partition_name, allow_non_regional))

    get_available_regions._sandbox_shared = True  # type: ignore[attr-defined]
    boto3.session.Session.get_available_regions = get_available_regions


_share_region_lookups()
# Nothing in the sandbox boots an instance: moto's default AMIs (made at the EC2 backend's creation) are not needed.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from moto.apigatewayv2.models import Api, ApiGatewayV2Backend  # noqa: E402
from moto.ec2.exceptions import InvalidSubnetIdError  # noqa: E402
from moto.ec2.models import ec2_backends  # noqa: E402
from moto.eks.models import Cluster, EKSBackend, Nodegroup  # noqa: E402
from moto.s3.models import S3Backend  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

from .clusters import ClusterRegistry  # noqa: E402
from .faults import SandboxFaults  # noqa: E402

ACCOUNT_ID = "123456789012"  # moto's default account, and the one migrate.yaml names
REGION = "us-east-1"
FAKE_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nsandbox (plain http, nothing to verify)\n"
                           b"-----END CERTIFICATE-----\n").decode()



def _addon(kind: str, name: str, labels: dict[str, str], image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {**labels, "eks.amazonaws.com/component": name}},
            "spec": {**({"replicas": 2} if kind == "Deployment" else {}), "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": image}]}}}}


def eks_core_addons() -> list[dict[str, Any]]:
    """What a new EKS cluster runs in kube-system before anyone installs anything."""
    ecr = "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks"
    return [_addon("Deployment", "coredns", {"k8s-app": "kube-dns"}, f"{ecr}/coredns:v1.11.1-eksbuild.4"),
            _addon("DaemonSet", "kube-proxy", {"k8s-app": "kube-proxy"},
                   f"{ecr}/kube-proxy:v1.29.0-minimal-eksbuild.1"),
            _addon("DaemonSet", "aws-node", {"k8s-app": "aws-node"}, f"{ecr}/amazon-k8s-cni:v1.18.1-eksbuild.1")]

class _DelayedStatus:
    """Mixed into a moto object's class: ``status`` reads CREATING until ``_active_at`` has passed."""

    _active_at: float = 0.0
    _status: str = "ACTIVE"

    @property
    def status(self) -> str:
        if self._status == "ACTIVE" and time.monotonic() < self._active_at:
            return "CREATING"
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value


class SandboxCluster(_DelayedStatus, Cluster):
    pass


class SandboxNodegroup(_DelayedStatus, Nodegroup):
    pass


class InternalError(HTTPException):
    """S3's own 500 answer. moto's S3 layer lets werkzeug HTTP exceptions through as responses."""

    code = 500

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered '
                "an internal error. Please try again. (sandbox fault: state write)</Message></Error>")

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", "application/xml")]


def _delay(obj: Any, cls: type, seconds: float) -> None:
    status = obj.__dict__.pop("status", "ACTIVE")
    obj.__class__ = cls
    obj._status = status
    obj._active_at = time.monotonic() + seconds


def _zone_of(backends: Any, region: str, subnet_id: str) -> str | None:
    """A subnet's zone, looked up in the cluster's region first, then in the other regions in use (a node
    group in another region stands for a cluster moved there: the sandbox keeps one EKS region); None for an
    id moto does not know (EKS itself does not check them)."""
    # dict.values: only the regions already in use (indexing would create a backend per region).
    for ec2 in [backends[region], *(b for b in dict.values(backends) if b.region_name != region)]:
        try:
            return str(ec2.get_subnet(subnet_id).availability_zone)
        except InvalidSubnetIdError:
            continue
    return None


class AwsHooks:
    """Installs the hooks on moto's backend classes (process-wide; the daemon owns its process)."""

    def __init__(self, registry: ClusterRegistry, faults: SandboxFaults,
                 open_gateway: Callable[[Api], str], close_gateway: Callable[[str], None]) -> None:
        self.registry = registry
        self.faults = faults
        self.open_gateway = open_gateway
        self.close_gateway = close_gateway
        self._saved: list[tuple[type, str, Any]] = []

    def install(self) -> None:
        hooks = self
        create_cluster = EKSBackend.create_cluster
        delete_cluster = EKSBackend.delete_cluster
        create_nodegroup = EKSBackend.create_nodegroup
        create_api = ApiGatewayV2Backend.create_api
        delete_api = ApiGatewayV2Backend.delete_api
        put_object = S3Backend.put_object

        def eks_create(self: EKSBackend, *args: Any, **kwargs: Any) -> Cluster:
            cluster = create_cluster(self, *args, **kwargs)
            emu = hooks.registry.create(cluster.name, "aws", cluster.version)
            cluster.endpoint = emu.api.url
            cluster.certificate_authority = {"data": FAKE_CA}
            oidc_id = hashlib.md5(cluster.arn.encode()).hexdigest().upper()  # stable per cluster, like AWS's
            cluster.identity = {"oidc": {"issuer": f"https://oidc.eks.{self.region_name}.amazonaws.com/id/{oidc_id}"}}
            emu.install(eks_core_addons())  # EKS installs these self-managed on every new cluster
            _delay(cluster, SandboxCluster, hooks.faults.eks_delay)
            return cluster

        def eks_delete(self: EKSBackend, name: str) -> Cluster:
            cluster = delete_cluster(self, name)
            hooks.registry.delete(name)
            cluster.status = "DELETING"  # moto says ACTIVE; AWS says DELETING, then the name is gone
            return cluster

        def eks_create_nodegroup(self: EKSBackend, *args: Any, **kwargs: Any) -> Nodegroup:
            ng = create_nodegroup(self, *args, **kwargs)
            emu = hooks.registry.get(ng.cluster_name)
            if emu is not None:  # the group's kubelets join the cluster, in its subnets' zones
                backends = ec2_backends[self.account_id]
                zones = sorted({z for s in ng.subnets or [] if (z := _zone_of(backends, self.region_name, s))})
                emu.add_nodes(ng.nodegroup_name, int((ng.scaling_config or {}).get("desiredSize", 1)), zones=zones)
            _delay(ng, SandboxNodegroup, hooks.faults.eks_delay)
            return ng

        def api_create(self: ApiGatewayV2Backend, *args: Any, **kwargs: Any) -> Api:
            api = create_api(self, *args, **kwargs)
            api.api_endpoint = hooks.open_gateway(api)
            return api

        def api_delete(self: ApiGatewayV2Backend, api_id: str) -> None:
            delete_api(self, api_id)
            hooks.close_gateway(api_id)

        def s3_put(self: S3Backend, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
            if hooks.faults.take_state_write(bucket_name, key_name):
                raise InternalError()
            return put_object(self, bucket_name, key_name, *args, **kwargs)

        for cls, name, fn in ((EKSBackend, "create_cluster", eks_create), (EKSBackend, "delete_cluster", eks_delete),
                              (EKSBackend, "create_nodegroup", eks_create_nodegroup),
                              (ApiGatewayV2Backend, "create_api", api_create),
                              (ApiGatewayV2Backend, "delete_api", api_delete), (S3Backend, "put_object", s3_put)):
            self._saved.append((cls, name, getattr(cls, name)))
            setattr(cls, name, fn)

    def uninstall(self) -> None:
        for cls, name, fn in reversed(self._saved):
            setattr(cls, name, fn)
        self._saved.clear()


class Moto:
    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> Moto:
        self._server.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()
