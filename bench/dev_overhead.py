"""The toolkit's own overhead on the dev migration: wall time minus the waits the configuration demands.

Starts a fresh sandbox, runs `python -m migrate migrate --env dev` (what `invoke migrate --env dev` runs) in
a scratch copy of the configuration, then reads the run's journal. The configured waits are the latency
baseline before the first shift (`traffic.baseline`) and, per weight step, the DNS settle (the record's
TTL) plus the soak. Every other second is overhead: sandbox start, planning, each step's own work, the
report. Prints one row per step and the totals. Figures are printed, never asserted.

    python bench/dev_overhead.py [--timeline]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scratch import scratch_config  # noqa: E402

from migrate.config import load_config  # noqa: E402
from migrate.sandbox import down, ensure_running, env_vars  # noqa: E402


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> int:
    timeline = "--timeline" in sys.argv[1:]  # also print every journal record's time since the CLI started
    work, _ = scratch_config("bench-overhead-")
    traffic = load_config(work / "migrate.yaml").env("dev").traffic
    baseline_s = float(traffic.baseline) if traffic is not None else 0.0
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        t0 = time.perf_counter()
        os.environ.update(env_vars(ensure_running(work / "sandbox", timeout=60)))
        sandbox_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        launched = time.time()
        proc = subprocess.run([sys.executable, "-m", "migrate", "migrate", "--env", "dev"], cwd=work, text=True,
                              capture_output=True, env={**os.environ, "COLUMNS": "200"})
        cli_s = time.perf_counter() - t1
    finally:
        down(work / "sandbox")
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-3000:], sep="\n")
        return 1
    records = [json.loads(line) for line in (work / ".migrate/dev/journal.jsonl").read_text().splitlines()
               if line.strip()]
    started = {r["step"]: _ts(r["ts"]) for r in records if r["type"] == "step.started"}
    rows: list[tuple[str, float, float]] = []
    first_shift = True
    steps_s = 0.0
    for r in records:
        if r["type"] != "step.done" or r["step"] not in started:
            continue
        took = _ts(r["ts"]) - started[r["step"]]
        out: dict[str, Any] = r.get("outputs") if isinstance(r.get("outputs"), dict) else {}
        wait = 0.0
        if "shift-traffic" in r["step"]:
            wait = float(out.get("settle_s", 0)) + float(out.get("soak_s", 0))
            if first_shift:
                wait += baseline_s
                first_shift = False
        rows.append((r["step"], took, wait))
        steps_s += took
    print(f"\n{'step':<26} {'wall':>7} {'configured wait':>16} {'overhead':>9}")
    for step, took, wait in rows:
        print(f"{step:<26} {took:>6.2f}s {wait:>15.2f}s {took - wait:>8.2f}s")
    waits = sum(w for _, _, w in rows)
    outside = cli_s - steps_s
    print(f"{'sandbox start':<26} {sandbox_s:>6.2f}s {0:>15.2f}s {sandbox_s:>8.2f}s")
    print(f"{'CLI outside the steps':<26} {outside:>6.2f}s {0:>15.2f}s {outside:>8.2f}s  (start-up, plan, probe)")
    if timeline:
        for r in records:
            print(f"  +{_ts(r['ts']) - launched:7.2f}s {r['type']:<16} {r.get('step', '')}")
    stamps = sorted(_ts(r["ts"]) for r in records if r["type"] in ("step.started", "step.done"))
    if stamps:
        before, after = stamps[0] - launched, launched + cli_s - stamps[-1]
        between = outside - before - after
        print(f"{'  before the first step':<26} {before:>6.2f}s  (interpreter, imports, facts, plan, run start)")
        print(f"{'  between steps':<26} {between:>6.2f}s  (journal, is_done checks, steps found done)")
        print(f"{'  after the last step':<26} {after:>6.2f}s  (probe stop, summary, exit)")
    total = sandbox_s + cli_s
    print(f"\ntotal wall {total:.1f} s = configured waits {waits:.1f} s + overhead {total - waits:.1f} s "
          f"(sandbox start {sandbox_s:.1f} s included)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
