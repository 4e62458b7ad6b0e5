"""Private append-only files for samples and the timeline (mode 0600: they outlive the process for resume)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from migrate.fileio import append_durable, atomic_write


class JsonLines:
    """Appends one JSON object per line; safe across threads; created 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append_many(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        data = "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in rows).encode()
        with self._lock:
            append_durable(self.path, data)

    def append(self, row: dict[str, Any]) -> None:
        self.append_many([row])

    def read(self) -> Iterator[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                yield json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill: the rest of the file is still good


def write_json(path: Path, data: Any) -> None:
    """Atomic, private JSON write (temp + fsync + rename)."""
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return default
