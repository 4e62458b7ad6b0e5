"""The one place the replay talks HTTP to a Kubernetes API server, through the official client.

Raw REST over `ApiClient` (not the typed APIs or DynamicClient): objects stay plain dicts, and a replay of
thousands of objects does not pay for model (de)serialisation. Every request goes through one token-bucket
rate limiter; 429 and 5xx answers and dropped connections are retried with capped exponential backoff
(honouring Retry-After). Errors surface as `KubeApiError`, a ProviderError that says if a retry can help.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import quote

import kubernetes
import orjson
import urllib3
from kubernetes.config import kube_config as _kube_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.dateutil import parse_rfc3339
from kubernetes.config.exec_provider import ExecProvider

from migrate.config import DEFAULT_REPLAY_QPS
from migrate.errors import ProviderError
from migrate.kube.objects import Obj, to_json

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# client-go's defaults (5 qps) stall big replays (velero #7516); velero uses 100, well under the
# 200 mutating requests in flight a default control plane admits.
DEFAULT_QPS = DEFAULT_REPLAY_QPS  # one default for the client and migrate.yaml


class KubeApiError(ProviderError):
    """An answer from the API server that is not a success, or no answer at all (status 0)."""

    def __init__(self, status: int, reason: str, message: str, *, where: str | None = None,
                 causes: list[dict[str, Any]] | None = None, retry_after: float | None = None) -> None:
        retryable = status == 0 or status == 429 or status >= 500
        super().__init__(message, where=where, retryable=retryable,
                         hint="the API server is overloaded or unavailable; try again later" if retryable else None)
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes or []
        self.retry_after = retry_after

    def summary(self) -> str:
        """`<code> <Reason>: <message>`, the way an operator reads it in kubectl."""
        return f"{self.status} {self.reason}: {self.message}" if self.status else self.message


class RateLimiter:
    """Token bucket shared by all threads of one client: `qps` tokens per second, at most `burst` saved up."""

    def __init__(self, qps: float | None, burst: int | None = None) -> None:
        self.qps = qps
        self.burst = float(burst if burst is not None else max(1, int(qps or 1)))
        self._tokens = self.burst
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.qps:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.qps
            time.sleep(wait)


def _error_from(status: int, reason: str, data: bytes, retry_after: str | None, where: str) -> KubeApiError:
    message, kreason, causes = "", reason, []
    try:
        body = json.loads(data) if data else {}
    except ValueError:
        body = {}
    if isinstance(body, dict) and body.get("kind") == "Status":
        message = str(body.get("message") or "")
        kreason = str(body.get("reason") or reason)
        causes = list((body.get("details") or {}).get("causes") or [])
    if not message:
        message = data[:300].decode("utf-8", "replace").strip() or reason
    try:
        ra = float(retry_after) if retry_after else None
    except ValueError:
        ra = None
    return KubeApiError(status, kreason, message, where=where, causes=causes, retry_after=ra)


class _CachedExecProvider(ExecProvider):
    """kubernetes' exec-plugin runner with the cache client-go has and it lacks: a plugin's credential is
    reused in this process while it stays valid for longer than the client's own refresh margin, instead
    of starting the plugin (a Python for migrate's, `aws eks get-token` elsewhere), a third of a second, for
    every client made: a dozen times in a dev run. Held in memory only; one without an expiry is not reused."""

    _cache: ClassVar[dict[str, tuple[datetime.datetime, Any]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()
    # The client treats a credential as expired 5 minutes early (EXPIRY_SKEW_PREVENTION_DELAY): stay clear of it.
    REUSE_MARGIN: ClassVar[datetime.timedelta] = datetime.timedelta(minutes=6)

    def run(self, previous_response: Any = None) -> Any:
        key = hashlib.sha256(json.dumps([self.api_version, self.args, sorted(self.env.items()), self.cwd,
                                         getattr(self.cluster, "value", None)], default=str).encode()).hexdigest()
        now = datetime.datetime.now(datetime.UTC)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] - now > self.REUSE_MARGIN:
                return copy.deepcopy(hit[1])
            status = self._own_plugin() or super().run(previous_response)
            expiry = status.get("expirationTimestamp") if isinstance(status, dict) else None
            if expiry:
                self._cache[key] = (parse_rfc3339(expiry), copy.deepcopy(status))
            return status

    def _own_plugin(self) -> dict[str, Any] | None:
        """migrate's own plugin (``python -m migrate.cloud.token``) with no environment of its own is run here,
        in this process, as the subprocess would: a second Python costs a third of a second."""
        if self.args[:3] != [sys.executable, "-m", "migrate.cloud.token"] or self.env != dict(os.environ) or \
                self.cluster is not None:
            return None
        from migrate.cloud.token import mint
        from migrate.errors import MigrateError

        try:
            token, seconds = mint(self.args[3:])
        except MigrateError:
            return None  # the plugin itself then: its failure is reported the way the client reports any plugin's
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
        return {"token": token, "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}


_kube_config.ExecProvider = _CachedExecProvider  # type: ignore[misc]  # what load_kube_config runs for exec


class KubeClient:
    """One cluster's API, as plain dicts.

        kube = KubeClient.from_kubeconfig("kubeconfig", "old", qps=50)
        kube.request("GET", "/api/v1/namespaces")
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, *, qps: float | None = DEFAULT_QPS,
                 burst: int | None = None, retries: int = 6, backoff: float = 0.2, max_backoff: float = 10.0,
                 timeout: float = 60.0, name: str = "") -> None:
        self.api = api_client
        self.limiter = RateLimiter(qps, burst)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.name = name or api_client.configuration.host
        self.stats = {"requests": 0, "retries": 0}
        self._stats_lock = threading.Lock()

    @classmethod
    def from_kubeconfig(cls, path: str, context: str | None = None, *, qps: float | None = DEFAULT_QPS,
                        pool_size: int = 16, **kw: Any) -> KubeClient:
        cfg = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config(config_file=str(path), context=context, client_configuration=cfg,
                                               persist_config=False)
        except (ConfigException, OSError, TypeError, ValueError) as e:
            raise ProviderError(f"cannot load kubeconfig context {context!r}: {e}", where=str(path),
                                hint="check the kubeconfig written by the write-kubeconfig step") from e
        return cls._configured(cfg, context, qps, pool_size, **kw)

    @classmethod
    def from_kubeconfig_dict(cls, data: dict[str, Any], context: str | None = None, *,
                             qps: float | None = DEFAULT_QPS, pool_size: int = 16, **kw: Any) -> KubeClient:
        """``from_kubeconfig`` for a kubeconfig held in memory (planning's, before write-kubeconfig)."""
        cfg = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config_from_dict(data, context=context, client_configuration=cfg,
                                                         persist_config=False)
        except (ConfigException, OSError, TypeError, ValueError) as e:
            raise ProviderError(f"cannot load kubeconfig context {context!r}: {e}", where=f"context {context}",
                                hint="check the cluster's endpoint and credentials") from e
        return cls._configured(cfg, context, qps, pool_size, **kw)

    @classmethod
    def _configured(cls, cfg: Any, context: str | None, qps: float | None, pool_size: int,
                    **kw: Any) -> KubeClient:
        cfg.connection_pool_maxsize = pool_size  # one connection per worker: keep-alive, no pool churn
        cfg.retries = False  # retries are ours: bounded, with backoff, for writes too
        cfg.client_go_retries = False
        return cls(kubernetes.client.ApiClient(cfg), qps=qps, name=context or "", **kw)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def _once(self, method: str, path: str, query: list[tuple[str, str]], body: Any, content_type: str | None,
              ) -> tuple[int, Obj]:
        headers = {"Accept": "application/json"}
        data: bytes | None = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = body if isinstance(body, bytes) else to_json(body)  # the replay's hot path
        # The client builds the URL and the auth headers (refreshing exec/OIDC tokens); the body is sent through
        # its connection pool as bytes, skipping its per-request model serialisation (the replay's hot path).
        _m, url, hdrs, _b, _p = self.api.param_serialize(
            method=method, resource_path=path, query_params=query or None, header_params=headers,
            auth_settings=["BearerToken"])
        where = f"{self.name}: {method} {path}"
        try:
            resp = self.api.rest_client.pool_manager.request(
                method, url, body=data, headers=hdrs, timeout=urllib3.Timeout(total=self.timeout),
                preload_content=True, retries=False)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise KubeApiError(0, "ConnectionError", f"no answer from the API server: {e}", where=where) from e
        raw = resp.data or b""
        if not 200 <= resp.status < 300:
            raise _error_from(resp.status, resp.reason or "", raw, resp.headers.get("Retry-After"), where)
        try:
            out = _loads(raw) if raw else {}
        except ValueError as e:
            raise KubeApiError(resp.status, "BadResponse", f"the API server answered with non-JSON: {e}",
                               where=where) from e
        return resp.status, out

    def call(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
             content_type: str | None = None) -> tuple[int, Obj]:
        """(HTTP status, decoded body). Retries what is retryable; raises KubeApiError for the rest."""
        q = [(k, v) for k, v in (query or {}).items() if v is not None]
        attempt = 0
        while True:
            self.limiter.acquire()
            with self._stats_lock:
                self.stats["requests"] += 1
            try:
                return self._once(method, path, q, body, content_type)
            except KubeApiError as e:
                # A write that timed out may have happened: the caller's create/apply logic copes with that
                # (409 AlreadyExists falls back to apply), so retrying it is safe.
                if not e.retryable or attempt >= self.retries:
                    raise
                delay = e.retry_after if e.retry_after is not None else \
                    min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)
                attempt += 1
                with self._stats_lock:
                    self.stats["retries"] += 1
                time.sleep(min(delay, self.max_backoff))

    def request(self, method: str, path: str, **kw: Any) -> Obj:
        return self.call(method, path, **kw)[1]

    def list_pages(self, path: str, *, limit: int = 500, query: dict[str, str] | None = None) -> Iterator[Obj]:
        """Every item of a collection, page by page (memory stays at one page per type)."""
        token: str | None = None
        while True:
            q = {**(query or {}), "limit": str(limit)}
            if token:
                q["continue"] = token
            page = self.request("GET", path, query=q)
            kind = str(page.get("kind", "")).removesuffix("List")
            api_version = str(page.get("apiVersion", ""))
            for item in page.get("items") or []:
                # Typed lists leave kind/apiVersion off the items.
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
                yield item
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # big integers; a real decode error raises ValueError here as well


def object_path(api_version: str, plural: str, namespace: str = "", name: str = "") -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{plural}"
    if name:
        base += f"/{quote(name, safe='')}"
    return base
