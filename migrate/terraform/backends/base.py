"""The one small interface every state backend implements.

A backend lists workspaces, reads state (bytes and parsed), writes state under
its own lock, and deletes workspaces. ``Backend.write`` is a template method so
the safety rules live in one place: the caller must hold the lock, the previous
bytes are backed up first (mode 0600), and the object is read back and compared
afterwards.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import socket
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migrate.errors import LockError, StateError
from migrate.terraform.state import State

DEFAULT_WORKSPACE = "default"
# Terraform's own layout: "serial" then "lineage", right after the version fields.
_HEAD = re.compile(rb'^\{\s*"version":\s*4,\s*"terraform_version":\s*"[^"]*",\s*"serial":\s*(\d+),\s*'
                   rb'"lineage":\s*"([^"\\]+)"')
TOOL_VERSION = "migrate-0.1.0"


def who() -> str:
    """``user@host``, the form Terraform puts in ``Who``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def rfc3339_now() -> str:
    # Go marshals time.Time as RFC 3339 with nanoseconds; microseconds parse fine there.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LockInfo:
    """Terraform's lock record (``statemgr.LockInfo``); keys are never renamed."""

    ID: str
    Operation: str
    Info: str = ""
    Who: str = field(default_factory=who)
    Version: str = TOOL_VERSION
    Created: str = field(default_factory=rfc3339_now)
    Path: str = ""

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def from_json(cls, raw: bytes | str, *, lock_id: str | None = None) -> LockInfo:
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        info = cls(
            ID=str(data.get("ID", "")), Operation=str(data.get("Operation", "")),
            Info=str(data.get("Info", "")), Who=str(data.get("Who", "unknown")),
            Version=str(data.get("Version", "")), Created=str(data.get("Created", "")),
            Path=str(data.get("Path", "")),
        )
        if lock_id is not None:
            info.ID = lock_id
        return info

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    def describe(self) -> str:
        return f"{self.Who} since {self.Created} ({self.Operation}, {self.Info}; lock ID {self.ID})"


def new_lock_info(operation: str, info: str = "") -> LockInfo:
    return LockInfo(ID=str(uuid.uuid4()), Operation=operation, Info=info)


def held_error(ws: str, where: str, holder: LockInfo) -> LockError:
    return LockError(
        f"workspace {ws!r} is locked by {holder.Who} since {holder.Created} "
        f"(operation {holder.Operation or '?'}, lock ID {holder.ID})",
        where=where,
        hint=f"wait for that run to finish; if it is dead, release it with "
        f"`terraform force-unlock {holder.ID}` in that workspace",
        holder=holder.as_dict(),
    )


@dataclass
class LockHandle:
    """Proof that this process holds a workspace's lock; pass it to writes."""

    backend: Backend
    workspace: str
    info: LockInfo
    released: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.info.ID


@dataclass(frozen=True)
class StateBlob:
    """What a read returns: the exact bytes (unless dropped) and, if there is a state, the model."""

    workspace: str
    where: str
    raw: bytes
    state: State | None
    md5: str = ""


@dataclass(frozen=True)
class WriteResult:
    workspace: str
    where: str
    md5: str
    lineage: str
    serial: int
    backup: str | None


def write_private(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Create ``path`` with mode 0600 (it may hold secrets) and fsync it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(os.dup(fd), "wb") as f:
            for chunk in [data] if isinstance(data, bytes | bytearray) else data:
                f.write(chunk)
        os.fsync(fd)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)


def backup_file(directory: Path, stem: str, data: bytes | Iterable[bytes]) -> Path:
    """``<stem>.<unix>.backup`` in ``directory``; never overwrites an older backup."""
    now = int(time.time())
    for n in range(1000):
        name = f"{stem}.{now}.backup" if n == 0 else f"{stem}.{now}-{n}.backup"
        path = directory / name
        try:
            write_private(path, data)
            return path
        except FileExistsError:
            continue
    raise StateError("could not find a free backup file name", where=str(directory),
                     hint="clean up old *.backup files")


def _blank(raw: bytes) -> bool:
    """No state in these bytes (none, or only whitespace), without copying 50 MB to strip them."""
    return not raw or (raw[:1].isspace() and not raw.strip())


def check_workspace_name(ws: str) -> None:
    if not ws or "/" in ws or ws != ws.strip() or ws in (".", ".."):
        raise StateError(f"invalid workspace name {ws!r}",
                         hint="workspace names must be non-empty and URL-path-safe (no '/')")


class Backend(ABC):
    """A Terraform state backend, implemented natively (no terraform subprocess)."""

    kind: str = "?"

    # ---- what each backend provides -------------------------------------------

    @abstractmethod
    def workspaces(self) -> list[str]:
        """Workspace names as ``terraform workspace list`` sees them, default first."""

    @abstractmethod
    def where(self, ws: str) -> str:
        """Human-readable location of the workspace's state (path or URL)."""

    @abstractmethod
    def _read_raw(self, ws: str, lock: LockHandle | None = None) -> bytes | None:
        """The stored bytes, or None when there is no state object."""

    @abstractmethod
    def _put(self, ws: str, data: bytes, lock: LockHandle) -> None: ...

    @abstractmethod
    def _backup(self, ws: str, prior: bytes) -> str: ...

    @abstractmethod
    def _lock(self, ws: str, info: LockInfo, create: bool) -> LockHandle: ...

    @abstractmethod
    def _unlock(self, lock: LockHandle) -> None: ...

    @abstractmethod
    def holder(self, ws: str) -> LockInfo | None:
        """Who holds the workspace's lock now, or None."""

    @abstractmethod
    def force_unlock(self, ws: str, lock_id: str) -> None:
        """Release someone else's lock, only if its ID is ``lock_id``."""

    @abstractmethod
    def _delete(self, ws: str, lock: LockHandle) -> None: ...

    def _after_write(self, ws: str, md5: str) -> None:  # noqa: B027 - optional hook
        """Hook run after a verified write (S3 updates its digest here)."""

    def _backup_current(self, ws: str, lock: LockHandle) -> str | None:
        """Keep the stored bytes before they are replaced; None if there are none."""
        prior = self._read_raw(ws, lock)
        return self._backup(ws, prior) if prior else None

    def _stored_md5(self, ws: str, lock: LockHandle | None) -> str:
        """MD5 of what is stored now, read back from the backend."""
        return hashlib.md5(self._read_raw(ws, lock) or b"").hexdigest()

    def stored_md5(self, ws: str, lock: LockHandle | None = None) -> str:
        """MD5 of the bytes stored for ``ws`` now, without parsing them. With ``lock``, checked to be
        ours first; without, a read-only look (a stored object is replaced whole, never seen half-written)."""
        if lock is not None:
            self.check_lock(ws, lock)
        else:
            check_workspace_name(ws)
        return self._stored_md5(ws, lock)

    def _backup_before_delete(self, ws: str, prior: bytes) -> str:
        return self._backup(ws, prior)

    def _expected_md5(self, ws: str) -> str | None:
        """The digest the backend recorded for the state, if it keeps one."""
        return None

    # ---- shared behaviour ----------------------------------------------------------

    def exists(self, ws: str) -> bool:
        return ws == DEFAULT_WORKSPACE or ws in self.workspaces()

    def _require(self, ws: str) -> None:
        check_workspace_name(ws)
        if not self.exists(ws):
            raise StateError(
                f"workspace {ws!r} does not exist",
                where=self.where(ws),
                hint=f"existing workspaces: {', '.join(self.workspaces())}; check the name",
            )

    def head(self, ws: str) -> tuple[str, int] | None:
        """(lineage, serial) of the stored state, None when there is none (no workspace, or an empty state).
        Terraform writes both before the resources, so a large state is not parsed whole for them; a foreign
        layout falls back to a parse. No workspace listing: a missing state object already reads as None."""
        check_workspace_name(ws)
        raw = self._read_raw(ws) or b""
        if _blank(raw):
            return None
        m = _HEAD.search(raw[:4096])
        if m:
            return m.group(2).decode(), int(m.group(1))
        state = State.parse(raw, self.where(ws))
        return state.lineage, state.serial

    def read(self, ws: str, lock: LockHandle | None = None, *, keep_raw: bool = True) -> StateBlob:
        """Read a workspace's state. StateError if the workspace is missing or the state bad.

        ``keep_raw=False`` drops the bytes as soon as they are decoded, so a large
        state is never held as bytes, text and objects at once.
        """
        self._require(ws)
        where = self.where(ws)
        raw = self._read_raw(ws, lock) or b""
        md5 = hashlib.md5(raw).hexdigest()
        expected = self._expected_md5(ws)
        if raw and expected and md5 != expected:
            raise StateError(
                f"state data does not have the expected content: md5 {md5} "
                f"but the lock table's digest is {expected}",
                where=where,
                hint="a write is in flight or was interrupted; retry shortly, otherwise restore the "
                "state from a backup or update the -md5 digest item to the value above",
            )
        if not raw and expected:
            raise StateError(
                "the state object is missing but the lock table holds a digest for it",
                where=where,
                hint="the state was deleted outside terraform; restore it from a backup or object version",
            )
        if _blank(raw):
            return StateBlob(ws, where, raw, None, md5)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StateError(f"state is not UTF-8 text ({e.reason})", where=where,
                             hint="restore the previous version from a backup") from e
        if not keep_raw:
            raw = b""
        return StateBlob(ws, where, raw, State.parse(text, where), md5)

    def lock(self, ws: str, operation: str, *, info: str = "", create: bool = False) -> LockHandle:
        """Take the workspace's lock. LockError naming the holder if it is taken.

        ``create`` allows locking a workspace that does not exist yet (to create it).
        """
        check_workspace_name(ws)
        if not create:
            self._require(ws)
        return self._lock(ws, new_lock_info(operation, info), create)

    def unlock(self, lock: LockHandle) -> None:
        if lock.released:
            return
        self._unlock(lock)
        lock.released = True

    @contextlib.contextmanager
    def locked(
        self, ws: str, operation: str, *, info: str = "", create: bool = False
    ) -> Iterator[LockHandle]:
        handle = self.lock(ws, operation, info=info, create=create)
        try:
            yield handle
        finally:
            self.unlock(handle)

    def check_lock(self, ws: str, lock: LockHandle | None) -> None:
        """Refuse to write unless ``lock`` is ours, live, and still the one recorded."""
        if lock is None or lock.backend is not self or lock.workspace != ws or lock.released:
            raise LockError(
                f"refusing to write workspace {ws!r} without holding its lock",
                where=self.where(ws),
                hint="take the lock first (backend.locked(ws, ...)) and pass the handle",
            )
        current = self.holder(ws)
        if current is None or lock.id != current.ID:
            raise LockError(
                f"our lock {lock.id} on workspace {ws!r} is gone"
                + (f"; it is now held by {current.Who} (ID {current.ID})" if current else ""),
                where=self.where(ws),
                hint="someone force-unlocked it; re-read the state and start the change again",
                holder=current.as_dict() if current else None,
            )

    def write(self, ws: str, state: State, lock: LockHandle | None) -> WriteResult:
        """Back up, write, and verify by reading back. Requires ``lock`` for ``ws``."""
        return self.write_bytes(ws, state.to_bytes(), lock, lineage=state.lineage, serial=state.serial)

    def write_bytes(self, ws: str, data: bytes, lock: LockHandle | None, *, lineage: str,
                    serial: int, absent: bool = False) -> WriteResult:
        """``write`` for bytes already serialised by ``State.to_bytes`` (lets a caller drop
        the parsed state before the upload, which matters for 50 MB states). ``absent``: the caller
        found no state object under this very lock, so there is nothing to back up (one read less)."""
        check_workspace_name(ws)
        self.check_lock(ws, lock)
        assert lock is not None
        backup = None if absent else self._backup_current(ws, lock)
        md5 = hashlib.md5(data).hexdigest()
        self._put(ws, data, lock)
        stored = self._stored_md5(ws, lock)  # streamed where the backend can
        if stored != md5:
            raise StateError(
                f"read-back check failed: wrote md5 {md5}, read back {stored}",
                where=self.where(ws),
                hint=f"the stored state is not what was written; restore it from {backup or 'a backup'}",
            )
        self._after_write(ws, md5)
        return WriteResult(ws, self.where(ws), md5, lineage, serial, backup)

    def delete_workspace(self, ws: str, lock: LockHandle | None) -> None:
        """Delete a (non-default) workspace's state, its lock record and digest."""
        check_workspace_name(ws)
        if ws == DEFAULT_WORKSPACE:
            raise StateError("the default workspace cannot be deleted", where=self.where(ws),
                             hint="empty it instead, or keep it")
        self._require(ws)
        self.check_lock(ws, lock)
        assert lock is not None
        prior = self._read_raw(ws, lock)
        if prior:
            self._backup_before_delete(ws, prior)
        self._delete(ws, lock)
        lock.released = True
