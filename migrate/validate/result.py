"""The record every check produces; persisted as JSON for the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str  # health, parity, smoke, latency, diff, suite
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary(results: list[CheckResult]) -> dict[str, Any]:
    failed = [r for r in results if not r.ok]
    return {"ok": not failed, "checks": len(results), "failed": [r.name for r in failed],
            "results": [r.to_dict() for r in results]}
