"""Send one request on to the data plane that owns a hostname, as a client resolving it would."""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field

from .clusters import ClusterRegistry
from .dataplane import CLUSTER_HEADER, VIA_HEADER

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
        "content-length", "host"}


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def cluster(self) -> str | None:
        return self.headers.get(CLUSTER_HEADER)


def resolve(registry: ClusterRegistry, target: str) -> tuple[str, int, str | None] | None:
    """(host, port, cluster) for a hostname, or for a literal 127.0.0.1:PORT target."""
    name, _, port = target.partition(":")
    if name in ("127.0.0.1", "localhost"):
        return "127.0.0.1", int(port or 80), None
    owner = registry.owner_of(name)
    if owner is None:
        return None
    return "127.0.0.1", owner.dataplane._server.port, owner.name


def forward(registry: ClusterRegistry, target: str, method: str, path: str, headers: dict[str, str],
            body: bytes, host_header: str, timeout: float = 5.0) -> Reply:
    """Forward to `target` (a load balancer hostname); `host_header` is what the client asked for."""
    where = resolve(registry, target)
    if where is None:
        return Reply(502, b'{"error":"the target hostname resolves to no load balancer in the sandbox"}',
                     {"Content-Type": "application/json"})
    host, port, _ = where
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        out = {k: v for k, v in headers.items() if k.lower() not in _HOP}
        out["Host"] = host_header
        out[VIA_HEADER] = target.split(":")[0]
        conn.request(method, path, body=body or None, headers=out)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, data, {k: v for k, v in resp.getheaders() if k.lower() not in _HOP})
    except (TimeoutError, OSError, http.client.HTTPException) as e:
        return Reply(502, f'{{"error":"upstream failed: {type(e).__name__}"}}'.encode(),
                     {"Content-Type": "application/json"})
    finally:
        conn.close()
