"""Files the replay writes: review manifests (Secrets redacted), summaries, and private 0600 state files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from migrate.fileio import atomic_write
from migrate.kube import fastyaml
from migrate.kube.objects import Key, Obj
from migrate.kube.order import PHASE_NAMES
from migrate.redact import redact

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


# libyaml's emitter when PyYAML was built with it: the pure-Python one was half of `invoke plan`'s time on
# 10,000 objects. Both are the safe dumper, so the review manifests hold the same data.
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_private(path: Path, text: str) -> None:
    """Atomic write with mode 0600: a reader (or a resumed run) sees the old file or the new, never half."""
    atomic_write(path, text)


def write_json(path: Path, data: Any) -> None:
    write_private(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def for_review(obj: Obj) -> Obj:
    """What a reviewer may see: the manifest as applied, with a Secret's payload redacted."""
    if obj.get("kind") == "Secret":
        out: Obj = redact(obj)
        return out
    return obj


def manifest_path(key: Key, phase: int) -> str:
    """The review file an object goes to: one per phase, namespace and kind."""
    kind = f"{key.kind}.{key.group}" if key.group else key.kind
    ns = key.namespace or "_cluster"
    return f"{phase:02d}-{PHASE_NAMES[phase]}/{_UNSAFE.sub('_', ns)}/{_UNSAFE.sub('_', kind)}.yaml"


def write_manifests(root: Path, items: Iterable[tuple[Key, int, Obj]]) -> int:
    """Write the review manifests, one multi-document YAML file per phase, namespace and kind, the
    documents in apply order; returns how many objects. One file per object made 10,000 files for
    10,000 objects: creating them took longer than the rest of `invoke plan` together."""
    files: dict[str, list[Obj]] = {}
    n = 0
    for key, phase, obj in items:
        files.setdefault(manifest_path(key, phase), []).append(for_review(obj))
        n += 1
    for rel, docs in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"---\n{manifest_text(d)}" for d in docs), encoding="utf-8")
    return n


def manifest_text(obj: Obj) -> str:
    """One document: the fast writer (kube/fastyaml.py) where it is certain, else PyYAML's safe dumper."""
    text = fastyaml.dump(obj)
    if text is None:
        text = str(yaml.dump(obj, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, allow_unicode=False))
    return text


def render_summary_md(s: dict[str, Any]) -> str:
    lines = [f"# Workload replay review: {s.get('old_cluster', '')} -> {s.get('new_cluster', '')}", "",
             f"- Objects to apply: **{s['counts']['planned']}**",
             f"- Skipped: {s['counts']['skipped']}",
             f"- Invalid after transforms: {s['counts']['invalid']}", ""]
    lines += ["## Objects per kind", "", "| kind | count |", "|---|---|"]
    lines += [f"| {k} | {n} |" for k, n in s["per_kind"].items()]
    lines += ["", "## Order", "", "| phase | objects |", "|---|---|"]
    lines += [f"| {p} | {n} |" for p, n in s["per_phase"].items()]
    lines += ["", "## Transforms applied", ""]
    if s["transforms"]:
        lines += ["| rule | objects |", "|---|---|"] + [f"| `{r}` | {n} |" for r, n in s["transforms"].items()]
    else:
        lines.append("None.")
    if s["invalid"]:
        lines += ["", "## Invalid after transforms (will not be applied)", "", "| object | rule | problem |",
                  "|---|---|---|"]
        lines += [f"| {i['object']} | `{i['rule']}` | {i['reason']} |" for i in s["invalid"]]
    lines += ["", "## Skipped (never copied)", "", "| reason | objects |", "|---|---|"]
    lines += [f"| {r} | {n} |" for r, n in s["skipped_by_reason"].items()]
    if s.get("skipped_kinds"):
        lines += ["", "## Kinds not read at all", "", "| kind | reason |", "|---|---|"]
        lines += [f"| {k} | {r} |" for k, r in s["skipped_kinds"].items()]
    if s.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in s["warnings"]]
    lines += ["", "Secrets' data is redacted in `manifests/`; everything else is exactly what will be applied.", ""]
    return "\n".join(lines)
