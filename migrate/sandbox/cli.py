"""`python -m migrate.sandbox COMMAND`: the same commands as the `sandbox.*` invoke tasks."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from . import lifecycle
from .faults import FAULT_KINDS
from .layout import DEFAULT_STATE_DIR


def fault_spec(kind: str, *, cluster: str | None = None, path: str = "/", status: int = 503,
               namespace: str = "default", name: str | None = None, resource: str = "deployments",
               bucket: str = "", key_contains: str = "", count: int = -1, seconds: float = 0.0) -> dict[str, Any]:
    """The control API body for one fault (see faults.py); checks what each kind needs."""
    kind = kind.replace("-", "_")  # `eks-delay` on a command line
    if kind == "http":
        if not cluster:
            raise ValueError("an http fault needs --cluster")
        return {"kind": kind, "cluster": cluster, "path": path, "status": status}
    if kind == "never_ready":
        if not cluster or not name:
            raise ValueError("a never_ready fault needs --cluster and --name")
        return {"kind": kind, "cluster": cluster, "namespace": namespace, "name": name, "resource": resource}
    if kind == "state_write":
        return {"kind": kind, "bucket": bucket, "key_contains": key_contains, "count": count}
    if kind == "eks_delay":
        return {"kind": kind, "seconds": seconds}
    if kind == "snapshot_pending":
        return {"kind": kind, "seconds": seconds if seconds else -1}
    if kind == "gke_create_error":
        if not cluster:
            raise ValueError("a gke_create_error fault needs --cluster (the GKE cluster whose create fails)")
        return {"kind": kind, "cluster": cluster}
    raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}")


def _print(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m migrate.sandbox", description="The embedded cloud.")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("daemon", help="run the sandbox in the foreground (what `up` starts in the background)")
    up = sub.add_parser("up", help="start the sandbox in the background")
    up.add_argument("--timeout", type=float, default=lifecycle.START_TIMEOUT)
    sub.add_parser("down", help="stop the sandbox and everything it started")
    sub.add_parser("status", help="say whether it runs, and what")
    reset = sub.add_parser("reset", help="back to the seeds (down, then up)")
    reset.add_argument("--timeout", type=float, default=lifecycle.START_TIMEOUT)
    f = sub.add_parser("fault", help="inject a fault, list them (no kind), or --clear them")
    f.add_argument("kind", nargs="?", choices=FAULT_KINDS, type=lambda k: k.replace("-", "_"))
    f.add_argument("--clear", action="store_true")
    f.add_argument("--cluster")
    f.add_argument("--path", default="/")
    f.add_argument("--status", type=int, default=503)
    f.add_argument("--namespace", default="default")
    f.add_argument("--name")
    f.add_argument("--resource", default="deployments")
    f.add_argument("--bucket", default="")
    f.add_argument("--key-contains", default="")
    f.add_argument("--count", type=int, default=-1)
    f.add_argument("--seconds", type=float, default=0.0)
    pr = sub.add_parser("probe", help="run a probe through the router and print its summary")
    pr.add_argument("host")
    pr.add_argument("--path", default="/")
    pr.add_argument("--rate", type=float, default=20.0)
    pr.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args(argv)
    state_dir: Path = args.state_dir
    try:
        if args.cmd == "daemon":
            from .daemon import run  # heavy imports (moto) only in the daemon

            return run(state_dir)
        if args.cmd == "up":
            t0 = time.monotonic()
            doc = lifecycle.up(state_dir, args.timeout)
            where = Path(doc["state_dir"]) / "endpoints.json"
            print(f"sandbox up (pid {doc['pid']}, {time.monotonic() - t0:.2f}s): {where}")
            return 0
        if args.cmd == "down":
            print("sandbox stopped" if lifecycle.down(state_dir) else "sandbox was not running")
            return 0
        if args.cmd == "status":
            st = lifecycle.status(state_dir)
            _print(st)
            return 0 if st["running"] else 3
        if args.cmd == "reset":
            doc = lifecycle.reset(state_dir, args.timeout)
            print(f"sandbox reset (pid {doc['pid']})")
            return 0
        eps = lifecycle.running(state_dir)
        if eps is None:
            print("error: the sandbox is not running; start it with `invoke sandbox.up`", file=sys.stderr)
            return 1
        if args.cmd == "fault":
            if args.clear:
                _print(lifecycle.control(eps, "DELETE", "/faults"))
            elif args.kind is None:
                _print(lifecycle.control(eps, "GET", "/faults"))
            else:
                spec = fault_spec(args.kind, cluster=args.cluster, path=args.path, status=args.status,
                                  namespace=args.namespace, name=args.name, resource=args.resource,
                                  bucket=args.bucket, key_contains=args.key_contains, count=args.count,
                                  seconds=args.seconds)
                _print(lifecycle.control(eps, "POST", "/faults", spec))
            return 0
        if args.cmd == "probe":
            started = lifecycle.control(eps, "POST", "/probes", {"host": args.host, "path": args.path,
                                                                 "rate": args.rate, "duration": args.duration})
            time.sleep(args.duration + 0.5)
            _print(lifecycle.control(eps, "DELETE", f"/probes/{started['id']}"))
            return 0
    except (lifecycle.SandboxError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 2
