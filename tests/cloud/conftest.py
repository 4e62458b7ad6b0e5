"""AWS tests run against moto in server mode on 127.0.0.1 (never unittest.mock)."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator

import pytest
from engine.kit import project  # noqa: F401  (the CLI project fixture)
from moto.server import ThreadedMotoServer


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends are process-wide: start every test from an empty cloud.
    # A direct opener: urlopen's global one may have cached a proxy from an earlier sandbox test.
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    direct.open(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    try:
        yield url
    finally:
        server.stop()
        os.environ.pop("AWS_ENDPOINT_URL", None)
