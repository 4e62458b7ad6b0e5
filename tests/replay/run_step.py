"""Run the replay-workloads step in its own process (the kill-and-resume test SIGKILLs it mid-way).

    python run_step.py CONFIG WORKDIR KUBECONFIG PROGRESS_FILE
Each finished object appends one line to PROGRESS_FILE.
"""

from __future__ import annotations

import sys
from pathlib import Path

from migrate.kube.apply import Result
from migrate.steps.replay import ReplayWorkloadsStep
from replay.engine import context, step


def main() -> int:
    config, workdir, kubeconfig, progress = (Path(a) for a in sys.argv[1:5])
    ctx = context(config, workdir, kubeconfig)
    kind = ReplayWorkloadsStep()
    with progress.open("a", buffering=1) as f:
        def on_result(r: Result) -> None:
            f.write(f"{r.action} {r.key}\n")
        kind.on_result = on_result
        kind.apply(step("replay-workloads"), ctx)
        f.write("DONE\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
