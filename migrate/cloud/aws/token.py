"""EKS bearer tokens, made the way `aws eks get-token` makes them, without the aws CLI.

A presigned STS GetCallerIdentity URL carrying the signed header
``x-k8s-aws-id: <cluster>``, valid 60 s, base64url-encoded without padding and
prefixed with ``k8s-aws-v1.``. botocore's presigner does the signing.
"""

from __future__ import annotations

import base64
from typing import Any

import boto3

from migrate.cloud.aws.session import aws_errors, client

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
EXPIRES_IN = 60


def presigned_url(session: boto3.Session, cluster_name: str, *, endpoint_url: str | None = None) -> str:
    sts = client(session, "sts", endpoint_url)

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_HEADER] = cluster_name

    # Registered on this client only; the header must be present *before* signing so it is signed.
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    with aws_errors("presigning the EKS token", where=f"cluster {cluster_name}"):
        return str(sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=EXPIRES_IN,
                                              HttpMethod="GET"))


def eks_token(session: boto3.Session, cluster_name: str, *, endpoint_url: str | None = None) -> str:
    url = presigned_url(session, cluster_name, endpoint_url=endpoint_url)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def decode(token: str) -> str:
    """The presigned URL inside a token (for checks and debugging)."""
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError("not an EKS token")
    body = token[len(TOKEN_PREFIX):]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
