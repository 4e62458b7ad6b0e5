"""Lifecycle from a fresh state dir: `sandbox.up` under 10 s, loopback only, `sandbox.down` leaves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from invoke import Collection, Program

from migrate.sandbox import lifecycle
from migrate.sandbox.tasks import namespace
from sandbox.sandboxkit import aws, listening_addresses, processes_in_group

UP_BUDGET = 10.0


def invoke(*args: str) -> None:
    root = Collection()
    root.add_collection(namespace)
    Program(namespace=root, name="migrate", binary="migrate").run(["migrate", *args], exit=False)


def test_up_status_down_through_invoke(tmp_path: Path, capsys: object) -> None:
    state = tmp_path / "sbx"
    t0 = time.monotonic()
    invoke("sandbox.up", "--state-dir", str(state))
    elapsed = time.monotonic() - t0
    print(f"\nsandbox.up took {elapsed:.2f}s")
    doc = json.loads((state / "endpoints.json").read_text())
    pid = doc["pid"]
    try:
        assert elapsed < UP_BUDGET
        assert lifecycle.pid_alive(pid)
        assert (state / "sandbox.pid").read_text().strip() == str(pid)
        assert (state / "sandbox.log").stat().st_size > 0
        for key in ("aws", "gcp", "control_url", "router_url", "clusters", "environments"):
            assert key in doc
        assert set(doc["environments"]) == {"dev", "staging", "prod"}
        assert set(doc["clusters"]) == {"dev-blue", "staging-blue", "prod-blue"}

        # Everything listens on 127.0.0.1 only: every URL in the file, and every listening socket.
        urls = [doc["aws"]["endpoint_url"], doc["gcp"]["container_endpoint"], doc["gcp"]["storage_emulator_host"],
                doc["control_url"], doc["router_url"], *(c[k] for c in doc["clusters"].values()
                                                          for k in ("api", "dataplane"))]
        assert all(u.startswith("http://127.0.0.1:") for u in urls)
        listening = listening_addresses(pid)
        assert len(listening) >= len(urls)
        assert all(a.startswith("127.0.0.1:") for a in listening), listening

        # A second `up` finds the running daemon instead of starting another.
        again = lifecycle.up(state)
        assert again["pid"] == pid

        st = lifecycle.status(state)
        assert st["running"] and st["pid"] == pid and set(st["clusters"]) == set(doc["clusters"])
    finally:
        invoke("sandbox.down", "--state-dir", str(state))
    wait_gone = time.monotonic() + 5
    while lifecycle.pid_alive(pid) and time.monotonic() < wait_gone:
        time.sleep(0.05)
    assert not lifecycle.pid_alive(pid)
    assert processes_in_group(pid) == []  # the daemon's session: nothing of it is left
    assert not (state / "endpoints.json").exists() and not (state / "sandbox.pid").exists()
    assert lifecycle.status(state) == {"running": False, "state_dir": str(state)}


def test_module_cli_down_kills_a_daemon_it_did_not_start(tmp_path: Path) -> None:
    """`python -m migrate.sandbox down` from another process stops a daemon started by this one."""
    state = tmp_path / "sbx"
    doc = lifecycle.up(state)
    out = subprocess.run([sys.executable, "-m", "migrate.sandbox", "--state-dir", str(state), "down"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "stopped" in out.stdout
    lifecycle.down(state)  # reaps our child; must be a no-op otherwise
    assert not lifecycle.pid_alive(doc["pid"])
    assert processes_in_group(doc["pid"]) == []
    status = subprocess.run([sys.executable, "-m", "migrate.sandbox", "--state-dir", str(state), "status"],
                            capture_output=True, text=True, timeout=30)
    assert status.returncode == 3 and '"running": false' in status.stdout


def test_reset_starts_over_from_the_seeds(tmp_path: Path) -> None:
    state = tmp_path / "sbx"
    doc = lifecycle.up(state)
    try:
        s3 = aws(doc, "s3")
        s3.put_object(Bucket="sandbox-tfstate", Key="marker", Body=b"x")
        invoke("sandbox.reset", "--state-dir", str(state))
        fresh = json.loads((state / "endpoints.json").read_text())
        assert fresh["pid"] != doc["pid"] and not lifecycle.pid_alive(doc["pid"])
        s3 = aws(fresh, "s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sandbox-tfstate").get("Contents", [])]
        assert "marker" not in keys
        assert any(k.endswith("platform/terraform.tfstate") for k in keys), keys  # the seeded states are back
    finally:
        lifecycle.down(state)
