"""Invoke tasks: `invoke sandbox.up|down|status|reset|fault`. Thin: parse, call the library, map errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from . import lifecycle
from .cli import fault_spec
from .layout import DEFAULT_STATE_DIR

_DIR = str(DEFAULT_STATE_DIR)


@task(help={"state_dir": "where the sandbox keeps its files", "timeout": "seconds to wait for readiness"})
def up(c: Context, state_dir: str = _DIR, timeout: float = lifecycle.START_TIMEOUT) -> None:
    """Start the embedded cloud in the background (idempotent)."""
    t0 = time.monotonic()
    try:
        doc = lifecycle.up(Path(state_dir), timeout)
    except lifecycle.SandboxError as e:
        raise Exit(f"error: {e}", code=1) from e
    print(f"sandbox up (pid {doc['pid']}, {time.monotonic() - t0:.2f}s); endpoints: "
          f"{Path(doc['state_dir']) / 'endpoints.json'}")


@task(help={"state_dir": "where the sandbox keeps its files"})
def down(c: Context, state_dir: str = _DIR) -> None:
    """Stop the sandbox and everything it started."""
    print("sandbox stopped" if lifecycle.down(Path(state_dir)) else "sandbox was not running")


@task(help={"state_dir": "where the sandbox keeps its files"})
def status(c: Context, state_dir: str = _DIR) -> None:
    """Say whether the sandbox runs: endpoints, clusters, faults, probes."""
    st = lifecycle.status(Path(state_dir))
    print(json.dumps(st, indent=2, sort_keys=True))
    if not st["running"]:
        raise Exit(code=3)


@task(help={"state_dir": "where the sandbox keeps its files", "timeout": "seconds to wait for readiness"})
def reset(c: Context, state_dir: str = _DIR, timeout: float = lifecycle.START_TIMEOUT) -> None:
    """Back to the seeds: stop, then start afresh."""
    try:
        doc = lifecycle.reset(Path(state_dir), timeout)
    except lifecycle.SandboxError as e:
        raise Exit(f"error: {e}", code=1) from e
    print(f"sandbox reset (pid {doc['pid']})")


@task(help={"kind": "http | never_ready | state_write | eks_delay | snapshot_pending (none: list faults)",
            "clear": "remove every fault", "cluster": "cluster name (http, never_ready)",
            "path": "path prefix (http)", "status": "5xx status (http)", "namespace": "namespace (never_ready)",
            "name": "workload name (never_ready)", "resource": "deployments|statefulsets|daemonsets",
            "bucket": "bucket (state_write)", "key_contains": "key substring (state_write)",
            "count": "failing writes, -1 until cleared",
            "seconds": "delay (eks_delay); pending time, 0 for ever (snapshot_pending)",
            "state_dir": "where the sandbox keeps its files"})
def fault(c: Context, kind: str = "", clear: bool = False, cluster: str = "", path: str = "/", status: int = 503,
          namespace: str = "default", name: str = "", resource: str = "deployments", bucket: str = "",
          key_contains: str = "", count: int = -1, seconds: float = 0.0, state_dir: str = _DIR) -> None:
    """Inject a fault for tests and rollback demos, list them, or clear them."""
    eps = lifecycle.running(Path(state_dir))
    if eps is None:
        raise Exit("error: the sandbox is not running; start it with `invoke sandbox.up`", code=1)
    try:
        if clear:
            doc = lifecycle.control(eps, "DELETE", "/faults")
        elif not kind:
            doc = lifecycle.control(eps, "GET", "/faults")
        else:
            doc = lifecycle.control(eps, "POST", "/faults", fault_spec(
                kind, cluster=cluster or None, path=path, status=status, namespace=namespace, name=name or None,
                resource=resource, bucket=bucket, key_contains=key_contains, count=count, seconds=seconds))
    except (lifecycle.SandboxError, ValueError) as e:
        raise Exit(f"error: {e}", code=1) from e
    print(json.dumps(doc, indent=2, sort_keys=True))


namespace = Collection("sandbox", up, down, status, reset, fault)
