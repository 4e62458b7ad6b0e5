"""Diffy-style response comparison: candidate (new) against primary (old), with noise from a secondary (old).

Every request goes to the new cluster, to the old one, and to the old one again. Fields whose values differ
between the two old answers are non-deterministic (timestamps, request ids, ordering): they are noise and are
subtracted before the new answer is compared with the first old one. What remains is reported per field,
with the share of requests in which it differed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_ABSENT = "<absent>"


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": [1]}} -> {"a.b[0]": 1}; scalars at their path. Empty containers keep their own path."""
    out: dict[str, Any] = {}
    if isinstance(doc, dict) and doc:
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, list) and doc:
        for i, v in enumerate(doc):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix or "$"] = doc
    return out


def fields_of(status: int, body: bytes) -> dict[str, Any]:
    """The comparable fields of one answer: its status, and its JSON fields (or the raw text)."""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    fields: dict[str, Any] = {"$status": status}
    if doc is not None:
        fields.update(flatten(doc, "body"))
    else:
        fields["body"] = body.decode("utf-8", "replace")
    return fields


def differing(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    return {k for k in a.keys() | b.keys() if a.get(k, _ABSENT) != b.get(k, _ABSENT)}


def _ignored(name: str, ignore: Iterable[str]) -> bool:
    for pattern in ignore:
        p = pattern if pattern.startswith(("body", "$")) else f"body.{pattern}"
        if name == p or name.startswith(p + ".") or name.startswith(p + "["):
            return True
    return False


@dataclass(frozen=True)
class Triple:
    """One request's three answers, as comparable fields."""

    path: str
    candidate: dict[str, Any]
    primary: dict[str, Any]
    secondary: dict[str, Any]


@dataclass
class DiffReport:
    requests: int
    differences: dict[str, float] = field(default_factory=dict)  # field -> share of requests that differed
    noise: dict[str, float] = field(default_factory=dict)  # field -> share of requests where old != old
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {new, old}

    def worst(self) -> float:
        return max(self.differences.values(), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "differences": self.differences, "noise": self.noise,
                "examples": self.examples}


def compare(triples: list[Triple], ignore: Iterable[str] = ()) -> DiffReport:
    """Per path, noise is what ever differed between primary and secondary; the rest of candidate-vs-primary
    differences are real, and are counted per field."""
    ignore = list(ignore)
    by_path: dict[str, list[Triple]] = {}
    for t in triples:
        by_path.setdefault(t.path, []).append(t)
    report = DiffReport(requests=len(triples))
    diff_counts: dict[str, int] = {}
    noise_counts: dict[str, int] = {}
    for group in by_path.values():
        noise: set[str] = set()
        for t in group:
            for f in differing(t.primary, t.secondary):
                noise.add(f)
                noise_counts[f] = noise_counts.get(f, 0) + 1
        for t in group:
            for f in differing(t.candidate, t.primary) - noise:
                if _ignored(f, ignore):
                    continue
                diff_counts[f] = diff_counts.get(f, 0) + 1
                report.examples.setdefault(f, {"new": t.candidate.get(f, _ABSENT), "old": t.primary.get(f, _ABSENT)})
    n = max(1, len(triples))
    report.differences = {f: round(c / n, 4) for f, c in sorted(diff_counts.items())}
    report.noise = {f: round(c / n, 4) for f, c in sorted(noise_counts.items())}
    return report
