"""Parity between the old and the new cluster, per kind, namespace and name (pure)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from migrate.kube.objects import Key, Obj, is_subset, key_of, to_json


@dataclass
class InventoryDiff:
    old_counts: dict[str, int] = field(default_factory=dict)  # "Kind.group" -> count
    new_counts: dict[str, int] = field(default_factory=dict)
    missing: list[Key] = field(default_factory=list)  # in the old selection, not on the new cluster
    extra: list[Key] = field(default_factory=list)  # on the new cluster only (its own add-ons, or leftovers)
    drifted: list[Key] = field(default_factory=list)  # present, but not as the replay wrote it

    @property
    def parity(self) -> bool:
        return not self.missing and not self.drifted

    def to_dict(self, limit: int = 200) -> dict[str, object]:
        return {"parity": self.parity, "old": self.old_counts, "new": self.new_counts,
                "missing": [str(k) for k in self.missing[:limit]], "extra": [str(k) for k in self.extra[:limit]],
                "drifted": [str(k) for k in self.drifted[:limit]],
                "counts": {"missing": len(self.missing), "extra": len(self.extra), "drifted": len(self.drifted)}}


def kind_label(k: Key) -> str:
    return f"{k.kind}.{k.group}" if k.group else k.kind


def counts(keys: Iterable[Key]) -> dict[str, int]:
    return dict(sorted(Counter(kind_label(k) for k in keys).items()))


def diff(old: Iterable[Key], new: dict[Key, Obj], desired: dict[Key, Obj] | None = None) -> InventoryDiff:
    """Compare the keys selected on the old cluster with the new cluster's objects (same selection rules).

    With `desired` (the manifests the replay applied), an object whose live copy lacks a field the manifest
    sets counts as drifted.
    """
    old_keys = sorted(set(old))
    new_keys = set(new)
    out = InventoryDiff(old_counts=counts(old_keys), new_counts=counts(new_keys))
    old_set = set(old_keys)
    out.missing = [k for k in old_keys if k not in new_keys]
    out.extra = sorted(k for k in new_keys if k not in old_set)
    if desired:
        out.drifted = sorted(k for k, want in desired.items() if k in new and not is_subset(want, new[k]))
    return out


def inventory_hash(sanitized: Iterable[Obj]) -> str:
    """A fingerprint of what a replay would copy: keys and *sanitized* content. Status updates and
    resourceVersion bumps do not change it (a busy cluster's plan would otherwise always be stale); a changed
    spec, label or ConfigMap value does."""
    h = hashlib.sha256()
    for k, data in sorted((str(key_of(o)), to_json(o, sort_keys=True)) for o in sanitized):
        h.update(k.encode())
        h.update(b"\0")
        h.update(data)
        h.update(b"\0")
    return h.hexdigest()

