"""The whole mission on the sandbox, as an operator runs it: dev, staging, a reviewed and staged prod,
then decommission of each old cluster once its bake time has passed."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3
import pytest
from engine.kit import Project

from e2e.world import sandboxed_project


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The shipped migrate.yaml, pointed at a sandbox of its own in a temporary directory."""
    with sandboxed_project(tmp_path_factory.mktemp("e2e")) as world:
        yield world


def _status(p: Project, env: str) -> dict[str, Any]:
    return json.loads(p.run("status", "--env", env, "--json").stdout)[0]


def _probe_line(stdout: str) -> tuple[int, int]:
    m = re.search(r"probe: (\d+) requests, (\d+) failed", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2))


def _state(key: str) -> dict[str, Any] | None:
    s3 = boto3.client("s3", region_name="us-east-1")
    try:
        return json.loads(s3.get_object(Bucket="sandbox-tfstate", Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _addresses(state: dict[str, Any]) -> set[str]:
    out = set()
    for r in state["resources"]:
        base = (r.get("module", "") + "." if r.get("module") else "") + (
            "data." if r["mode"] == "data" else "") + f"{r['type']}.{r['name']}"
        out.add(base)
    return out


def _run_env(p: Project, env: str, *args: str) -> str:
    t0 = time.monotonic()
    r = p.run("migrate", "--env", env, *args, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"{env} {' '.join(args)}: {time.monotonic() - t0:.1f}s")
    return r.stdout


def test_dev_staging_prod_then_decommission(world: Any) -> None:
    p, _ = world
    # prod cannot start before staging, nor without a reviewed plan
    assert p.run("migrate", "--env", "prod").returncode == 3

    for env in ("dev", "staging"):
        out = _run_env(p, env)
        requests, failed = _probe_line(out)
        assert requests > 100 and failed == 0
        run = _status(p, env)["runs"]["migrate"]
        assert run["status"] == "completed" and {s["status"] for s in run["steps"]} == {"done"}

    assert p.run("plan", "--env", "prod").returncode == 0
    plan = sorted((p.root / "plans").glob("prod-*.plan.json"))[-1]
    out = _run_env(p, "prod", "--plan", str(plan))
    assert "paused after" in out and _status(p, "prod")["runs"]["migrate"]["status"] == "paused"
    out = _run_env(p, "prod", "--continue")
    requests, failed = _probe_line(out)
    assert failed == 0
    assert _status(p, "prod")["runs"]["migrate"]["status"] == "completed"
    for env in ("dev", "staging", "prod"):
        reports = list((p.root / "plans").glob(f"{env}-*.report.md"))
        assert reports and list((p.root / "plans").glob(f"{env}-*.report.html"))
        # The replay's counts per skip reason, after it ran (the plan showed them before).
        text = reports[-1].read_text()
        assert "## Replay" in text and "| left behind because | objects |" in text
        assert "created in every namespace by the new cluster" in text

    time.sleep(10)  # the sandbox's bake time
    for env in ("dev", "staging", "prod"):
        old = _state(f"env:/{env}/platform/terraform.tfstate")
        assert old is not None
        shared = {a for a in _addresses(old) if "eks" not in a and not a.startswith("kubernetes_")
                  and not a.startswith("data.")}
        # redis's claim is `fresh` (a cache): its old volume dies with the cluster, so the loss is accepted.
        args = ["--accept-data-loss", "shop/data-redis-0"]
        if env == "prod":  # review: required applies to the decommission too
            assert p.run("plan", "--env", env, "--decommission", *args).returncode == 0
            args = ["--plan", str(sorted((p.root / "plans").glob(f"decommission-{env}-*.plan.json"))[-1])]
        r = p.run("decommission", "--env", env, *args, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        # the old workspace is gone, the new one owns the shared resources alone
        assert _state(f"env:/{env}/platform/terraform.tfstate") is None
        new = _state(f"env:/{env}-green/platform/terraform.tfstate")
        assert new is not None and shared <= _addresses(new)
        eks = boto3.client("eks", region_name="us-east-1")
        assert f"{env}-blue" not in eks.list_clusters()["clusters"]
        apis = boto3.client("apigatewayv2", region_name="us-east-1").get_apis()["Items"]
        assert not [a for a in apis if a["Name"].startswith(f"migrate-{env}-")]
