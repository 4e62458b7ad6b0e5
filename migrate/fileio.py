"""Durable writes: atomic replacement (a reader sees the old file or the new one, never half of one), and
fsynced appends for append-only logs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: str | bytes, *, mode: int = 0o600) -> Path:
    """Write via a temp file in the same directory, fsync, then rename over ``path``.

    Mode 0600 by default: what the toolkit writes (kubeconfigs, plans, records) may describe secrets' homes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def append_durable(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Append ``data`` with one write and fsync it; a new file's directory entry is fsynced too, so a
    crash right after never loses the file itself."""
    created = not path.exists()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
