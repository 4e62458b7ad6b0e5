"""``/openapi/v2``: the Swagger 2.0 document, from the same schemas as ``/openapi/v3`` (built-in kinds, their
``*List`` kinds, and the CRDs served now), as JSON or as the protobuf kubectl asks for.

kubectl's client-side validation reads v2 whenever v3 cannot answer (a ``ConfigMapList`` or ``kind: List``
file), and only in protobuf (``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``): the
``openapi.v2.Document`` message of google/gnostic's OpenAPIv2.proto. The encoder below writes the part of
that message a schema needs, by hand, with the field numbers of that file: no generated code.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from .discovery import _to_openapi, crd_definitions
from .resources import Registry
from .schemas import BuiltinSchemas

# What kubectl asks for ("@" in Accept); the answer's Content-Type spells it with a dot, as kube-openapi does,
# since Go's mime parser refuses the "@" in a response header.
PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_V2_REFS = "#/definitions/"


def document(registry: Registry, schemas: BuiltinSchemas, version: str) -> dict[str, Any]:
    """The Swagger 2.0 document: every built-in definition, and the served CRDs with their List kinds."""
    definitions = {name: _to_openapi(node, _V2_REFS) for name, node in schemas.defs.items()}
    for rt in registry.all():
        if rt.is_custom:
            definitions.update(crd_definitions(rt, _V2_REFS))
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": f"v{version}"}, "paths": {},
            "definitions": dict(sorted(definitions.items()))}


# ---- protobuf wire format --------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _len(number: int, data: bytes) -> bytes:
    return _field(number, 2) + _varint(len(data)) + data


def _str(number: int, text: str) -> bytes:
    return _len(number, text.encode())


def _bool(number: int, value: bool, *, always: bool = False) -> bytes:
    return _field(number, 0) + _varint(int(value)) if value or always else b""


def _int(number: int, value: int) -> bytes:
    return _field(number, 0) + _varint(int(value))


def _double(number: int, value: float) -> bytes:
    return _field(number, 1) + struct.pack("<d", float(value))


def _any(number: int, value: Any) -> bytes:
    """An ``openapi.v2.Any``: its ``yaml`` field (2); JSON is YAML."""
    return _len(number, _str(2, json.dumps(value)))


# openapi.v2.Schema field numbers
_S_STR = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_S_DOUBLE = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_S_BOOL = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_S_INT = {"maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15, "maxProperties": 17,
          "minProperties": 18}


def schema(node: Any) -> bytes:
    """One ``openapi.v2.Schema`` message."""
    if not isinstance(node, dict):
        return b""
    out = bytearray()
    for key, value in node.items():
        if key in _S_STR and isinstance(value, str):
            out += _str(_S_STR[key], value)
        elif key in _S_DOUBLE and isinstance(value, int | float) and not isinstance(value, bool):
            out += _double(_S_DOUBLE[key], value)
        elif key in _S_BOOL and isinstance(value, bool):
            out += _bool(_S_BOOL[key], value)
        elif key in _S_INT and isinstance(value, int) and not isinstance(value, bool):
            out += _int(_S_INT[key], value)
        elif key == "default":
            out += _any(5, value)
        elif key == "required" and isinstance(value, list):
            for r in value:
                out += _str(19, str(r))
        elif key == "enum" and isinstance(value, list):
            for v in value:
                out += _any(20, v)
        elif key == "additionalProperties":
            # AdditionalPropertiesItem: oneof schema (1) / boolean (2)
            inner = _len(1, schema(value)) if isinstance(value, dict) else _bool(2, bool(value), always=True)
            out += _len(21, inner)
        elif key == "type":
            types = value if isinstance(value, list) else [value]
            out += _len(22, b"".join(_str(1, str(t)) for t in types))
        elif key == "items":
            items = value if isinstance(value, list) else [value]
            out += _len(23, b"".join(_len(1, schema(i)) for i in items))
        elif key == "allOf" and isinstance(value, list):
            for sub in value:
                out += _len(24, schema(sub))
        elif key == "properties" and isinstance(value, dict):
            out += _len(25, b"".join(_len(1, _str(1, name) + _len(2, schema(sub))) for name, sub in value.items()))
        elif key == "example":
            out += _any(30, value)
        elif key.startswith("x-"):
            out += _len(31, _str(1, key) + _any(2, value))
    return bytes(out)


def encode(doc: dict[str, Any]) -> bytes:
    """An ``openapi.v2.Document``: swagger (1), info (2), paths (8), definitions (9)."""
    info = doc.get("info") or {}
    out = bytearray(_str(1, str(doc.get("swagger", "2.0"))))
    out += _len(2, _str(1, str(info.get("title", ""))) + _str(2, str(info.get("version", ""))))
    out += _len(8, b"")
    definitions = b"".join(_len(1, _str(1, name) + _len(2, schema(node)))
                           for name, node in (doc.get("definitions") or {}).items())
    out += _len(9, definitions)
    return bytes(out)
