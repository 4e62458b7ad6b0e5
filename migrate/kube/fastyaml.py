"""Block-style YAML for Kubernetes objects, several times PyYAML's speed on the review's 10,000 manifests.

PyYAML's representer and resolver run in Python for every node, even with libyaml's emitter: writing the
review of 10,000 objects took over a second. Kubernetes objects are plain JSON data, so this writes them
directly: keys and strings that cannot be read as anything but a string stay plain, every other string is
written double-quoted with JSON's escapes (a subset of YAML's). What it does not handle for certain (a
float, a character YAML readers reject, a key that is not a string) returns None, and the caller uses
PyYAML for that document. The tests read every output back with PyYAML and compare.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Starts with a letter (so never a number, a date or .inf), then only characters that need no quoting; a
# colon only between two of them (": " or a final ":" would make a key).
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*(?::[A-Za-z0-9_./-]+)*")
# YAML 1.1 booleans and nulls: plain, they would be read back as those.
_SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
# Characters a YAML reader takes as line breaks or refuses in a document: left to PyYAML.
_UNSAFE_CHARS = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")


class _Unsupported(Exception):
    pass


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _SPECIAL:
            return value
        if _UNSAFE_CHARS.search(value):
            raise _Unsupported
        return json.dumps(value, ensure_ascii=False)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    raise _Unsupported  # floats and anything else: PyYAML's representation is the reference


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Append the lines of a mapping or a sequence at ``indent``; the caller wrote the line that owns it."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _Unsupported
            key = _scalar(k)
            if isinstance(v, dict) and v:
                out.append(f"{indent}{key}:\n")
                _emit(v, indent + "  ", out)
            elif isinstance(v, list) and v:
                out.append(f"{indent}{key}:\n")
                _emit(v, indent, out)  # PyYAML's style: a sequence under a key is not indented
            else:
                out.append(f"{indent}{key}: {_inline(v)}\n")
        return
    for item in value:
        if isinstance(item, dict) and item:
            lines: list[str] = []
            _emit(item, indent + "  ", lines)
            lines[0] = f"{indent}- {lines[0][len(indent) + 2:]}"
            out.extend(lines)
        elif isinstance(item, list) and item:
            lines = []
            _emit(item, indent + "  ", lines)
            lines[0] = f"{indent}- {lines[0][len(indent) + 2:]}"
            out.extend(lines)
        else:
            out.append(f"{indent}- {_inline(item)}\n")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def dump(obj: dict[str, Any]) -> str | None:
    """``obj`` as one YAML document (no ``---``), or None when it holds something only PyYAML should write."""
    out: list[str] = []
    try:
        if not obj:
            return "{}\n"
        _emit(obj, "", out)
    except _Unsupported:
        return None
    return "".join(out)
