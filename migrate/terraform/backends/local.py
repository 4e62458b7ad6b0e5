"""Terraform's ``local`` backend, natively.

Layout: ``terraform.tfstate`` for default, ``terraform.tfstate.d/<ws>/terraform.tfstate``
for the others. Locking is Terraform's own: a POSIX ``fcntl`` write lock on the
state file itself, plus ``.terraform.tfstate.lock.info`` beside it describing the
holder. The info file alone is not a lock (Terraform ignores a stale one), so we
do the same.

POSIX locks belong to the process and vanish when *any* descriptor of the file
is closed. So while we hold a lock every read and write goes through the locked
descriptor, and a process-wide table refuses a second lock on the same file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import struct
import threading
from pathlib import Path

from migrate.errors import LockError, StateError
from migrate.terraform.backends.base import (
    DEFAULT_WORKSPACE,
    Backend,
    LockHandle,
    LockInfo,
    backup_file,
    held_error,
    write_private,
)

STATE_NAME = "terraform.tfstate"
WORKSPACE_DIR = "terraform.tfstate.d"

_held: dict[str, LockHandle] = {}  # real path -> our handle, for this process
_held_guard = threading.Lock()


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, root: str | Path, *, workspace_dir: str = WORKSPACE_DIR) -> None:
        self.root = Path(root).absolute()
        self.workspace_dir = workspace_dir

    def path(self, ws: str) -> Path:
        if ws == DEFAULT_WORKSPACE:
            return self.root / STATE_NAME
        return self.root / self.workspace_dir / ws / STATE_NAME

    def _info_path(self, ws: str) -> Path:
        p = self.path(ws)
        return p.parent / f".{p.name}.lock.info"

    def where(self, ws: str) -> str:
        return str(self.path(ws))

    def workspaces(self) -> list[str]:
        base = self.root / self.workspace_dir
        names = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        return [DEFAULT_WORKSPACE, *(n for n in names if n != DEFAULT_WORKSPACE)]

    def _key(self, ws: str) -> str:
        return os.path.realpath(self.path(ws))

    def _read_raw(self, ws: str, lock: LockHandle | None = None) -> bytes | None:
        held = _held.get(self._key(ws))
        if held is not None:
            # Never open+close another descriptor: that would drop our fcntl lock.
            fd = held.extra["fd"]
            size = os.fstat(fd).st_size
            return os.pread(fd, size, 0) if size else None
        try:
            return self.path(ws).read_bytes() or None
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StateError(f"cannot read state: {e.strerror}", where=self.where(ws),
                             hint="check the file's permissions") from e

    def _put(self, ws: str, data: bytes, lock: LockHandle) -> None:
        # In place through the locked descriptor, as Terraform does: replacing the
        # file would leave a waiting terraform holding a lock on the old inode.
        fd = lock.extra["fd"]
        os.ftruncate(fd, 0)
        view = memoryview(data)
        off = 0
        while off < len(view):
            off += os.pwrite(fd, view[off:], off)
        os.fsync(fd)

    def _backup(self, ws: str, prior: bytes) -> str:
        return str(backup_file(self.path(ws).parent, STATE_NAME, prior))

    def _backup_before_delete(self, ws: str, prior: bytes) -> str:
        # The workspace directory is about to go; keep the last bytes beside it.
        return str(backup_file(self.root / self.workspace_dir, f"{ws}.{STATE_NAME}", prior))

    def holder(self, ws: str) -> LockInfo | None:
        held = _held.get(self._key(ws))
        if held is not None:
            return held.info
        path = self.path(ws)
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            # F_GETLK tells whether another process holds the fcntl lock.
            probe = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
            res = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
            if struct.unpack("hhqqi", res)[0] == fcntl.F_UNLCK:
                return None
        finally:
            os.close(fd)  # we hold no lock on this file, so closing is harmless
        return self._info(ws)

    def _info(self, ws: str) -> LockInfo:
        try:
            return LockInfo.from_json(self._info_path(ws).read_bytes())
        except OSError:
            return LockInfo(ID="?", Operation="?", Who="unknown (no lock info file)", Created="?")

    def _lock(self, ws: str, info: LockInfo, create: bool) -> LockHandle:
        path = self.path(ws)
        key = self._key(ws)
        info.Path = str(path)
        with _held_guard:
            if key in _held:
                raise held_error(ws, str(path), _held[key].info)
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            # O_CREAT like Terraform: an empty file is "no state yet".
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EACCES, errno.EAGAIN):
                    raise held_error(ws, str(path), self._info(ws)) from e
                raise LockError(f"cannot lock state file: {e.strerror}", where=str(path)) from e
            info_path = self._info_path(ws)
            info_path.unlink(missing_ok=True)
            write_private(info_path, info.to_json())
            handle = LockHandle(self, ws, info, extra={"fd": fd})
            _held[key] = handle
            return handle

    def _release(self, lock: LockHandle, *, remove_info: bool = True) -> None:
        with _held_guard:
            _held.pop(self._key(lock.workspace), None)
            if remove_info:
                self._info_path(lock.workspace).unlink(missing_ok=True)
            fd = lock.extra.pop("fd", None)
            if fd is not None:
                os.close(fd)  # closing drops the fcntl lock

    def _unlock(self, lock: LockHandle) -> None:
        self._release(lock)

    def force_unlock(self, ws: str, lock_id: str) -> None:
        # A local lock dies with its process; all that can be stale is the info file.
        current = self.holder(ws)
        if current is not None and lock_id == current.ID:
            mine = _held.get(self._key(ws))
            if mine is not None:
                self.unlock(mine)
                return
            raise LockError(
                f"lock {lock_id} is held by a live process ({current.Who})", where=self.where(ws),
                hint="local locks are released when their process exits; stop that process",
            )
        info = self._info_path(ws)
        if current is None and info.exists() and lock_id == LockInfo.from_json(info.read_bytes()).ID:
            info.unlink()
            return
        raise LockError(f"no lock with ID {lock_id} on workspace {ws!r}", where=self.where(ws),
                        hint="check the ID in the lock error message")

    def _delete(self, ws: str, lock: LockHandle) -> None:
        self._release(lock, remove_info=False)
        shutil.rmtree(self.path(ws).parent)
