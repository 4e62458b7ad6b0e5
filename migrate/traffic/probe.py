"""The product probe: a steady, bounded stream of requests at the production entry point.

One worker thread sends one request at a time, paced at ``rate`` per second, through the standard proxy
variables (HTTP_PROXY / NO_PROXY), exactly as a client resolving the record would. It stops by itself after
``duration`` seconds or ``max_requests`` requests, so a crashed caller cannot leave it running for long.
Every sample (time, status, latency, backend) is kept in memory for the gates and appended to a private
JSON-lines file for the report and for a resumed run.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from migrate.traffic.files import JsonLines

MAX_RATE = 500.0
_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class _ProxyAdapter(HTTPAdapter):
    """urllib3 sets TCP_NODELAY on direct connections but not on those to an HTTP proxy: a request with a body
    then waits ~40 ms for the proxy's delayed ACK (Nagle), which the probe would report as latency."""

    def proxy_manager_for(self, proxy: str, **kw: Any) -> Any:
        kw.setdefault("socket_options", _NODELAY)
        return super().proxy_manager_for(proxy, **kw)


def http_session() -> requests.Session:
    s = requests.Session()  # trust_env: HTTP_PROXY / NO_PROXY apply, as for any client
    s.mount("http://", _ProxyAdapter())
    s.mount("https://", _ProxyAdapter())
    return s


@dataclass(frozen=True)
class Sample:
    t: float  # unix time the request was sent
    status: int  # 0: no HTTP answer
    latency_ms: float
    backend: str | None = None  # the value of the configured backend header, if any
    error: str | None = None
    tag: str = ""  # which step (or "baseline") the sample belongs to
    key: str | None = None  # the key a write probe stored (its value is the key itself)

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 400

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 4), "status": self.status, "latency_ms": round(self.latency_ms, 3),
                "backend": self.backend, "error": self.error, "tag": self.tag,
                **({"key": self.key} if self.key is not None else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        return cls(float(d["t"]), int(d["status"]), float(d["latency_ms"]), d.get("backend"), d.get("error"),
                   str(d.get("tag", "")), d.get("key"))


class Probe:
    flush_every = 1.0  # seconds between appends to the sink
    def __init__(self, url: str, *, rate: float = 20.0, duration: float = 600.0, max_requests: int = 100_000,
                 timeout: float = 2.0, headers: dict[str, str] | None = None, backend_header: str | None = None,
                 sink: Path | None = None, tag: str = "") -> None:
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"probe rate must be in (0, {MAX_RATE:g}] requests per second")
        self.url = url
        self.rate = rate
        self.duration = duration
        self.max_requests = max_requests
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.backend_header = backend_header
        self.sink = JsonLines(sink) if sink else None
        self.tag = tag
        self._samples: list[Sample] = []
        self._unflushed: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="migrate-probe", daemon=True)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 2)
        self.flush()

    def __enter__(self) -> Probe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def set_tag(self, tag: str) -> None:
        self.tag = tag

    def samples(self, since: float | None = None, until: float | None = None) -> list[Sample]:
        with self._lock:
            return [s for s in self._samples
                    if (since is None or s.t >= since) and (until is None or s.t < until)]

    def flush(self) -> None:
        with self._lock:
            rows, self._unflushed = self._unflushed, []
        if self.sink is not None:
            self.sink.append_many([s.to_dict() for s in rows])

    def _run(self) -> None:
        session = http_session()
        period = 1.0 / self.rate
        start = time.monotonic()
        next_at = start
        sent = 0
        last_flush = start
        try:
            while not self._stop.is_set() and sent < self.max_requests and time.monotonic() - start < self.duration:
                sample = self._one(session)
                sent += 1
                with self._lock:
                    self._samples.append(sample)
                    self._unflushed.append(sample)
                now = time.monotonic()
                if now - last_flush >= self.flush_every:
                    self.flush()
                    last_flush = now
                next_at += period
                # Fixed schedule, but never a burst to catch up after a slow answer.
                next_at = max(next_at, now)
                self._stop.wait(max(0.0, next_at - now))
        finally:
            session.close()

    def _send(self, session: requests.Session) -> tuple[requests.Response, str | None]:
        """One request; (its answer, the key it wrote if it writes)."""
        return session.get(self.url, headers=self.headers, timeout=self.timeout, allow_redirects=False), None

    def _one(self, session: requests.Session) -> Sample:
        t = time.time()
        t0 = time.perf_counter()
        key = None
        try:
            resp, key = self._send(session)
            resp.content  # noqa: B018 - read the body: a request is done when its answer is
            backend = resp.headers.get(self.backend_header) if self.backend_header else None
            return Sample(t, resp.status_code, (time.perf_counter() - t0) * 1000, backend, None, self.tag, key)
        except requests.RequestException as e:
            return Sample(t, 0, (time.perf_counter() - t0) * 1000, None, type(e).__name__, self.tag, key)
