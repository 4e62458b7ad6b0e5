"""HTTP/1.1 front end: routing of Kubernetes REST paths onto KubeAPI, JSON bodies, chunked watch streams."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from . import discovery, openapi_v2, tables
from .api import KubeAPI, Request, Response
from .controllers import Controllers
from .faults import Faults
from .kubeconfig import write_kubeconfig
from .status import ApiError

_JSON = "application/json"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: KubeAPIServer


class _Headers:
    """Request headers by lower-cased name; the first of a repeated header wins, as Message.get does."""

    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        self._h.setdefault(name.strip().lower(), value.strip())

    def get(self, name: str, default: Any = None) -> Any:
        return self._h.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._h.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._h


_MAX_HEADERS = 100
_date_cache: tuple[int, str] = (0, "")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    server_version = "kube-sandbox"
    raw_requestline: bytes
    _headers_buffer: list[bytes]

    def parse_request(self) -> bool:
        """The stdlib's request parsing, minus email.parser for the headers: that parser was a fifth of the
        emulator's CPU per request. Only HTTP/1.0 and 1.1 are spoken, as by every Kubernetes client."""
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(400, f"Bad request syntax ({self.requestline!r})")
            return False
        self.command, path, self.request_version = words
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        headers = _Headers()
        for _ in range(_MAX_HEADERS + 1):
            line = self.rfile.readline(65537)
            if len(line) > 65536:
                self.send_error(431, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, sep, value = str(line, "iso-8859-1").partition(":")
            if sep:
                headers.add(name, value)
        else:
            self.send_error(431, "Too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        conn = (headers.get("Connection") or "").lower()
        self.close_connection = conn == "close" or (self.request_version == "HTTP/1.0" and conn != "keep-alive")
        if (headers.get("Expect") or "").lower() == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def date_time_string(self, timestamp: float | None = None) -> str:
        # Formatting the Date header per response cost more than a second's resolution is worth.
        global _date_cache
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        if _date_cache[0] != now:
            _date_cache = (now, super().date_time_string(now))
        return _date_cache[1]

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are not logged; a busy replay would flood stderr

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        try:
            data = orjson.dumps(body)
        except TypeError:  # an integer beyond 64 bits, say: json writes what orjson refuses
            data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        # Headers and body in one send: two small writes per response cost a syscall each.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(data)
        self.flush_headers()

    def _send_error(self, e: ApiError) -> None:
        headers = {"Retry-After": str(e.retry_after)} if e.retry_after else None
        self._send(e.code, e.status(), headers)

    def _dispatch(self, method: str) -> None:
        owner = self.server.owner
        try:
            body = self._read_body()
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            if owner.token and self.headers.get("Authorization", "") != f"Bearer {owner.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if url.path.startswith("/_sandbox/"):
                self._control(method, url.path, body)
                return
            if method == "GET" and self._discovery(url.path):
                return
            req = owner.route(method, url.path, query, body, self.headers.get("Content-Type", ""),
                              self.headers.get("User-Agent", ""))
            if req.verb == "watch":
                self._watch(req)
                return
            resp: Response = owner.api.handle(req)
            if method == "GET" and resp.code == 200 and req.verb in ("get", "list") and \
                    tables.wants_table(self.headers.get("Accept", "")):
                crd = owner.api.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), "",
                                          f"{req.rt.plural}.{req.rt.group}") if req.rt.is_custom else None
                resp.body = tables.to_table(req.rt, resp.body, query.get("includeObject", "PartialObjectMetadata"),
                                            crd)
            headers = {}
            if resp.warnings:
                headers["Warning"] = ", ".join(_warning(w) for w in resp.warnings[:20])
            self._send(resp.code, resp.body, headers)
        except ApiError as e:
            self._send_error(e)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as e:  # a bug must still answer as an API server would
            self._send_error(ApiError(500, f"internal error: {type(e).__name__}: {e}", "InternalError"))

    def _discovery(self, path: str) -> bool:
        owner = self.server.owner
        reg = owner.api.registry
        doc: dict[str, Any] | None = None
        path = path.rstrip("/") or "/"
        if path == "/version":
            doc = discovery.version_info(owner.version)
        elif path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        elif path == "/api":
            doc = discovery.api_versions(f"127.0.0.1:{owner.port}")
        elif path == "/apis":
            doc = discovery.api_group_list(reg)
        elif path == "/openapi/v3":
            doc = discovery.openapi_root(reg, str(owner.crd_generation))
        elif path.startswith("/openapi/v3/"):
            doc = owner.openapi_doc(path[len("/openapi/v3/"):])
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource", "NotFound")
        elif path == "/openapi/v2":
            # kubectl asks for protobuf (to validate `*List` files client-side); other clients get JSON.
            if "protobuf" in self.headers.get("Accept", ""):
                data = owner.openapi_v2(protobuf=True)
                self.send_response(200)
                self.send_header("Content-Type", openapi_v2.PROTOBUF)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True
            doc = json.loads(owner.openapi_v2(protobuf=False))
        else:
            parts = path.strip("/").split("/")
            if parts[0] == "api" and len(parts) == 2:
                doc = discovery.resource_list(reg, "", parts[1])
            elif parts[0] == "apis" and len(parts) == 2:
                doc = discovery.api_group(reg, parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                doc = discovery.resource_list(reg, parts[1], parts[2])
            else:
                return False
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource", "NotFound")
        self._send(200, doc)
        return True

    def _watch(self, req: Request) -> None:
        owner = self.server.owner
        events: Generator[dict[str, Any] | None, None, None] = owner.api.watch(req)
        first = next(events)  # raises ApiError (bad selector, ...) before we commit to a 200
        self.send_response(200)
        self.send_header("Content-Type", _JSON)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        try:
            item: dict[str, Any] | None = first
            while True:
                if item is not None:
                    data = json.dumps(item, separators=(",", ":")).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                if owner.stopping:
                    break
                try:
                    item = next(events)
                except StopIteration:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, BrokenPipeError, OSError):
            self.close_connection = True
        finally:
            events.close()

    def _control(self, method: str, path: str, body: bytes) -> None:
        """Sandbox-only endpoints: fault injection, and `GET /_sandbox/idle` (200 once the controllers have
        nothing queued, 503 after 60 s) for benchmarks that must start from a cluster at rest."""
        faults = self.server.owner.faults
        if path.rstrip("/") == "/_sandbox/idle" and method == "GET":
            idle = self.server.owner.controllers.wait_idle(60)
            self._send(200 if idle else 503, {"idle": idle})
            return
        if path.rstrip("/") != "/_sandbox/faults":
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        if method == "POST":
            try:
                faults.load(json.loads(body or b"{}"))
            except (ValueError, KeyError, TypeError) as e:
                raise ApiError(400, f"bad fault spec: {e}", "BadRequest") from e
        elif method == "DELETE":
            faults.clear()
        self._send(200, faults.snapshot())


def _warning(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'299 - "{escaped}"'


_VERB = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class KubeAPIServer:
    """One emulated cluster's API server.

        server = KubeAPIServer(version="1.29", controller_delay=0.2).start()
        server.url; server.faults.never_ready("deployments", "default", "web"); server.stop()
    """

    def __init__(self, version: str = "1.29", controller_delay: float = 0.5, host: str = "127.0.0.1",
                 port: int = 0, token: str | None = None, cluster_name: str = "sandbox",
                 event_log_size: int = 100_000) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the sandbox API server listens on loopback only")
        self.version = version
        self.host = host
        self.token = token
        self.cluster_name = cluster_name
        self.faults = Faults()
        self.api = KubeAPI(version, self.faults, event_log_size)
        self.controllers = Controllers(self.api, controller_delay, cluster_name)
        self.crd_generation = 0
        self.api.on_crd_change.append(self._crd_changed)
        self._requested_port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._openapi_cache: dict[tuple[str, int], dict[str, Any]] = {}
        self._openapi_v2_cache: dict[tuple[str, int], bytes] = {}
        self.stopping = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> KubeAPIServer:
        httpd = _HTTPServer((self.host, self._requested_port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self.controllers.start()
        self.controllers.bootstrap()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"kubeapi-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping = True
        self.api.store.close()  # ends watches
        self.controllers.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:  # keep-alive connections would otherwise hold their threads
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> KubeAPIServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: str | Path, context: str | None = None, namespace: str | None = None) -> Path:
        return write_kubeconfig(path, self.url, name=context or self.cluster_name, token=self.token,
                                namespace=namespace)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the simulated controllers have nothing due (handy in tests)."""
        return self.controllers.wait_idle(timeout)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _crd_changed(self) -> None:
        self.crd_generation += 1

    def openapi_v2(self, *, protobuf: bool) -> bytes:
        key = ("v2-pb" if protobuf else "v2-json", self.crd_generation)
        data = self._openapi_v2_cache.get(key)
        if data is None:
            doc = openapi_v2.document(self.api.registry, self.api.schemas, self.version)
            data = openapi_v2.encode(doc) if protobuf else json.dumps(doc, separators=(",", ":")).encode()
            self._openapi_v2_cache = {k: v for k, v in self._openapi_v2_cache.items() if k[1] == self.crd_generation}
            self._openapi_v2_cache[key] = data
        return data

    def openapi_doc(self, gv_path: str) -> dict[str, Any] | None:
        key = (gv_path, self.crd_generation)
        doc = self._openapi_cache.get(key)
        if doc is None:
            doc = discovery.openapi_gv(self.api.registry, self.api.schemas, gv_path, self.version)
            if doc is not None:
                self._openapi_cache[key] = doc
        return doc

    # ------------------------------------------------------------------ routing

    def route(self, method: str, path: str, query: dict[str, str], body: bytes, content_type: str,
              user_agent: str) -> Request:
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
            if group == "" and rest[0] in ("status", "finalize"):
                rest = ["namespaces", namespace, rest[0]]
                namespace = ""
        if not rest or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        rt = self.api.registry.get(group, version, rest[0])
        if rt is None:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub == "finalize" and rt.plural == "namespaces":
            sub = "status"  # close enough: both only touch what the namespace controller owns
        if sub and sub not in rt.subresources:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        if rt.namespaced is False and namespace:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        verb = _VERB.get(method, "")
        if method == "GET" and not name:
            verb = "watch" if query.get("watch") in ("true", "1") else "list"
        elif method == "DELETE" and not name:
            verb = "deletecollection"
        elif (method == "POST" and name) or (method in ("PUT", "PATCH") and not name):
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           "MethodNotAllowed")
        if verb not in rt.verbs and verb not in ("get",):
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           "MethodNotAllowed")
        if verb == "watch":
            self.faults.check("watch", rt.plural, namespace or None, None)
        return Request(verb, rt, namespace, name, sub, query, body, content_type, user_agent)


