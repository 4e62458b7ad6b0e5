"""The plan: typed, serializable, digested. Pure data; nothing here talks to the world."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

FORMAT_VERSION = 1


class Step(BaseModel):
    """One unit of work. ``params`` never hold secrets (see ``redact``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: str
    title: str
    params: dict[str, Any] = {}
    effect: str
    undo: str
    available: bool = True
    pause_after: bool = False


class Fingerprint(BaseModel):
    """What the plan was computed from. A plan is stale once any of this changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    config: str
    facts: dict[str, Any] = {}

    def digest(self) -> str:
        return canonical_digest(self.model_dump(mode="json"))


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    operation: Literal["migrate", "decommission"] = "migrate"
    env: str
    target: dict[str, Any]
    created_at: str
    created_by: str
    fingerprint: Fingerprint
    review: dict[str, Any] = {}
    steps: list[Step]
    digest: str = ""

    def body(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data.pop("digest", None)
        return data

    def compute_digest(self) -> str:
        return canonical_digest(self.body())

    def sealed(self) -> Plan:
        return self.model_copy(update={"digest": self.compute_digest()})

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_digest(data: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data).encode()).hexdigest()
