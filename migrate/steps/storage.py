"""Where an environment's journal and run lock live: on this machine, or next to its Terraform state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.config import Environment, LoadedConfig


def remote_store(loaded: LoadedConfig, env_name: str, env: Environment, workdir: Path) -> tuple[Any, Any] | None:
    """(journal, run lock) next to the state, or None for the local default."""
    if env.journal != "backend" or env.terraform is None:
        return None
    from migrate.steps.base import Context
    from migrate.steps.terraform import backend_for
    from migrate.terraform.runstore import BackendRunLock, GcsJournal, S3Journal

    ctx = Context(loaded=loaded, env_name=env_name, env=env, workdir=workdir)
    backend: Any = backend_for(ctx)
    b = env.terraform.backend
    if b.type == "s3":
        journal: Any = S3Journal(backend.s3, str(b.bucket), str(b.key), env_name)
    elif b.type == "gcs":
        journal = GcsJournal(backend.client, str(b.bucket), b.prefix or "", env_name)
    else:
        return None  # a local backend already lives on this machine
    return journal, BackendRunLock(backend, env_name)
