"""Terraform state, format version 4: model, surgery, lineage and serial rules (pure).

The parsed JSON document stays the source of truth so that fields this code does
not know (``identity``, OpenTofu's per-instance ``provider``, future keys) are
written back untouched. Surgery returns new ``State`` objects and copies only
what it changes, which keeps a 50 MB state cheap to edit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from migrate.errors import StateError
from migrate.terraform import _tfjson
from migrate.terraform.address import Address, ModuleStep, format_key, parse_address
from migrate.terraform.address import parse_module as _parse_module_uncached

SUPPORTED_VERSION = 4
_ENCRYPTED_KEYS = ("encrypted_data", "encryption_version")
# Top-level field where a copy records the workspace it was duplicated from.
# Terraform ignores unknown fields and drops this one on its next write.
ORIGIN_FIELD = "migrate_origin"


@dataclass(frozen=True, slots=True)
class Instance:
    """One resource instance object as ``terraform state list`` shows it."""

    address: Address
    resource: dict[str, Any]
    obj: dict[str, Any]

    def __str__(self) -> str:
        return str(self.address)


@functools.lru_cache(maxsize=4096)
def parse_module(text: str) -> tuple[ModuleStep, ...]:
    return _parse_module_uncached(text)


def _resource_addr(res: dict[str, Any], module: tuple[ModuleStep, ...], key: Any, has_key: bool) -> Address:
    return Address(module, res.get("mode", "managed"), res["type"], res["name"], key, has_key)


def _sort_key(res: dict[str, Any]) -> tuple[str, str, str, str]:
    # Terraform's sortResourcesV4: module, mode, type, name (byte order == code point order).
    return (res.get("module", ""), res.get("mode", ""), res.get("type", ""), res.get("name", ""))


def _instance_sort_key(obj: dict[str, Any]) -> tuple[int, int, str, str]:
    # Terraform's sortInstancesV4: no key, then int keys, then string keys; then deposed.
    k = obj.get("index_key")
    deposed = obj.get("deposed", "")
    if k is None:
        return (0, 0, "", deposed)
    if isinstance(k, int) and not isinstance(k, bool):
        return (1, k, "", deposed)
    return (2, 0, str(k), deposed)


_NO_KEY = object()  # the index key of an instance that has none (a resource without count or for_each)


class State:
    """A version-4 Terraform state. ``where`` names the file or object it came from."""

    __slots__ = ("data", "where")

    def __init__(self, data: dict[str, Any], where: str = "<memory>") -> None:
        self.data = data
        self.where = where

    # ---- reading and writing -------------------------------------------------

    @classmethod
    def parse(cls, raw: bytes | str, where: str) -> State:
        """Parse and validate state bytes; StateError (with ``where``) if unusable."""
        try:
            data = _tfjson.loads(raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw)
        except UnicodeDecodeError as e:
            raise StateError(f"state is not UTF-8 text ({e.reason})", where=where, hint=_RESTORE) from e
        except json.JSONDecodeError as e:
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            # json's messages end in "starting at" for an unterminated value; say where without doubling it.
            at = f"line {e.lineno} column {e.colno}"
            msg = f"{e.msg} {at}" if e.msg.endswith(" at") else f"{e.msg} at {at}"
            if not text.strip():
                msg = "the file is empty"
            elif e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated"):
                msg += " (the file ends early: truncated?)"
            raise StateError(f"state is not valid JSON: {msg}", where=where, hint=_RESTORE) from e
        except ValueError as e:
            raise StateError(f"state is not valid JSON: {e}", where=where, hint=_RESTORE) from e
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "<memory>") -> State:
        if not isinstance(data, dict):
            raise StateError("state is not a JSON object", where=where, hint=_RESTORE)
        if any(k in data for k in _ENCRYPTED_KEYS):
            raise StateError(
                "state is encrypted (OpenTofu state encryption); this toolkit cannot read it",
                where=where,
                hint="decrypt it first (tofu with an encryption `fallback` block, then `tofu state pull`), "
                "or run the migration with the encryption disabled for this workspace",
            )
        version = data.get("version")
        if "version" not in data and "format_version" in data:
            what = "a plan" if "planned_values" in data or "resource_changes" in data else "a state"
            raise StateError(
                f"this is the JSON output of `terraform show -json` for {what} (format_version "
                f"{data.get('format_version')!r}), not a state file",
                where=where, hint="give the state itself: the backend's object, or `terraform state pull` output")
        if version != SUPPORTED_VERSION or isinstance(version, bool):
            if isinstance(version, int) and not isinstance(version, bool) and version < SUPPORTED_VERSION:
                hint = "upgrade it by running any `terraform plan`/`apply` with Terraform >= 0.12, then retry"
            else:
                hint = "this state was written by a newer or foreign tool; use Terraform state format v4"
            raise StateError(f"unsupported state format version {version!r} (only 4 is supported)",
                             where=where, hint=hint)
        serial = data.get("serial")
        if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
            raise StateError(f"state serial {serial!r} is not a non-negative integer",
                             where=where, hint=_RESTORE)
        if not isinstance(data.get("lineage"), str):
            raise StateError("state has no lineage", where=where, hint=_RESTORE)
        resources = data.get("resources", [])
        if not isinstance(resources, list) or not all(
            isinstance(r, dict) and isinstance(r.get("type"), str) and isinstance(r.get("name"), str)
            and isinstance(r.get("instances", []), list)
            for r in resources
        ):
            raise StateError("state `resources` is malformed", where=where, hint=_RESTORE)
        return cls(data, where)

    @classmethod
    def empty(
        cls, *, lineage: str | None = None, serial: int = 0, terraform_version: str = "1.11.4"
    ) -> State:
        return cls({
            "version": SUPPORTED_VERSION,
            "terraform_version": terraform_version,
            "serial": serial,
            "lineage": lineage or str(uuid.uuid4()),
            "outputs": {},
            "resources": [],
            "check_results": None,
        })

    def to_bytes(self) -> bytes:
        """The bytes Terraform would write for this state."""
        return _tfjson.dumps(self.data)

    def md5(self) -> str:
        return hashlib.md5(self.to_bytes()).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and self.data == other.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"State(lineage={self.lineage!r}, serial={self.serial}, resources={len(self.resources)})"

    # ---- plain fields ----------------------------------------------------------

    @property
    def lineage(self) -> str:
        return str(self.data["lineage"])

    @property
    def serial(self) -> int:
        return int(self.data["serial"])

    @property
    def terraform_version(self) -> str:
        return str(self.data.get("terraform_version", ""))

    @property
    def resources(self) -> list[dict[str, Any]]:
        return self.data.get("resources") or []

    @property
    def origin(self) -> dict[str, Any] | None:
        """Where this copy was duplicated from, if this toolkit made it."""
        value = self.data.get(ORIGIN_FIELD)
        return value if isinstance(value, dict) else None

    def is_empty(self) -> bool:
        """No resources and no outputs: Terraform lets anything be pushed over it."""
        return not any(r.get("instances") for r in self.resources) and not self.data.get("outputs")

    def _replace(self, **fields: Any) -> State:
        data = dict(self.data)
        data.update(fields)
        return State(data, self.where)

    def with_serial(self, serial: int) -> State:
        return self._replace(serial=serial)

    def bumped(self) -> State:
        """This state with the next serial, as a backend does on each change."""
        return self._replace(serial=self.serial + 1)

    def forked(self, *, origin: dict[str, Any] | None = None, lineage: str | None = None) -> State:
        """A copy with a fresh lineage (so neither state can be pushed over the other)."""
        fields: dict[str, Any] = {"lineage": lineage or str(uuid.uuid4())}
        if origin is not None:
            fields[ORIGIN_FIELD] = origin
        return self._replace(**fields)

    def without_origin(self) -> State:
        data = {k: v for k, v in self.data.items() if k != ORIGIN_FIELD}
        return State(data, self.where)

    # ---- addresses ---------------------------------------------------------------

    def instances(self) -> Iterator[Instance]:
        for res in self.resources:
            module = parse_module(res.get("module", ""))
            for obj in res.get("instances", []):
                has_key = "index_key" in obj
                yield Instance(_resource_addr(res, module, obj.get("index_key"), has_key), res, obj)

    def addresses(self) -> list[str]:
        """Instance addresses in state order, as ``terraform state list`` prints them."""
        seen: dict[str, None] = {}
        for res in self.resources:
            # One Address per resource, not per instance: 38,000 instances made this a tenth of a duplicate.
            base = str(Address(parse_module(res.get("module", "")), res.get("mode", "managed"), res["type"],
                               res["name"]))
            for obj in res.get("instances", []):
                seen.setdefault(base + format_key(obj["index_key"]) if "index_key" in obj else base, None)
        return list(seen)

    def address_count(self) -> int:
        """``len(self.addresses())`` without formatting each address (a tenth of a 50 MB duplicate)."""
        def key(obj: dict[str, Any]) -> object:
            k = obj.get("index_key", _NO_KEY)
            if k is _NO_KEY:
                return None
            # Typed, so that a key 1 and a key "1" (or True) stay two addresses, as their text does.
            return type(k), k if isinstance(k, str | int) else repr(k)

        return sum(len({key(obj) for obj in res.get("instances", [])}) for res in self.resources)

    def _matches(self, pats: list[Address]) -> tuple[list[tuple[int, int, str]], list[bool]]:
        """(resource index, instance index, address) of every instance matched, and which
        patterns matched anything. Resource and instance patterns are looked up by
        resource identity, so the cost is O(instances + patterns), not their product."""
        by_res: dict[tuple[str, str, str | None, str | None], list[int]] = {}
        module_pats: list[int] = []
        for i, p in enumerate(pats):
            if p.is_module:
                module_pats.append(i)
            else:
                by_res.setdefault((p.module_str, p.mode, p.type, p.name), []).append(i)
        used = [False] * len(pats)
        hits: list[tuple[int, int, str]] = []
        for ri, res in enumerate(self.resources):
            mod_text = res.get("module", "")
            cands = by_res.get((mod_text, res.get("mode", "managed"), res["type"], res["name"]), [])
            if not cands and not module_pats:
                continue
            module = parse_module(mod_text)
            for ii, obj in enumerate(res.get("instances", [])):
                addr = _resource_addr(res, module, obj.get("index_key"), "index_key" in obj)
                hit = False
                for pi in cands:
                    if pats[pi].matches(addr):
                        used[pi] = hit = True
                for pi in module_pats:
                    if pats[pi].matches(addr):
                        used[pi] = hit = True
                if hit:
                    hits.append((ri, ii, str(addr)))
        return hits, used

    def select(self, patterns: Iterable[str | Address], *, missing_ok: bool = True) -> list[str]:
        """Instance addresses matched by resource, instance or module addresses."""
        pats = [_as_address(p) for p in patterns]
        hits, used = self._matches(pats)
        if not missing_ok:
            self._refuse_unknown(pats, used)
        return list(dict.fromkeys(h[2] for h in hits))

    def unmatched(self, patterns: Iterable[str | Address]) -> list[str]:
        """The patterns that match nothing in this state."""
        pats = [_as_address(p) for p in patterns]
        _, used = self._matches(pats)
        return [str(p) for p, u in zip(pats, used, strict=True) if not u]

    def _refuse_unknown(self, pats: list[Address], used: list[bool]) -> None:
        unknown = [str(p) for p, u in zip(pats, used, strict=True) if not u]
        if unknown:
            raise StateError(
                f"no resource in the state matches {', '.join(unknown)}",
                where=self.where,
                hint="check the address with `terraform state list` (keys are quoted: x[\"k\"])",
            )

    # ---- surgery -----------------------------------------------------------------

    def rm(self, patterns: Iterable[str | Address], *, missing_ok: bool = False) -> tuple[State, list[str]]:
        """Remove matching instances; returns (new state, removed addresses).

        Like ``terraform state rm``: an address that matches nothing is an error
        (unless ``missing_ok``), and nothing is removed in that case.
        """
        pats = [_as_address(p) for p in patterns]
        hits, used = self._matches(pats)
        if not missing_ok:
            self._refuse_unknown(pats, used)
        if not hits:
            return self, []
        gone: dict[int, set[int]] = {}
        for ri, ii, _ in hits:
            gone.setdefault(ri, set()).add(ii)
        new_resources = []
        for ri, res in enumerate(self.resources):
            drop = gone.get(ri)
            if not drop:
                new_resources.append(res)
                continue
            kept = [obj for ii, obj in enumerate(res.get("instances", [])) if ii not in drop]
            if kept:
                new_resources.append({**res, "instances": kept})
        return self._replace(resources=new_resources), list(dict.fromkeys(h[2] for h in hits))

    def mv(self, source: str | Address, target: str | Address) -> State:
        """Move a module, a resource or one instance to a new address (``terraform state mv``)."""
        src, dst = _as_address(source), _as_address(target)
        if src.is_module != dst.is_module:
            raise StateError(f"cannot move {src} to {dst}: one is a module, the other a resource",
                             where=self.where, hint="move a module to a module, a resource to a resource")
        if src.is_module:
            return self._mv_module(src, dst)
        if src.mode != dst.mode or src.type != dst.type:
            raise StateError(f"cannot move {src} to {dst}: resource type or mode differs", where=self.where,
                             hint="terraform cannot change a resource's type by moving it")
        if not src.has_key and not dst.has_key:
            return self._mv_resource(src, dst)
        return self._mv_instance(src, dst)

    def _find_resource(self, addr: Address) -> int | None:
        want = (addr.module_str, addr.mode, addr.type, addr.name)
        for i, res in enumerate(self.resources):
            if (res.get("module", ""), res.get("mode", "managed"), res["type"], res["name"]) == want:
                return i
        return None

    def _missing(self, addr: Address) -> StateError:
        return StateError(f"no resource in the state matches {addr}", where=self.where,
                          hint="check the address with `terraform state list`")

    def _exists(self, addr: Address) -> StateError:
        return StateError(f"cannot move to {addr}: it already exists in the state", where=self.where,
                          hint="remove or move the existing object first")

    def _mv_module(self, src: Address, dst: Address) -> State:
        n = len(src.module)
        moved, resources = False, []
        for res in self.resources:
            mod = parse_module(res.get("module", ""))
            if mod[:n] == src.module:
                new_mod = dst.module + mod[n:]
                res = {**res, "module": ".".join(str(m) for m in new_mod)}
                if not new_mod:
                    res.pop("module")
                moved = True
            elif mod[: len(dst.module)] == dst.module:
                raise self._exists(dst)
            resources.append(res)
        if not moved:
            raise self._missing(src)
        return self._replace(resources=sorted(resources, key=_sort_key))

    def _mv_resource(self, src: Address, dst: Address) -> State:
        i = self._find_resource(src)
        if i is None:
            raise self._missing(src)
        if self._find_resource(dst) is not None:
            raise self._exists(dst)
        res = {**self.resources[i], "name": dst.name, "module": dst.module_str}
        if not dst.module:
            res.pop("module")
        resources = [*self.resources[:i], res, *self.resources[i + 1 :]]
        return self._replace(resources=sorted(resources, key=_sort_key))

    def _mv_instance(self, src: Address, dst: Address) -> State:
        i = self._find_resource(src)
        if i is None:
            raise self._missing(src)
        res = self.resources[i]
        take = [o for o in res.get("instances", []) if o.get("index_key") == src.key]
        if not take:
            raise self._missing(src)
        rest = [o for o in res.get("instances", []) if o.get("index_key") != src.key]
        resources = list(self.resources)
        if rest:
            resources[i] = {**res, "instances": rest}
        else:
            del resources[i]
        moved = []
        for obj in take:
            obj = {k: v for k, v in obj.items() if k != "index_key"}
            if dst.key is not None:
                obj = {"index_key": dst.key, **obj}
            moved.append(obj)
        each = None if dst.key is None else ("list" if isinstance(dst.key, int) else "map")
        j = next((k for k, r in enumerate(resources) if _addr_tuple(r) == _addr_tuple_of(dst)), None)
        if j is None:
            new_res = {k: v for k, v in res.items() if k not in ("instances", "each", "module")}
            if dst.module:
                new_res = {"module": dst.module_str, **new_res}
            new_res["name"] = dst.name
            if each:
                new_res["each"] = each
            new_res["instances"] = moved
            resources.append(new_res)
        else:
            target = resources[j]
            if any(o.get("index_key") == dst.key for o in target.get("instances", [])):
                raise self._exists(dst)
            resources[j] = {**target, "instances": sorted([*target.get("instances", []), *moved],
                                                          key=_instance_sort_key)}
        return self._replace(resources=sorted(resources, key=_sort_key))

    def sorted(self) -> State:
        """Resources and instances in the order Terraform writes them."""
        resources = [
            {**r, "instances": sorted(r.get("instances", []), key=_instance_sort_key)}
            for r in sorted(self.resources, key=_sort_key)
        ]
        return self._replace(resources=resources)

    # ---- dependencies ------------------------------------------------------------

    def dependents(self, seeds: Iterable[str | Address]) -> list[str]:
        """The seeds plus every instance that depends on them, transitively.

        Edges come from each instance's ``dependencies`` (and legacy ``depends_on``).
        Those name resources by configuration address (no keys); a reference from
        inside a module instance is resolved to that same instance, so a node
        group in ``module.eks["a"]`` does not drag in ``module.eks["b"]``.
        Module addresses as seeds take in everything nested under them.
        """
        pats = [_as_address(p) for p in seeds]
        hits, used = self._matches(pats)
        self._refuse_unknown(pats, used)
        seed_addrs = {h[2] for h in hits}
        # reverse edges: resource -> resources that depend on it
        rdeps: dict[int, list[int]] = {}
        for ri, deps in enumerate(self.dependency_edges()):
            for cand in deps:
                rdeps.setdefault(cand, []).append(ri)
        closed: set[int] = set()
        todo = list({h[0] for h in hits})
        while todo:
            for nxt in rdeps.get(todo.pop(), ()):
                if nxt not in closed:
                    closed.add(nxt)
                    todo.append(nxt)
        out: dict[str, None] = {}
        for ri, res in enumerate(self.resources):
            module = parse_module(res.get("module", ""))
            for obj in res.get("instances", []):
                addr = str(_resource_addr(res, module, obj.get("index_key"), "index_key" in obj))
                if ri in closed or addr in seed_addrs:
                    out.setdefault(addr, None)
        return list(out)


    def dependency_edges(self) -> list[set[int]]:
        """For each resource (by index in ``resources``), the indices of the resources its instances
        depend on, from ``dependencies`` (and the legacy ``depends_on``). A dependency named from inside a
        module instance resolves to that same instance (see ``dependents``)."""
        entries = []  # (resource address without key, its deps as patterns)
        for res in self.resources:
            module = parse_module(res.get("module", ""))
            deps: set[str] = set()
            for obj in res.get("instances", []):
                deps.update(obj.get("dependencies") or ())
                deps.update(obj.get("depends_on") or ())
            entries.append((_resource_addr(res, module, None, False), [_resolve_dep(d, module) for d in sorted(deps)]))
        by_config: dict[str, list[int]] = {}
        for ri, (raddr, _) in enumerate(entries):
            by_config.setdefault(raddr.config_str, []).append(ri)
        out: list[set[int]] = []
        for _, dep_pats in entries:
            edges: set[int] = set()
            for pat in dep_pats:
                for cand in by_config.get(pat.config_str, ()):
                    if pat.matches(entries[cand][0], any_key=True):
                        edges.add(cand)
            out.append(edges)
        return out


def _addr_tuple(res: dict[str, Any]) -> tuple[str, str, str, str]:
    return (res.get("module", ""), res.get("mode", "managed"), res["type"], res["name"])


def _addr_tuple_of(a: Address) -> tuple[str, str, str, str]:
    return (a.module_str, a.mode, a.type or "", a.name or "")


def _resolve_dep(dep: str, module: tuple[ModuleStep, ...]) -> Address:
    """Turn a config-level dependency into a pattern, fixing keys shared with ``module``."""
    try:
        addr = parse_address(dep)
    except StateError:
        return Address((ModuleStep("\x00unparseable"),))  # matches nothing, never fails a read
    steps = list(addr.module)
    for i, step in enumerate(steps):
        if i < len(module) and module[i].name == step.name:
            steps[i] = ModuleStep(step.name, module[i].key)
        else:
            break
    return Address(tuple(steps), addr.mode, addr.type, addr.name)


def _as_address(p: str | Address) -> Address:
    return p if isinstance(p, Address) else parse_address(p)


_RESTORE = ("restore the previous version (a *.backup file, or the bucket's object versions) "
            "or fetch a good copy with `terraform state pull`")


def check_push(current: State | None, incoming: State, *, where: str = "destination") -> None:
    """Refuse what ``terraform state push`` (without -force) would refuse."""
    if current is None or current.is_empty():
        return
    if current.lineage != incoming.lineage:
        raise StateError(
            f"cannot import state with lineage {incoming.lineage!r} over unrelated state "
            f"with lineage {current.lineage!r}",
            where=where,
            hint="these are different states; push to the workspace they belong to",
        )
    if incoming.serial < current.serial:
        raise StateError(
            f"cannot import state with serial {incoming.serial} over newer state "
            f"with serial {current.serial}",
            where=where, hint="pull the current state and redo the change on top of it",
        )
    if incoming.serial == current.serial and incoming != current:
        raise StateError(
            f"cannot overwrite existing state with serial {current.serial} with a different state "
            "that has the same serial",
            where=where, hint="increment the serial of the new state (it must be newer)",
        )
