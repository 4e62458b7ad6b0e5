"""Per-environment run locks.

The record is Terraform's lock JSON (the backends' ``LockInfo``), so every lock in
the toolkit reads the same. The local lock is an
``flock`` on a file that also holds the record: the kernel drops it when the
holder dies (even by ``kill -9``), so a crash never leaves an environment stuck,
and a live holder can never be broken by mistake.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from migrate import __version__
from migrate.errors import LockError
from migrate.run.journal import utcnow, who
from migrate.terraform.backends.base import LockInfo


class RunLock(Protocol):
    def acquire(self, operation: str, info: str) -> LockInfo: ...
    def release(self) -> None: ...
    def holder(self) -> LockInfo | None: ...
    def force_unlock(self, lock_id: str) -> None: ...


class LocalRunLock:
    def __init__(self, path: Path, env: str) -> None:
        self.path = path
        self.env = env
        self._fd: int | None = None
        self._made: list[Path] = []

    def _read(self, fd: int) -> LockInfo | None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            raw = os.read(fd, 65536)
            return LockInfo.from_json(raw) if raw.strip() else None
        except (OSError, ValueError, TypeError):
            return None

    def acquire(self, operation: str, info: str) -> LockInfo:
        # Directories made only for the lock go again on release: a refused command leaves nothing behind.
        made = []
        for d in reversed(self.path.parents):
            if not d.exists():
                made.append(d)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = self._read(fd)
                os.close(fd)
                who_ = held.describe() if held else "another process"
                raise LockError(
                    f"environment {self.env!r} is locked by {who_}",
                    where=str(self.path),
                    hint="wait for that run to finish; a crashed run releases its lock by itself",
                    holder=asdict(held) if held else None,
                ) from None
            # The holder unlinks the file as it releases: a lock on a file no longer at the path is no lock.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._made = made
        record = LockInfo(
            ID=str(uuid.uuid4()),
            Operation=operation,
            Info=f"{info} pid={os.getpid()}",
            Who=who(),
            Version=__version__,
            Created=utcnow(),
            Path=str(self.path),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(record), indent=2).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return record

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # an empty lock file means "free" (to a reader that opened it already)
            self.path.unlink(missing_ok=True)  # while still held, so no one locks the old file after us
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        for d in reversed(self._made):
            try:
                d.rmdir()
            except OSError:
                break  # something else lives there now: keep it
        self._made = []

    def holder(self) -> LockInfo | None:
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._read(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def force_unlock(self, lock_id: str) -> None:
        held = self.holder()
        if held is None:
            raise LockError(f"environment {self.env!r} is not locked; nothing to unlock", where=str(self.path))
        if lock_id != held.ID:
            raise LockError(
                f"lock ID {lock_id!r} does not match the held lock {held.ID!r}",
                where=str(self.path),
                hint="copy the ID from the error that named the holder",
            )
        host = held.Who.rsplit("@", 1)[-1]
        if host == socket.gethostname():
            # A local flock is only held by a live process: breaking it would let two runs race.
            raise LockError(
                f"the lock is held by a live process on this host ({held.Info})",
                where=str(self.path),
                hint="stop that process (it releases the lock as it exits); force-unlock is for locks "
                "left by a host that is gone",
            )
        self.path.unlink()
