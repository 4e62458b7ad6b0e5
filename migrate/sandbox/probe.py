"""A steady, bounded request stream through the router, recording every response.

Each sample is (time, target cluster, status, latency). A request fails when it gets no HTTP answer
(status 0) or a status outside 200-399. The stream is paced at `rate` per second, one request at a time
on a keep-alive connection, and stops by itself after `duration` seconds or `max_requests` requests.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from .dataplane import CLUSTER_HEADER

MAX_RATE = 500.0
MAX_DURATION = 3600.0
MAX_REQUESTS = 1_000_000


@dataclass(frozen=True)
class Sample:
    t: float  # unix time the request was sent
    cluster: str | None
    status: int  # 0: no HTTP answer
    latency_ms: float
    error: str | None = None

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 400


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return round(s[k], 3)


def summarize(samples: list[Sample]) -> dict[str, Any]:
    by_cluster: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for s in samples:
        by_cluster[s.cluster or "-"] = by_cluster.get(s.cluster or "-", 0) + 1
        by_status[str(s.status)] = by_status.get(str(s.status), 0) + 1
    lat = [s.latency_ms for s in samples]
    ok = [s for s in samples if not s.failed]
    ok_by_cluster: dict[str, int] = {}
    for s in ok:
        ok_by_cluster[s.cluster or "-"] = ok_by_cluster.get(s.cluster or "-", 0) + 1
    return {"requests": len(samples), "failures": len(samples) - len(ok), "by_cluster": by_cluster,
            "ok_by_cluster": ok_by_cluster, "by_status": by_status,
            "share": {k: round(v / len(samples), 4) for k, v in by_cluster.items()} if samples else {},
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
            "first": samples[0].t if samples else None, "last": samples[-1].t if samples else None}


class Probe:
    def __init__(self, url: str, host: str, path: str = "/", rate: float = 50.0, duration: float = 60.0,
                 max_requests: int = 10_000, timeout: float = 2.0) -> None:
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate must be in (0, {MAX_RATE}] requests per second")
        if not 0 < duration <= MAX_DURATION:
            raise ValueError(f"duration must be in (0, {MAX_DURATION}] seconds")
        if not 0 < max_requests <= MAX_REQUESTS:
            raise ValueError(f"max_requests must be in (0, {MAX_REQUESTS}]")
        parts = urlsplit(url)
        self.addr = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.host, self.path, self.rate, self.duration = host, path, rate, duration
        self.max_requests, self.timeout = max_requests, timeout
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started: float | None = None
        self.stopped: float | None = None

    def start(self) -> Probe:
        self.started = time.time()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 2)

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def samples(self, since: float | None = None, until: float | None = None) -> list[Sample]:
        with self._lock:
            return [s for s in self._samples if (since is None or s.t >= since) and (until is None or s.t < until)]

    def summary(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        out = summarize(self.samples(since, until))
        out.update(running=self.running, host=self.host, path=self.path, rate=self.rate, started=self.started,
                   stopped=self.stopped)
        return out

    def report(self) -> dict[str, Any]:
        return {"summary": self.summary(), "samples": [asdict(s) for s in self.samples()]}

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        interval = 1.0 / self.rate
        start = time.monotonic()
        deadline = start + self.duration
        n = 0
        try:
            while not self._stop.is_set() and n < self.max_requests:
                due = start + n * interval
                now = time.monotonic()
                if due >= deadline:
                    break
                if due > now and self._stop.wait(due - now):
                    break
                if conn is None:
                    conn = http.client.HTTPConnection(*self.addr, timeout=self.timeout)
                sample, healthy = self._one(conn)
                if not healthy:
                    conn.close()
                    conn = None
                with self._lock:
                    self._samples.append(sample)
                n += 1
        finally:
            if conn is not None:
                conn.close()
            self.stopped = time.time()

    def _one(self, conn: http.client.HTTPConnection) -> tuple[Sample, bool]:
        t = time.time()
        t0 = time.perf_counter()
        try:
            conn.request("GET", self.path, headers={"Host": self.host, "User-Agent": "migrate-sandbox-probe"})
            resp = conn.getresponse()
            resp.read()
            ms = (time.perf_counter() - t0) * 1000
            return Sample(t, resp.getheader(CLUSTER_HEADER), resp.status, round(ms, 3)), not resp.will_close
        except (OSError, http.client.HTTPException) as e:
            ms = (time.perf_counter() - t0) * 1000
            return Sample(t, None, 0, round(ms, 3), f"{type(e).__name__}: {e}"), False
