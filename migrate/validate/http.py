"""HTTP for the checks: plain requests, honouring HTTP_PROXY / NO_PROXY like any client of the service."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class Response:
    status: int  # 0: no answer
    headers: dict[str, str]
    body: bytes
    latency_ms: float
    error: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


class Http:
    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Response:
        t0 = time.perf_counter()
        try:
            r = self.session.request(method, url, headers=headers or {}, timeout=self.timeout, allow_redirects=False)
            return Response(r.status_code, dict(r.headers), r.content, (time.perf_counter() - t0) * 1000)
        except requests.RequestException as e:
            return Response(0, {}, b"", (time.perf_counter() - t0) * 1000, type(e).__name__)
