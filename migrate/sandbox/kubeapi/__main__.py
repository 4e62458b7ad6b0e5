"""`python -m migrate.sandbox.kubeapi --port P --version 1.29`: run one emulated cluster until killed."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from .server import KubeAPIServer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m migrate.sandbox.kubeapi", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)")
    p.add_argument("--version", default="1.29", help="Kubernetes minor to emulate (schemas, /version)")
    p.add_argument("--controller-delay", type=float, default=0.5, help="seconds before workloads turn ready")
    p.add_argument("--token", default=None, help="require this bearer token")
    p.add_argument("--cluster-name", default="sandbox")
    p.add_argument("--kubeconfig", default=None, help="also write a kubeconfig for the server here")
    args = p.parse_args(argv)
    try:
        server = KubeAPIServer(version=args.version, controller_delay=args.controller_delay, port=args.port,
                               token=args.token, cluster_name=args.cluster_name).start()
    except (OSError, ValueError) as e:
        print(f"error: cannot start the Kubernetes API emulator: {e}", file=sys.stderr)
        return 1
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig)
    print(server.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
