"""API Gateway v2 data plane (moto has none): one local listener per HTTP API.

Each API's ``ApiEndpoint`` is set to its listener (see aws.py), so a caller uses it as on AWS. A request is
matched against the API's routes (``METHOD /path``, ``ANY /{proxy+}``, ``$default``), and an
``HTTP_PROXY`` integration forwards it to the integration URI, with ``{proxy}`` replaced by the greedy path.
The API's configuration is read from moto's backend on every request, so ``update_integration`` (the
gateway-switch router) takes effect at once, as on AWS.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlsplit

from moto.apigatewayv2.models import Api

from .clusters import ClusterRegistry
from .forward import forward
from .httpbase import BackgroundServer, QuietHandler


def _route_regex(route_path: str) -> re.Pattern[str]:
    out = ""
    for part in re.split(r"(\{[^}]+\})", route_path):
        if part.startswith("{") and part.endswith("+}"):
            out += f"(?P<{_group(part[1:-2])}>.*)"
        elif part.startswith("{"):
            out += f"(?P<{_group(part[1:-1])}>[^/]+)"
        else:
            out += re.escape(part)
    return re.compile(f"^{out}$")


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name) or "p"


def match_route(api: Api, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
    """The best route for the request (exact method beats ANY, then longest path), and its path params."""
    best: tuple[tuple[int, int], Any, dict[str, str]] | None = None
    default = None
    for route in list(api.routes.values()):
        key = str(route.route_key)
        if key == "$default":
            default = route
            continue
        verb, _, rpath = key.partition(" ")
        if verb not in ("ANY", method):
            continue
        m = _route_regex(rpath).match(path)
        if m is None:
            continue
        score = (1 if verb == method else 0, len(rpath.split("{")[0]))
        if best is None or score > best[0]:
            best = (score, route, {k: v or "" for k, v in m.groupdict().items()})
    if best is not None:
        return best[1], best[2]
    return (default, {"proxy": path.lstrip("/")}) if default is not None else None


class GatewayProxy:
    def __init__(self, registry: ClusterRegistry) -> None:
        self.registry = registry
        self._servers: dict[str, BackgroundServer] = {}
        self._apis: dict[str, Api] = {}
        self._lock = threading.Lock()

    def open(self, api: Api) -> str:
        proxy = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                body = self.read_body()
                code, data, headers = proxy.handle(api.api_id, self.command, self.path, dict(self.headers), body)
                self.send_bytes(code, data, headers.pop("Content-Type", "application/json"), headers)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        server = BackgroundServer(Handler, name=f"apigw-{api.api_id}").start()
        with self._lock:
            self._servers[api.api_id] = server
            self._apis[api.api_id] = api
        return server.url

    def close(self, api_id: str) -> None:
        with self._lock:
            server = self._servers.pop(api_id, None)
            self._apis.pop(api_id, None)
        if server is not None:
            server.stop()

    def close_all(self) -> None:
        for api_id in list(self._servers):
            self.close(api_id)

    def handle(self, api_id: str, method: str, raw_path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, bytes, dict[str, str]]:
        api = self._apis.get(api_id)
        if api is None:
            return 404, b'{"message":"Not Found"}', {}
        path, _, query = raw_path.partition("?")
        if not any(getattr(s, "auto_deploy", False) or s.name == "$default" for s in api.stages.values()):
            return 404, b'{"message":"Not Found"}', {}  # nothing deployed: AWS answers 404 too
        found = match_route(api, method, path)
        if found is None:
            return 404, b'{"message":"Not Found"}', {}
        route, params = found
        target = str(route.target or "")
        integration = api.integrations.get(target.removeprefix("integrations/"))
        if integration is None or integration.integration_type != "HTTP_PROXY":
            return 500, b'{"message":"Internal Server Error"}', {}
        uri = str(integration.integration_uri)
        for k, v in params.items():
            uri = uri.replace(f"{{{k}+}}", v).replace(f"{{{k}}}", v)
        parts = urlsplit(uri)
        upstream_path = (parts.path or "/") + (f"?{parts.query or query}" if (parts.query or query) else "")
        if not integration.integration_uri.rstrip("/").endswith("}") and parts.path in ("", "/"):
            upstream_path = path + (f"?{query}" if query else "")  # a bare host URI: pass the path on
        reply = forward(self.registry, parts.netloc, str(integration.integration_method or method)
                        if str(integration.integration_method or "ANY") != "ANY" else method,
                        upstream_path, headers, body, parts.netloc)
        if reply.status == 502:
            return 503, b'{"message":"Service Unavailable"}', reply.headers
        return reply.status, reply.body, reply.headers
