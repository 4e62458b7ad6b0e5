"""`migrate` starts the embedded sandbox itself when the configuration points at it and none is running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from migrate.sandbox import lifecycle

ROOT = Path(__file__).resolve().parents[2]
# Variables a running sandbox (or another test) may have set; the command must find its own.
_SANDBOX_VARS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "STORAGE_EMULATOR_HOST",
                 "MIGRATE_SANDBOX_ENDPOINTS", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def test_plan_starts_the_sandbox_when_none_is_running(tmp_path: Path) -> None:
    cfg = yaml.safe_load((ROOT / "migrate.yaml").read_text())
    state = tmp_path / "sandbox"
    cfg["sandbox"]["state_dir"] = str(state)
    cfg["environments"] = {"dev": cfg["environments"]["dev"]}
    cfg["environments"]["dev"]["terraform"]["root"] = str(ROOT / cfg["environments"]["dev"]["terraform"]["root"])
    (tmp_path / "migrate.yaml").write_text(yaml.safe_dump(cfg))
    assert lifecycle.running(state) is None
    env = {k: v for k, v in os.environ.items() if k not in _SANDBOX_VARS}
    try:
        out = subprocess.run([sys.executable, "-m", "migrate", "plan", "--env", "dev"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180, check=False)
        assert out.returncode == 0, out.stderr
        assert "starting the embedded sandbox" in out.stderr
        doc = json.loads((state / "endpoints.json").read_text())
        assert lifecycle.pid_alive(doc["pid"])
        plans = sorted((tmp_path / "plans").glob("dev-*.plan.json"))
        assert len(plans) == 1 and json.loads(plans[0].read_text())["env"] == "dev"
        # Beside the plan: the replay's exact manifests, Secrets redacted, and its summary.
        review = plans[0].with_name(plans[0].name.removesuffix(".plan.json"))
        secrets = [d for f in sorted((review / "manifests").rglob("Secret.yaml"))
                   for d in yaml.safe_load_all(f.read_text())]
        assert secrets and (review / "summary.md").exists()
        for s in secrets:
            data = s.get("data") or {}
            assert data and set(data.values()) == {"<redacted>"}, s["metadata"]
        # A second command finds the running sandbox instead of starting another.
        again = subprocess.run([sys.executable, "-m", "migrate", "status", "--env", "dev"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=60, check=False)
        assert again.returncode == 0, again.stderr
        assert "starting the embedded sandbox" not in again.stderr
        assert json.loads((state / "endpoints.json").read_text())["pid"] == doc["pid"]
    finally:
        lifecycle.down(state)
    assert not lifecycle.pid_alive(doc["pid"])
