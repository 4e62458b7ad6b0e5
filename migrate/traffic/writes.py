"""The write probe: keys written through the production entry point during the stateful cut, then read back.

Each request PUTs a new key (``<prefix><attempt>-<n>``, its value the key itself) through the same path a
client takes (the record, the proxy variables). A write is *acknowledged* when it gets a 2xx answer; every
sample is appended to a private file before the next write, so a killed run's acknowledged writes are known
to the resumed one. `verify` reads each acknowledged key back from the new cluster: a key that is missing or
holds another value is a lost write.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from migrate.traffic.probe import Probe, Sample, http_session


class WriteProbe(Probe):
    flush_every = 0.0  # every acknowledged write is on disk before the next one is sent

    def __init__(self, url: str, prefix: str, *, sink: Path, **kw: Any) -> None:
        super().__init__(url, sink=sink, **kw)
        self.prefix = prefix
        self.attempt = f"{int(time.time() * 1000):x}"
        self._n = 0

    def _send(self, session: requests.Session) -> tuple[requests.Response, str | None]:
        self._n += 1
        key = f"{self.prefix}{self.attempt}-{self._n:06d}"
        resp = session.put(f"{self.url.rstrip('/')}/{key}", data=key.encode(), headers=self.headers,
                           timeout=self.timeout, allow_redirects=False)
        return resp, key


def acknowledged(samples: Iterable[dict[str, Any]]) -> list[str]:
    """The keys whose write got a 2xx answer, in order, once each."""
    seen: dict[str, None] = {}
    for s in samples:
        key = s.get("key")
        if key and 200 <= int(s.get("status") or 0) < 300:
            seen.setdefault(str(key), None)
    return list(seen)


@dataclass
class Verdict:
    acknowledged: int
    lost: list[str] = field(default_factory=list)  # acknowledged, then missing or changed on the new cluster
    unreadable: list[str] = field(default_factory=list)  # no answer when read back: neither lost nor proven kept
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.lost and not self.unreadable

    def to_dict(self) -> dict[str, Any]:
        return {"acknowledged": self.acknowledged, "lost": len(self.lost), "lost_keys": self.lost[:20],
                "unreadable": len(self.unreadable), "unreadable_keys": self.unreadable[:20],
                "read_back_s": round(self.seconds, 2)}


READERS = 4  # keys read back at once, each reader on its own keep-alive session: reads wait on the network


def verify(url: str, keys: list[str], *, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Verdict:
    """GET every key from ``url`` (the new cluster), ``READERS`` at a time; the verdict lists keys in order."""
    out = Verdict(len(keys))
    t0 = time.perf_counter()
    found: dict[str, str] = {}  # key -> ok | lost | unreadable

    def read(share: list[str]) -> None:
        with http_session() as session:
            for key in share:
                try:
                    resp = session.get(f"{url.rstrip('/')}/{key}", headers=headers or {}, timeout=timeout)
                except requests.RequestException:
                    found[key] = "unreadable"
                    continue
                if resp.status_code == 404:
                    found[key] = "lost"
                elif resp.status_code != 200:
                    found[key] = "unreadable"
                else:
                    found[key] = "ok" if _value(resp) == key else "lost"

    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="read-back") as pool:
        for f in [pool.submit(read, keys[i::READERS]) for i in range(READERS)]:
            f.result()
    out.lost = [k for k in keys if found.get(k) == "lost"]
    out.unreadable = [k for k in keys if found.get(k, "unreadable") == "unreadable"]
    out.seconds = time.perf_counter() - t0
    return out


def _value(resp: requests.Response) -> str | None:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text
    return str(doc.get("value")) if isinstance(doc, dict) and "value" in doc else resp.text


def windows(samples: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Spans (start, end) of consecutive failed writes: when writes were unavailable, as a client saw it."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    last = 0.0
    for s in sorted(samples, key=lambda s: float(s["t"])):
        failed = not 200 <= int(s.get("status") or 0) < 300
        t = float(s["t"])
        if failed and start is None:
            start = t
        elif not failed and start is not None:
            spans.append((start, t))
            start = None
        last = t
    if start is not None:
        spans.append((start, last))
    return spans


__all__ = ["Sample", "Verdict", "WriteProbe", "acknowledged", "verify", "windows"]
