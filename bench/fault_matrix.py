"""Fault matrix: the dev migration on the sandbox, killed with SIGKILL at every step boundary and once in
the middle of the replay, of the volume cut and of the cutover, then resumed. Each case must complete with
no side effect repeated (one gateway, one weighted record pair, one new cluster), 0 failed probe requests
and 0 lost writes. The steps are the dev plan's, read from the configuration.

    python bench/fault_matrix.py [--out docs/fault-matrix.md] [--cases after-done:03,mid-replay]

Not part of the test run (about 20 minutes); the latest results are in docs/fault-matrix.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scratch import scratch_config  # noqa: E402

from migrate.sandbox import down, ensure_running, env_vars  # noqa: E402


def plan_steps() -> list[str]:
    from migrate.config import load_config
    from migrate.plan.builder import build_plan
    from migrate.run import api
    from migrate.steps import registry

    h = api.open_env(load_config(ROOT / "migrate.yaml"), "dev")
    draft = build_plan(h.name, h.env, config_digest="", facts={}, available=registry.available(), now="", who="",
                       operation="migrate")
    return [s.id for s in draft.steps]


STEPS = plan_steps()
_MID = {"mid-replay": ("replay-workloads", 0.8), "mid-cut-volumes": ("cut-volumes", 1.0),
        "mid-cutover": ("shift-traffic-2", 4.0)}


def migrate(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "migrate", *args], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "200", **(env or {})})


def journal(root: Path) -> list[dict[str, Any]]:
    path = root / ".migrate/dev/journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def kill_when_started(proc: subprocess.Popen[str], root: Path, step: str, delay: float) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r["type"] == "step.started" and r.get("step") == step for r in journal(root)):
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            return
        time.sleep(0.05)


def duplicates() -> dict[str, int]:
    apis = boto3.client("apigatewayv2", region_name="us-east-1").get_apis()["Items"]
    r53 = boto3.client("route53", region_name="us-east-1")
    zone = next(z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == "sandbox.internal.")
    records = [r for r in r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
               if r["Name"] == "app.dev.sandbox.internal."]
    clusters = boto3.client("eks", region_name="us-east-1").list_clusters()["clusters"]
    return {"gateways": len([a for a in apis if a["Name"].startswith("migrate-dev-")]),
            "records": len(records), "green_clusters": clusters.count("dev-green")}


def run_case(case: str, root: Path, sandbox_dir: Path) -> dict[str, Any]:
    down(sandbox_dir)
    os.environ.update(env_vars(ensure_running(sandbox_dir, timeout=30)))
    for d in (root / ".migrate/dev", root / "plans"):
        subprocess.run(["rm", "-rf", str(d)], check=True)
    t0 = time.monotonic()
    if case.startswith("after-done:"):
        first = migrate(root, "migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": case})
    else:
        first = migrate(root, "migrate", "--env", "dev")
        kind, delay = _MID[case]
        kill_when_started(first, root, next(s for s in STEPS if s.endswith(kind)), delay)
    first.communicate(timeout=600)
    killed_at = time.monotonic() - t0
    t1 = time.monotonic()
    second = migrate(root, "migrate", "--env", "dev")
    out, err = second.communicate(timeout=600)
    resume_s = time.monotonic() - t1
    probe = re.search(r"probe: (\d+) requests, (\d+) failed", out)
    writes = re.search(r"writes: (\d+) acknowledged, (\d+) lost", out)
    done = [r["step"] for r in journal(root) if r["type"] == "step.done"]
    return {"case": case, "first_exit": first.returncode, "killed_after_s": round(killed_at, 1),
            "resume_exit": second.returncode, "resume_s": round(resume_s, 1),
            "probe_requests": int(probe.group(1)) if probe else None,
            "probe_failed": int(probe.group(2)) if probe else None,
            "writes_acked": int(writes.group(1)) if writes else None,
            "writes_lost": int(writes.group(2)) if writes else None,
            "steps_done_once": sorted(set(done)) == sorted(done) and len(done) == len(STEPS),
            **duplicates(), "error": "\n".join(err.strip().splitlines()[-8:]) if second.returncode else "",
            "resume_output": out[-3000:] if second.returncode else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs/fault-matrix.md"))
    parser.add_argument("--cases", default="")
    args = parser.parse_args()
    cases = args.cases.split(",") if args.cases else [f"after-done:{s}" for s in STEPS] + list(_MID)
    work, _ = scratch_config("fault-matrix-")
    results = []
    try:
        for case in cases:
            res = run_case(case, work, work / "sandbox")
            print(json.dumps(res), flush=True)
            results.append(res)
    finally:
        down(work / "sandbox")
    # first_exit must be -9: a first run that was never killed proves nothing about resuming.
    ok = all(r["first_exit"] == -signal.SIGKILL and r["resume_exit"] == 0 and r["probe_failed"] == 0
             and r["writes_lost"] == 0 and r["steps_done_once"]
             and r["gateways"] == 1 and r["records"] == 2 and r["green_clusters"] == 1
             for r in results)
    day = time.strftime("%Y-%m-%d")
    lines = ["# Fault matrix", "", f"`python bench/fault_matrix.py` on {day}: the dev migration on",
             "the sandbox, killed with SIGKILL, then resumed with the same command. Verdict: "
             + ("**every case completed, no side effect repeated, 0 failed probe requests, 0 lost writes**." if ok
                else "**some cases failed (see the table)**."),
             f"Machine load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.", "",
             "| case | first run exit | killed after | resume exit | resume time | probe requests | failed "
             "| writes acknowledged | lost | steps done once | gateways | weighted records | new clusters |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['case']} | {r['first_exit']} | {r['killed_after_s']} s | {r['resume_exit']} | "
                     f"{r['resume_s']} s | {r['probe_requests']} | {r['probe_failed']} | {r['writes_acked']} | "
                     f"{r['writes_lost']} | {r['steps_done_once']} | "
                     f"{r['gateways']} | {r['records']} | {r['green_clusters']} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}; {'ALL OK' if ok else 'FAILURES'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
