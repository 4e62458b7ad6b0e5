"""State backends behind one interface (``Backend``); each module imports its SDK lazily."""

from __future__ import annotations

from typing import Any

from migrate.terraform.backends.base import Backend


def make_backend(kind: str, **settings: Any) -> Backend:
    """Build a backend from its Terraform-style settings (``local``, ``s3`` or ``gcs``)."""
    from migrate.errors import ConfigError

    cls: Any
    if kind == "local":
        from migrate.terraform.backends.local import LocalBackend as cls
    elif kind == "s3":
        from migrate.terraform.backends.s3 import S3Backend as cls
    elif kind == "gcs":
        from migrate.terraform.backends.gcs import GCSBackend as cls
    else:
        raise ConfigError(f"unsupported terraform backend {kind!r}", hint="use local, s3 or gcs")
    try:
        backend: Backend = cls(**settings)
        return backend
    except TypeError as e:
        raise ConfigError(f"bad settings for the {kind} backend: {e}", where=f"backend {kind}",
                          hint="see docs/terraform.md for the accepted settings") from e
