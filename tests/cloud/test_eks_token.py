"""The EKS token matches the format `aws eks get-token` produces."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import pytest

from migrate.cloud.aws.session import make_session
from migrate.cloud.aws.token import TOKEN_PREFIX, decode, eks_token


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_token_is_a_presigned_get_caller_identity_with_the_cluster_header() -> None:
    token = eks_token(make_session("eu-west-1"), "prod-green")
    assert token.startswith(TOKEN_PREFIX)
    body = token[len(TOKEN_PREFIX):]
    assert "=" not in body  # padding stripped, like the aws CLI
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode() == decode(token)
    url = urlparse(decode(token))
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.scheme == "https" and url.hostname == "sts.eu-west-1.amazonaws.com"
    assert q["Action"] == "GetCallerIdentity"
    assert q["Version"] == "2011-06-15"
    assert q["X-Amz-Expires"] == "60"
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert "x-k8s-aws-id" in q["X-Amz-SignedHeaders"].split(";")
    assert q["X-Amz-Credential"].startswith("AKIAIOSFODNN7EXAMPLE/") and "/eu-west-1/sts/aws4_request" in q[
        "X-Amz-Credential"]


def test_token_differs_per_cluster_because_the_header_is_signed() -> None:
    session = make_session("eu-west-1")
    a = parse_qs(urlparse(decode(eks_token(session, "a"))).query)["X-Amz-Signature"]
    b = parse_qs(urlparse(decode(eks_token(session, "b"))).query)["X-Amz-Signature"]
    assert a != b


def test_exec_plugin_prints_an_exec_credential() -> None:
    out = subprocess.run([sys.executable, "-m", "migrate.cloud.token", "eks", "--cluster", "c", "--region",
                          "us-east-1"], capture_output=True, text=True, check=True).stdout
    cred = json.loads(out)
    assert cred["kind"] == "ExecCredential" and cred["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert cred["status"]["token"].startswith(TOKEN_PREFIX)


def test_exec_plugin_without_credentials_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    r = subprocess.run([sys.executable, "-m", "migrate.cloud.token", "eks", "--cluster", "c", "--region", "us-east-1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert "no AWS credentials" in r.stderr and "Traceback" not in r.stderr
