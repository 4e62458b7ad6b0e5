"""The acknowledged-writes read-back, against a real HTTP server on 127.0.0.1: a key that is gone or holds
another value is lost, one that cannot be read is unreadable, and the verdict keeps the keys' order."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from migrate.traffic.writes import READERS, verify

STORE = {f"k{i:03d}": f"k{i:03d}" for i in range(60)}
STORE["k007"] = "someone else's value"
del STORE["k013"]
BROKEN = {"k021", "k042"}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        key = self.path.rsplit("/", 1)[-1]
        if key in BROKEN:
            self.send_response(500)
            self.end_headers()
            return
        if key not in STORE:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps({"key": key, "value": STORE[key]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/kv"
    server.shutdown()


def test_read_back_finds_lost_and_unreadable_keys_in_order(url: str) -> None:
    keys = [f"k{i:03d}" for i in range(60)]
    assert READERS > 1  # the keys are shared among several readers: the order must survive that
    v = verify(url, keys)
    assert v.acknowledged == 60
    assert v.lost == ["k007", "k013"]
    assert v.unreadable == ["k021", "k042"]
    assert not v.ok
    assert verify(url, [k for k in keys if k not in {"k007", "k013", "k021", "k042"}]).ok
