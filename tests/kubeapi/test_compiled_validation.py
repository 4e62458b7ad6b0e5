"""The compiled (fastjsonschema) validation path must agree with jsonschema on every object: the emulator
trusts it to skip jsonschema for valid objects, so a disagreement would admit an invalid write.

Pure: no server. The objects are the sandbox's seeded cluster (Deployments, Services, a StatefulSet with
claim templates, a CRD and its custom object, an Ingress) plus a kopf-style CRD, each object also mutated
leaf by leaf into wrong types, unknown fields and missing required fields.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from migrate.sandbox.kubeapi.schemas import SchemaValidator, builtin_schemas, crd_validator
from migrate.sandbox.seed.workloads import blue_cluster

_WRONG: list[Any] = ["text", 7, True, None, {"k": "v"}, ["x"], 1.5]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    if path:
        yield path


def _mutants(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield obj
    for n, path in enumerate(_leaves(obj)):
        for wrong in (_WRONG[n % len(_WRONG)], _WRONG[(n + 3) % len(_WRONG)]):
            m = copy.deepcopy(obj)
            parent = m
            for p in path[:-1]:
                parent = parent[p]
            parent[path[-1]] = wrong
            yield m
        m = copy.deepcopy(obj)
        parent = m
        for p in path[:-1]:
            parent = parent[p]
        if isinstance(parent, dict):
            parent.pop(path[-1])  # a missing required field, when it is one
            yield m
            if isinstance(parent, dict):
                parent["notAField"] = 1
                yield m


def _agree(v: SchemaValidator, obj: dict[str, Any]) -> tuple[bool, bool]:
    return v.passes_compiled(obj), not list(v.slow.iter_errors(obj))


def test_builtin_kinds_agree_on_seeded_objects_and_their_mutants() -> None:
    schemas = builtin_schemas("1.29")
    checked = rejected = 0
    for obj in blue_cluster("dev", "blue"):
        group, _, version = obj["apiVersion"].rpartition("/")
        v = schemas.validator(group, version, obj["kind"])
        if v is None:
            continue  # a custom resource: covered below
        for m in _mutants(obj):
            ok_fast, ok_slow = _agree(v, m)
            assert ok_fast == ok_slow, f"{obj['kind']} {obj['metadata']['name']}: {m}"
            checked += 1
            rejected += not ok_slow
    # The mutants must really exercise both answers, or the test proves nothing.
    assert checked > 500 and 0.2 < rejected / checked < 0.95


_KOPF_CRD_SCHEMA: dict[str, Any] = {  # the shape of kopf's examples/crd.yaml, with int-or-string and nullable
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "duration": {"x-kubernetes-int-or-string": True},
                "field": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 10},
                "items": {"type": "array", "items": {"type": "string"}, "nullable": True},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "replicas": {"type": "integer", "minimum": 0},
            },
            "required": ["field"],
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def test_crd_schema_agrees_with_jsonschema() -> None:
    v = crd_validator(_KOPF_CRD_SCHEMA)
    obj = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "kopf-example-1"},
           "spec": {"duration": "1m", "field": "value", "items": ["item1", "item2"], "mode": "a", "replicas": 2}}
    answers = set()
    for m in _mutants(obj):
        ok_fast, ok_slow = _agree(v, m)
        assert ok_fast == ok_slow, m
        answers.add(ok_slow)
    assert answers == {True, False}


@pytest.mark.parametrize("bad", [{"field": "UPPER"}, {"field": "x" * 11}, {"field": "a", "replicas": -1},
                                 {"field": "a", "mode": "c"}, {"field": "a", "duration": 1.5}, {}])
def test_crd_constraints_are_enforced_by_the_fast_path(bad: dict[str, Any]) -> None:
    obj = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "e"}, "spec": bad}
    assert not crd_validator(_KOPF_CRD_SCHEMA).passes_compiled(obj)


def test_compiled_code_is_cached_and_a_corrupt_cache_entry_is_rebuilt(tmp_path: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    obj = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "e"}, "spec": {"field": "a"}}
    assert crd_validator(_KOPF_CRD_SCHEMA).passes_compiled(obj)
    entries = list((tmp_path / "migrate-sandbox" / "validators").iterdir())
    assert len(entries) == 1
    entries[0].write_bytes(b"\x00garbage")
    v = crd_validator(_KOPF_CRD_SCHEMA)
    assert v.passes_compiled(obj)
    assert not v.passes_compiled({**obj, "spec": {"field": "UPPER"}})
    assert entries[0].read_bytes() != b"\x00garbage"
