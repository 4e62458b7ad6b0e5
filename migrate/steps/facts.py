"""Read-only facts for planning: each step kind contributes to the inputs fingerprint."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from migrate.steps import registry
from migrate.steps.base import Context


def gather(ctx: Context, kinds: Iterable[str]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for kind in sorted(set(kinds)):
        impl = registry.get(kind)
        if impl is None:
            facts[kind] = "not available"
            continue
        contributed = impl.facts(ctx)
        if contributed:
            facts[kind] = contributed
    return facts
