"""The GKE token through google-auth (migrate.cloud.gcp.auth), with a real OAuth 2.0 JWT-bearer flow offline.

No mock: a service-account JSON key with an RSA key made here, found as application default credentials
through GOOGLE_APPLICATION_CREDENTIALS, and google-auth's own refresh posting its signed assertion to a
token endpoint on 127.0.0.1 (the key's ``token_uri``), which checks the signature and answers like Google's.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from migrate.cloud import token as token_cli
from migrate.cloud.gcp.auth import SCOPES, access_token
from migrate.errors import CredentialsError

EMAIL = "migrate@sandbox-project.iam.gserviceaccount.com"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


class TokenEndpoint:
    """Google's OAuth token endpoint for the JWT-bearer grant, as far as a service account uses it."""

    def __init__(self, public_pem: bytes) -> None:
        self.public_pem = public_pem
        self.claims: list[dict[str, Any]] = []
        self.refuse = False
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                status, body = endpoint.answer(self.path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path != "/token" or form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        if self.refuse:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        # The assertion must be signed by the key's private half and addressed to Google's token endpoint
        # (google-auth puts Google's URI in `aud` whatever the key's token_uri, and Google checks it).
        try:
            claims = jwt.decode(form["assertion"], certs=self.public_pem, audience=GOOGLE_TOKEN_URI)
        except ValueError as e:  # google-auth's InvalidValue and MalformedError are ValueErrors
            return 400, {"error": "invalid_grant", "error_description": str(e)}
        self.claims.append(claims)
        return 200, {"access_token": f"ya29.local-{len(self.claims)}", "expires_in": 3599, "token_type": "Bearer"}


@pytest.fixture
def key_and_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenEndpoint]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    endpoint = TokenEndpoint(public_pem)
    endpoint.thread.start()
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": "sandbox-project", "private_key_id": "k1",
        "private_key": private_pem, "client_email": EMAIL, "client_id": "1234567890",
        "token_uri": endpoint.url}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)  # a proxy left by another test must not take 127.0.0.1
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    try:
        yield endpoint
    finally:
        endpoint.server.shutdown()
        endpoint.server.server_close()


def test_access_token_is_minted_by_the_service_account_flow(key_and_endpoint: TokenEndpoint) -> None:
    token, seconds = access_token()
    assert token == "ya29.local-1"
    assert 3500 < seconds <= 3599  # from the endpoint's expires_in, via google-auth's expiry
    [claims] = key_and_endpoint.claims
    assert claims["iss"] == EMAIL and claims["scope"] == " ".join(SCOPES)
    assert claims["exp"] - claims["iat"] == 3600


def test_the_exec_plugin_prints_an_exec_credential_with_that_token(key_and_endpoint: TokenEndpoint) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert token_cli.main(["gke"]) == 0
    cred = json.loads(out.getvalue())
    assert cred["kind"] == "ExecCredential" and cred["status"]["token"] == "ya29.local-1"
    assert cred["status"]["expirationTimestamp"].endswith("Z")


def test_a_refused_refresh_is_a_credentials_error(key_and_endpoint: TokenEndpoint) -> None:
    key_and_endpoint.refuse = True
    with pytest.raises(CredentialsError) as err:
        access_token()
    assert "cannot refresh the Google access token" in err.value.what and "invalid_grant" in err.value.what
    assert err.value.hint and "service account" in err.value.hint


def test_no_application_default_credentials_is_a_credentials_error(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(CredentialsError, match="no Google application default credentials") as err:
        access_token()
    assert err.value.hint and "GOOGLE_APPLICATION_CREDENTIALS" in err.value.hint



def _plugin() -> Any:
    """kubernetes' exec runner, as load_kube_config makes it, for migrate's own GKE plugin."""
    import sys

    from kubernetes.config import kube_config

    from migrate.kube.client import _CachedExecProvider

    node = kube_config.ConfigNode("exec", {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                           "command": sys.executable,
                                           "args": ["-m", "migrate.cloud.token", "gke"]})
    assert kube_config.ExecProvider is _CachedExecProvider  # what every kubeconfig load now runs
    return _CachedExecProvider(node, None)


def test_migrates_own_plugin_runs_in_this_process(key_and_endpoint: TokenEndpoint) -> None:
    status = _plugin()._own_plugin()  # no subprocess: the token comes from this process
    assert status is not None and status["token"] == "ya29.local-1"
    assert status["expirationTimestamp"].endswith("Z")


def test_migrates_own_plugin_is_left_to_the_subprocess_when_no_token_can_be_minted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As before tokens were minted in process: the client runs the plugin and reports its failure its own way.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    assert _plugin()._own_plugin() is None
