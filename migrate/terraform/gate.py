"""Plan gates: read ``terraform show -json <planfile>`` and refuse dangerous plans (pure).

* ``protect``: the copy's plan must not delete, replace or update in place anything
  the old workspace still owns (a name built from ``terraform.workspace`` is the
  usual culprit of a replace; a tag naming the old cluster, of an update). Updates
  named by ``allow_update`` (addresses or globs) pass, and are reported with the
  attribute paths they change.
* ``only_deletes_of``: the old workspace's destroy plan at decommission may only
  delete old-cluster addresses; anything else (a shared VPC not yet handed over)
  fails the gate.

``tags_all`` noise: the aws provider's ``default_tags`` can show as a perpetual
in-place update touching only ``tags_all``. Such updates are marked
``noise=True``; they never fail a gate, and ``real_changes`` leaves them out
for "no changes" checks.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from migrate.errors import GateFailed, StateError
from migrate.terraform.address import Address, parse_address

NOISE_KEYS = frozenset({"tags_all"})


class PlanGateFailed(GateFailed):
    """A plan gate refused a plan; ``violations`` lists the offending addresses."""

    def __init__(self, what: str, *, where: str, hint: str, violations: list[str]) -> None:
        super().__init__(what, where=where, hint=hint)
        self.violations = violations


@dataclass(frozen=True)
class PlannedChange:
    address: str
    kind: str                    # create, read, update, delete, replace, forget, no-op
    actions: tuple[str, ...]
    reason: str | None = None    # terraform's action_reason, e.g. replace_because_cannot_update
    noise: bool = False          # an update that only touches tags_all
    paths: tuple[str, ...] = ()  # the attribute paths an update changes: tags["kubernetes.io/cluster/x"]

    @property
    def destructive(self) -> bool:
        return self.kind in ("delete", "replace")


@dataclass(frozen=True)
class GateReport:
    gate: str
    changes: tuple[PlannedChange, ...]
    violations: tuple[PlannedChange, ...] = ()
    allowed_updates: tuple[PlannedChange, ...] = ()   # updates of protected objects that allow_update accepted

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.kind] = out.get(c.kind, 0) + 1
        return out


def _kind(actions: tuple[str, ...]) -> str:
    if "delete" in actions and "create" in actions:
        return "replace"
    if len(actions) == 1:
        return actions[0]
    return "+".join(actions) or "no-op"


def _only_noise(change: Mapping[str, Any]) -> bool:
    before, after = change.get("before"), change.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False
    unknown = change.get("after_unknown") or {}
    differing = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    differing |= {k for k, v in unknown.items() if v is True} if isinstance(unknown, dict) else set()
    return bool(differing) and differing <= NOISE_KEYS


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _step(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    text = str(key)
    if _IDENT.match(text):
        return f"{prefix}.{text}" if prefix else text
    return f'{prefix}["{text}"]'


def _diff(before: Any, after: Any, unknown: Any, prefix: str, out: list[str]) -> None:
    if unknown is True:
        out.append(prefix or "(whole object)")
        return
    if isinstance(before, dict) and isinstance(after, dict):
        unk = unknown if isinstance(unknown, dict) else {}
        for k in sorted(before.keys() | after.keys() | unk.keys(), key=str):
            _diff(before.get(k), after.get(k), unk.get(k), _step(prefix, k), out)
        return
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        unk_l = unknown if isinstance(unknown, list) else []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            _diff(b, a, unk_l[i] if i < len(unk_l) else None, _step(prefix, i), out)
        return
    if before != after:
        out.append(prefix or "(whole object)")


def changed_paths(change: Mapping[str, Any]) -> tuple[str, ...]:
    """Attribute paths an update changes (``after_unknown`` ones included), in a stable order."""
    out: list[str] = []
    _diff(change.get("before"), change.get("after"), change.get("after_unknown"), "", out)
    return tuple(out)


def summarize(plan: Mapping[str, Any], *, where: str = "plan") -> list[PlannedChange]:
    """Every planned resource change, in plan order. GateFailed if this is not a usable plan."""
    if not isinstance(plan, Mapping) or "format_version" not in plan:
        raise GateFailed("this is not the JSON of a terraform plan", where=where,
                         hint="pass the output of `terraform show -json <planfile>`")
    if plan.get("errored"):
        raise GateFailed("terraform reported errors while planning", where=where,
                         hint="run the plan again and fix its errors first")
    out = []
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        actions = tuple(change.get("actions") or ())
        kind = _kind(actions)
        out.append(PlannedChange(str(rc.get("address")), kind, actions, rc.get("action_reason"),
                                 noise=kind == "update" and _only_noise(change),
                                 paths=changed_paths(change) if kind == "update" else ()))
    return out


def real_changes(changes: Iterable[PlannedChange]) -> list[PlannedChange]:
    """Changes that are neither no-ops, reads, nor ``tags_all`` noise."""
    return [c for c in changes if c.kind not in ("no-op", "read") and not c.noise]


def _patterns(addresses: Iterable[str | Address]) -> list[Address]:
    return [a if isinstance(a, Address) else parse_address(a) for a in addresses]


def _matches(patterns: list[Address], address: str) -> bool:
    addr = parse_address(address)
    return any(p.matches(addr) for p in patterns)


def _allowed(patterns: Iterable[str], address: str) -> bool:
    """An address pattern (``module.vpc``, ``aws_subnet.private``) or a glob (``module.vpc.aws_subnet.*``)."""
    for p in patterns:
        if fnmatch.fnmatchcase(address, p):
            return True
        try:
            if parse_address(p).matches(parse_address(address)):
                return True
        except StateError:
            continue  # a glob that is no address
    return False


def _fail(bad: list[PlannedChange], where: str, what: str, hint: str) -> PlanGateFailed:
    listed = ", ".join(f"{c.address} ({c.kind})" for c in bad[:8]) + (" ..." if len(bad) > 8 else "")
    return PlanGateFailed(f"{what}: {listed}", where=where, hint=hint, violations=[c.address for c in bad])


def protect(plan: Mapping[str, Any], protected: Iterable[str | Address], *, allow_update: Iterable[str] = (),
            where: str = "plan") -> GateReport:
    """Fail if the plan deletes or replaces anything under ``protected``, or updates one in place unless
    ``allow_update`` names it."""
    pats = _patterns(protected)
    allow = list(allow_update)
    changes = summarize(plan, where=where)
    bad = [c for c in changes if c.destructive and _matches(pats, c.address)]
    if bad:
        raise _fail(bad, where, f"the plan would delete or replace {len(bad)} protected object(s)",
                    "these are still owned by the old workspace; change the configuration so the copy keeps "
                    "them (names must not depend on terraform.workspace), or detach them from the copy")
    updates = [c for c in changes if c.kind == "update" and not c.noise and _matches(pats, c.address)]
    refused = [c for c in updates if not _allowed(allow, c.address)]
    if refused:
        listed = "; ".join(f"{c.address} ({', '.join(c.paths[:4]) or '?'}{' …' if len(c.paths) > 4 else ''})"
                           for c in refused[:8]) + (" …" if len(refused) > 8 else "")
        raise PlanGateFailed(
            f"the plan would update {len(refused)} object(s) the old workspace still owns: {listed}",
            where=where,
            hint="the copy must not change what the old workspace owns. A tag naming the old cluster "
            "(kubernetes.io/cluster/<name>) is the usual cause: tag with a for_each over both cluster names, or "
            "add lifecycle { ignore_changes = [tags] }; to accept the update, list the address under "
            "terraform.gate.allow_update",
            violations=[c.address for c in refused])
    return GateReport("protect", tuple(changes), allowed_updates=tuple(updates))


def only_deletes_of(plan: Mapping[str, Any], allowed: Iterable[str | Address], *,
                    where: str = "destroy plan") -> GateReport:
    """Fail if the plan deletes or replaces anything outside ``allowed`` (decommission)."""
    pats = _patterns(allowed)
    changes = summarize(plan, where=where)
    bad = [c for c in changes if c.destructive and not _matches(pats, c.address)]
    if bad:
        raise _fail(bad, where,
                    f"the destroy plan would delete {len(bad)} object(s) that are not old-cluster resources",
                    "hand the shared resources over to the new workspace first (handover), then plan again")
    return GateReport("only_deletes_of", tuple(changes))
