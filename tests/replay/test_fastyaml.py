"""The review's fast YAML writer: every document it writes reads back, with PyYAML, as the object it was;
what it is not sure of it leaves to PyYAML (None)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from migrate.kube import fastyaml
from migrate.kube.manifests import manifest_text
from tests.replay.kit import FIXTURES

# Strings a YAML 1.1 reader would take for something else, or that need quoting to survive.
TRICKY = ["yes", "No", "ON", "off", "y", "N", "true", "False", "null", "NULL", "~", "", " x", "x ", "a: b", "a:",
          "a::b", "#c", "a #b", "@x", "`x", "-", "- x", "?", "? x", "|", ">", "!x", "&a", "*a", "%x", "=", "<<",
          "0755", "0x1F", "1e3", "1_000", "1:20", "+1", "-1", ".5", ".inf", "-.inf", ".nan", "2024-01-01",
          "2024-01-01T00:00:00Z", "é", "😀", "line1\nline2", "trailing\n", "tab\t", "\x07", "\\", '"', "'",
          "{a}", "[a]", ",", "a,b", "http://x:80/p", "x:1:2", "sidecar.istio.io/inject", "v1.2.3"]


def _fixture_docs() -> list[dict[str, Any]]:
    docs = []
    for f in sorted(FIXTURES.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if isinstance(d, dict)]
    return docs


def test_public_manifests_round_trip_and_none_falls_back() -> None:
    docs = _fixture_docs()
    assert len(docs) > 30
    for d in docs:
        text = fastyaml.dump(d)
        assert text is not None, d.get("kind")
        assert yaml.safe_load(text) == d


def test_tricky_strings_keys_and_nesting_round_trip() -> None:
    obj = {"values": TRICKY, "as_keys": {s: i for i, s in enumerate(TRICKY)},
           "ints": [0, -1, 2**70, True, False, None], "empty": {}, "none": [], "nested": [[1, [2]], {"x": []}, [{}]]}
    text = fastyaml.dump(obj)
    assert text is not None
    assert yaml.safe_load(text) == obj
    assert "\nkind: Deployment\n" in "\n" + (fastyaml.dump({"kind": "Deployment"}) or "")  # plain where it can be


@pytest.mark.parametrize("obj", [{"ratio": 0.5}, {"s": "line\u2028sep"}, {"s": "nel\x85"}, {1: "int key"},
                                 {"s": "\ud83d"}, {"x": {"deep": [1.0]}}])
def test_what_it_is_not_sure_of_is_left_to_pyyaml(obj: dict[Any, Any]) -> None:
    assert fastyaml.dump(obj) is None
    if obj != {"s": "\ud83d"}:  # a lone surrogate cannot be written as UTF-8 at all
        assert yaml.safe_load(manifest_text(obj)) == obj  # the review still writes it, through PyYAML


def test_random_objects_round_trip() -> None:
    rng = random.Random(7)
    alphabet = "aZ09 :#-_./'\"\\\n\t{}[],&*!|>%@`?é😀"

    def text() -> str:
        return rng.choice(TRICKY) if rng.random() < 0.3 else "".join(rng.choice(alphabet)
                                                                     for _ in range(rng.randint(0, 8)))

    def value(depth: int) -> Any:
        r = rng.random()
        if depth > 3 or r < 0.4:
            return rng.choice([text(), text(), rng.randint(-10**6, 10**6), True, False, None])
        if r < 0.7:
            return {text(): value(depth + 1) for _ in range(rng.randint(0, 4))}
        return [value(depth + 1) for _ in range(rng.randint(0, 4))]

    for _ in range(2000):
        obj = {text(): value(0) for _ in range(rng.randint(1, 5))}
        out = fastyaml.dump(obj)
        assert out is not None
        assert yaml.safe_load(out) == obj, out
