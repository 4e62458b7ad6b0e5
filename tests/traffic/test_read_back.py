"""The acknowledged-writes read-back, against a real HTTP server on 127.0.0.1: a key that is gone or holds
another value is lost, one that cannot be read is unreadable, and the verdict keeps the keys' order."""

from __future__ import annotations

from typing import Any

from migrate.traffic.writes import READERS, verify
from traffic.kit import JsonServer

STORE = {f"k{i:03d}": f"k{i:03d}" for i in range(60)}
STORE["k007"] = "someone else's value"
del STORE["k013"]
BROKEN = {"k021", "k042"}


def _answer(path: str) -> tuple[int, dict[str, Any] | None]:
    key = path.rsplit("/", 1)[-1]
    if key in BROKEN:
        return 500, None
    if key not in STORE:
        return 404, None
    return 200, {"key": key, "value": STORE[key]}


def test_read_back_finds_lost_and_unreadable_keys_in_order() -> None:
    keys = [f"k{i:03d}" for i in range(60)]
    assert READERS > 1  # the keys are shared among several readers: the order must survive that
    with JsonServer(_answer) as server:
        url = f"{server.url}/kv"
        v = verify(url, keys)
        assert v.acknowledged == 60
        assert v.lost == ["k007", "k013"]
        assert v.unreadable == ["k021", "k042"]
        assert not v.ok
        assert verify(url, [k for k in keys if k not in {"k007", "k013", "k021", "k042"}]).ok
