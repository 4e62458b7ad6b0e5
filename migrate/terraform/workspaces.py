"""Workspace-level operations the engine's steps call: duplicate, detach, handover, retire.

Each one holds the backend lock(s) across its whole read-modify-write, so a
concurrent ``terraform apply`` can neither slip in between nor be overwritten
(tfmigrate's pull/push has that gap). Each is idempotent: called again after
it completed, it reports what is there and writes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from migrate.errors import StateError
from migrate.terraform.address import parse_address
from migrate.terraform.backends.base import DEFAULT_WORKSPACE, Backend, LockHandle, WriteResult
from migrate.terraform.state import State, check_push


@dataclass(frozen=True)
class DuplicateResult:
    source_workspace: str
    target_workspace: str
    source_lineage: str
    source_serial: int
    new_lineage: str
    serial: int
    count: int                          # instance addresses the copy holds now
    excluded: tuple[str, ...] = ()      # what was left out of the copy
    already_done: bool = False
    write: WriteResult | None = None


@dataclass(frozen=True)
class DetachResult:
    workspace: str
    removed: tuple[str, ...]
    lineage: str
    serial: int
    already_done: bool = False
    write: WriteResult | None = None
    kept: tuple[str, ...] = ()          # matched, but this workspace's own objects (``only_objects_of``)


@dataclass(frozen=True)
class HandoverResult:
    from_workspace: str
    to_workspace: str
    handed_over: tuple[str, ...]
    from_serial: int
    already_done: bool = False
    write: WriteResult | None = None


@dataclass(frozen=True)
class RetireResult:
    workspace: str
    last_lineage: str | None
    already_done: bool = False
    data_sources_dropped: tuple[str, ...] = field(default_factory=tuple)


@contextlib.contextmanager
def _locked_many(backend: Backend, names: dict[str, bool], operation: str) -> Iterator[dict[str, LockHandle]]:
    """Lock several workspaces in name order (a fixed order cannot deadlock)."""
    handles: dict[str, LockHandle] = {}
    try:
        for ws in sorted(names):
            handles[ws] = backend.lock(ws, operation, create=names[ws])
        yield handles
    finally:
        for h in reversed(list(handles.values())):
            backend.unlock(h)


def duplicate_workspace(
    backend: Backend,
    source_ws: str,
    target_ws: str,
    *,
    exclude: Iterable[str] = (),
    exclude_dependents_of: Iterable[str] = (),
    missing_ok: bool = False,
    expected_lineage: str | None = None,
    info: str = "",
) -> DuplicateResult:
    """Copy ``source_ws`` into ``target_ws`` with a fresh lineage, leaving out ``exclude``.

    The copy records its origin (workspace, lineage, serial) so that a second call
    recognises it and reports done. ``exclude_dependents_of`` leaves out those
    addresses and everything depending on them (the cluster's closure), computed
    from the state read under the lock. An ``exclude`` address that matches nothing is
    refused (nothing written) unless ``missing_ok``. Terraform drops the origin field on
    its next write, so callers should also pass the ``expected_lineage`` they journaled.
    A target that holds an unrelated, non-empty state is refused; an empty one
    (``terraform workspace new``) is filled.
    """
    if source_ws == target_ws:
        raise StateError("source and target workspace are the same", where=backend.where(source_ws),
                         hint="choose a new workspace name for the copy")
    excluded = list(exclude)
    # Locks never wait (a held one raises LockError), so taking them in sequence cannot deadlock.
    with backend.locked(source_ws, "migrate: duplicate workspace (source)", info=info) as src_lock:
        src_blob = backend.read(source_ws, src_lock, keep_raw=False)
        src, src_where = src_blob.state, src_blob.where
        del src_blob  # keep the parsed state only: a 50 MB state should not be held twice
        if src is None:
            raise StateError(f"workspace {source_ws!r} has no state to duplicate", where=src_where,
                             hint="check the workspace name; an empty workspace needs no copy")
        roots = list(exclude_dependents_of)
        if roots:
            excluded = list(dict.fromkeys([*excluded, *src.dependents(roots)]))
        # Validate the exclusions before touching the target, so bad input writes nothing.
        src_for_copy, removed = src.rm(excluded, missing_ok=missing_ok) if excluded else (src, [])
        with backend.locked(target_ws, "migrate: duplicate workspace (target)", info=info,
                            create=True) as tgt_lock:
            tgt_exists = backend.exists(target_ws)
            tgt = backend.read(target_ws, tgt_lock).state if tgt_exists else None
            if tgt is not None and not tgt.is_empty():
                origin = tgt.origin or {}
                ours = origin.get("workspace") == source_ws and origin.get("lineage") == src.lineage
                if ours or (expected_lineage is not None and tgt.lineage == expected_lineage):
                    return DuplicateResult(
                        source_ws, target_ws, src.lineage, int(origin.get("serial", src.serial)),
                        tgt.lineage, tgt.serial, tgt.address_count(), tuple(origin.get("excluded", ())),
                        already_done=True,
                    )
                raise StateError(
                    f"target workspace {target_ws!r} already holds a state that is not a copy of "
                    f"{source_ws!r}",
                    where=backend.where(target_ws),
                    hint="pick another target name, or retire that workspace first",
                )
            serial = max(src.serial, (tgt.serial + 1) if tgt is not None else 1)
            copy = src_for_copy.forked(origin={
                "workspace": source_ws, "lineage": src.lineage, "serial": src.serial, "excluded": removed,
            }).with_serial(serial)
            check_push(tgt, copy, where=backend.where(target_ws))
            done = DuplicateResult(source_ws, target_ws, src.lineage, src.serial, copy.lineage, copy.serial,
                                   copy.address_count(), tuple(removed))
            data = copy.to_bytes()
            del src, src_for_copy, copy, tgt  # only the bytes during the upload
            result = backend.write_bytes(target_ws, data, tgt_lock, lineage=done.new_lineage, serial=done.serial,
                                         absent=not tgt_exists)
            return dataclasses.replace(done, write=result)


def detach(
    backend: Backend,
    ws: str,
    addresses: Iterable[str],
    *,
    missing_ok: bool = False,
    only_objects_of: State | Callable[[], State | None] | None = None,
) -> DetachResult:
    """Remove ``addresses`` (resource, instance or module addresses) from a workspace.

    Unknown addresses are refused (nothing written) unless ``missing_ok``; with it,
    a second call after success is a no-op that reports ``already_done``.

    With ``only_objects_of`` (another workspace's state), a matched instance is removed
    only if that state manages the same object (``compare_objects``), or if it is a data
    source; an object this workspace alone manages (a new cluster created at the old
    cluster's address) is kept and reported in ``kept``: removing it would orphan it.
    It may be a function that reads that state: it is called only if something matches,
    so the usual no-op check costs one locked read of this workspace. A function that
    returns None (no other state) means nothing here is a copy: nothing is removed.
    """
    wanted = list(addresses)
    with backend.locked(ws, "migrate: detach resources") as lock:
        blob = backend.read(ws, lock, keep_raw=False)
        state = blob.state
        if state is None:
            raise StateError(f"workspace {ws!r} has no state", where=blob.where, hint="check the workspace name")
        kept: list[str] = []
        targets = wanted
        if only_objects_of is not None:
            matched = state.select(wanted, missing_ok=missing_ok)
            other = only_objects_of() if matched and callable(only_objects_of) else only_objects_of
            targets = removable_copies(state, matched, other) if matched and isinstance(other, State) else []
            kept = [a for a in matched if a not in set(targets)]
        new, removed = state.rm(targets, missing_ok=missing_ok or only_objects_of is not None)
        if not removed:
            return DetachResult(ws, (), state.lineage, state.serial, already_done=True, kept=tuple(kept))
        new = new.bumped()
        result = backend.write(ws, new, lock)
        return DetachResult(ws, tuple(removed), new.lineage, new.serial, write=result, kept=tuple(kept))


def removable_copies(state: State, addresses: Iterable[str], other: State) -> list[str]:
    """The instances of ``state`` matched by ``addresses`` that are copies of ``other``'s objects
    (the same object is managed there too) or data sources: what can leave ``state`` and orphan nothing."""
    matched = state.select(list(addresses))
    if not matched:
        return []
    same = set(compare_objects(state, other).same)
    return [a for a in matched if a in same or parse_address(a).mode == "data"]


def _object_ids(state: State) -> dict[str, object]:
    """Instance address -> the ``id`` attribute (the real object it manages)."""
    return {str(i.address): (i.obj.get("attributes") or {}).get("id") for i in state.instances()}


@dataclass(frozen=True)
class ObjectComparison:
    """How the managed instances of one state relate to the objects another state manages.

    An address alone says nothing about ownership: after ``terraform apply`` in a copy,
    the new cluster sits at the very address the old cluster has in the old state.
    """

    same: tuple[str, ...]      # the other state manages the same object at this address
    own: tuple[str, ...]       # the other state does not manage this object: it is this state's alone
    unsure: tuple[str, ...]    # no ``id`` on one side and the attributes differ: cannot tell


def compare_objects(state: State, other: State | None) -> ObjectComparison:
    """Classify ``state``'s managed instances against ``other`` by object identity.

    Identity is the ``id`` attribute (what ``handover`` checks, too). An instance is
    ``same`` when both ids are equal, or when neither has an id and the attributes are
    equal; ``own`` when the other state has no instance at that address or both ids
    are set and differ; ``unsure`` otherwise. Data sources are left out: they own nothing.
    """
    # Keyed by address and deposed key: a deposed object is a real object of its own.
    theirs: dict[tuple[str, str], dict[str, object]] = {}
    if other is not None:
        for inst in other.instances():
            if inst.address.mode == "managed":
                theirs[(str(inst.address), str(inst.obj.get("deposed", "")))] = inst.obj.get("attributes") or {}
    verdict: dict[str, str] = {}  # address -> same | own | unsure (the least certain of its objects wins)
    rank = {"same": 0, "unsure": 1, "own": 2}
    for inst in state.instances():
        if inst.address.mode != "managed":
            continue
        addr = str(inst.address)
        mine = inst.obj.get("attributes") or {}
        other_attrs = theirs.get((addr, str(inst.obj.get("deposed", ""))))
        if other_attrs is None:
            v = "own"
        else:
            a, b = mine.get("id"), other_attrs.get("id")
            if a is not None and b is not None:
                v = "same" if a == b else "own"
            elif a is None and b is None and mine == other_attrs:
                v = "same"
            else:
                v = "unsure"
        if rank[v] >= rank[verdict.get(addr, "same")]:
            verdict[addr] = v
    same = [a for a, v in verdict.items() if v == "same"]
    own = [a for a, v in verdict.items() if v == "own"]
    unsure = [a for a, v in verdict.items() if v == "unsure"]
    return ObjectComparison(tuple(same), tuple(own), tuple(unsure))


def handover(backend: Backend, from_ws: str, to_ws: str, addresses: Iterable[str]) -> HandoverResult:
    """Give ``to_ws`` sole ownership of shared resources: remove them from ``from_ws``.

    Refused (nothing written) if ``to_ws`` does not hold every one of them, or holds
    a different object (``id`` differs): removing it would orphan a real resource.
    """
    wanted = list(addresses)
    with _locked_many(backend, {from_ws: False, to_ws: False}, "migrate: hand over shared resources") as locks:
        old = backend.read(from_ws, locks[from_ws]).state
        new = backend.read(to_ws, locks[to_ws]).state
        if old is None or new is None:
            raise StateError("both workspaces need a state for a handover",
                             where=backend.where(from_ws if old is None else to_ws),
                             hint="check the workspace names")
        in_old = old.select(wanted)
        in_new = set(new.select(wanted))
        unknown = sorted(set(old.unmatched(wanted)) & set(new.unmatched(wanted)))
        if unknown:
            raise StateError(f"no resource matches {', '.join(unknown)} in either workspace",
                             where=backend.where(from_ws), hint="check the addresses with `terraform state list`")
        missing = [a for a in in_old if a not in in_new]
        if missing:
            raise StateError(
                f"{to_ws!r} does not hold {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; "
                "removing them from the old workspace would leave them unmanaged",
                where=backend.where(to_ws), hint="duplicate or import them into the new workspace first",
            )
        old_ids, new_ids = _object_ids(old), _object_ids(new)
        differ = [a for a in in_old if old_ids.get(a) != new_ids.get(a)]
        if differ:
            raise StateError(
                f"{', '.join(differ[:5])} point at different objects in the two workspaces",
                where=backend.where(to_ws), hint="reconcile the two states before handing over",
            )
        if not in_old:
            return HandoverResult(from_ws, to_ws, (), old.serial, already_done=True)
        trimmed, removed = old.rm(in_old)
        trimmed = trimmed.bumped()
        result = backend.write(from_ws, trimmed, locks[from_ws])
        return HandoverResult(from_ws, to_ws, tuple(removed), trimmed.serial, write=result)


def retire(backend: Backend, ws: str) -> RetireResult:
    """Delete a workspace once it manages nothing (after destroy and handover).

    Refused while any managed resource remains; data sources are dropped with it.
    The last bytes are kept as a backup. The default workspace cannot be deleted.
    """
    if ws == DEFAULT_WORKSPACE:
        raise StateError("the default workspace cannot be retired (Terraform cannot delete it)",
                         where=backend.where(ws), hint="leave it empty, or migrate to a named workspace")
    if not backend.exists(ws):
        return RetireResult(ws, None, already_done=True)
    with backend.locked(ws, "migrate: retire workspace") as lock:
        blob = backend.read(ws, lock)
        state = blob.state
        managed = [str(i.address) for i in state.instances() if i.address.mode == "managed"] if state else []
        if managed:
            raise StateError(
                f"workspace {ws!r} still manages {len(managed)} resource(s): "
                f"{', '.join(managed[:5])}{' ...' if len(managed) > 5 else ''}",
                where=blob.where,
                hint="destroy them or hand them over first; a retired workspace must manage nothing",
            )
        data = tuple(state.addresses()) if state else ()
        backend.delete_workspace(ws, lock)
        return RetireResult(ws, state.lineage if state else None, data_sources_dropped=data)
