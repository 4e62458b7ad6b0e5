"""Where a sandbox keeps its files: one state directory per sandbox (default `.migrate/sandbox`)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path(".migrate") / "sandbox"
ENDPOINTS_VERSION = 1


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints.json"

    @property
    def pid(self) -> Path:
        return self.root / "sandbox.pid"

    @property
    def log(self) -> Path:
        return self.root / "sandbox.log"

    @property
    def kubeconfigs(self) -> Path:
        return self.root / "kubeconfigs"

    def ensure(self) -> Layout:
        self.root.mkdir(parents=True, exist_ok=True)
        self.kubeconfigs.mkdir(exist_ok=True)
        return self


def write_json_atomic(path: Path, doc: Any) -> None:
    """Readers never see a half-written file: write a sibling, fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
