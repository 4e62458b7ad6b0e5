"""A loopback-only threaded HTTP server that runs in a background thread and stops cleanly."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive handler with JSON helpers; requests are not logged (a probe would flood the log)."""

    protocol_version = "HTTP/1.1"
    server_version = "migrate-sandbox"

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        owner: BackgroundServer | None = getattr(self.server, "owner", None)
        if owner is not None:
            owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            owner: BackgroundServer | None = getattr(self.server, "owner", None)
            if owner is not None:
                owner._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def read_json(self) -> Any:
        raw = self.read_body()
        return json.loads(raw) if raw.strip() else {}

    def send_bytes(self, code: int, data: bytes, content_type: str = "application/json",
                   headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(code, json.dumps(body, separators=(",", ":"), default=str).encode(), headers=headers)


class BackgroundServer:
    """Binds 127.0.0.1 (ephemeral port by default) and serves in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0, name: str = "http") -> None:
        self._httpd = _Server((LOOPBACK, port), handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._name = name
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{self._name}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:  # idle keep-alive connections would otherwise hold their handler threads
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)
