"""Validation against real local HTTP servers: the Diffy-style comparison and the pytest-suite runner."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from migrate.config import DiffCheck, Suite, Validation
from migrate.validate.http import Http
from migrate.validate.runner import Targets, run_diff, run_validation
from traffic.kit import JsonServer


def item(price: int) -> Any:
    # ts differs on every call, on both sides: noise, whatever the new cluster does with it.
    return lambda path: {"ts": time.time_ns(), "path": path, "price": price, "tags": ["a", "b"]}


def test_diff_flags_a_changed_field_and_ignores_the_timestamp() -> None:
    with JsonServer(item(10)) as old, JsonServer(item(12)) as new, Http() as http:
        result = run_diff(DiffCheck(requests=8, paths=["/item/1", "/item/2"]), Targets(new.url, old.url), http)
    assert not result.ok
    assert result.data["differences"] == {"body.price": 1.0}
    assert result.data["noise"] == {"body.ts": 1.0}
    assert result.data["examples"]["body.price"] == {"new": 12, "old": 10}
    assert "body.price (100%)" in result.detail


def test_diff_passes_when_only_noise_differs() -> None:
    with JsonServer(item(10)) as old, JsonServer(item(10)) as new, Http() as http:
        result = run_diff(DiffCheck(requests=5), Targets(new.url, old.url), http)
    assert result.ok and result.data["differences"] == {} and "body.ts" in result.data["noise"]


SUITE = '''
import os, urllib.request

def test_target_is_reachable():
    url = os.environ["MIGRATE_TARGET_URL"]
    assert os.environ["KUBECONFIG"].endswith("kubeconfig")
    with urllib.request.urlopen(url + "/health", timeout=5) as r:
        assert r.status == 200

def test_{name}():
    assert {verdict}
'''


def test_suites_run_as_subprocess_with_target_in_env_and_junit_collected(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_good.py").write_text(SUITE.format(name="good", verdict="True"))
    (tmp_path / "suites" / "test_bad.py").write_text(SUITE.format(name="bad", verdict="1 == 2"))
    cfg = Validation(health=False, suites=[Suite(name="good", path="suites/test_good.py"),
                                           Suite(name="bad", path="suites/test_bad.py", timeout=60)])
    with JsonServer(item(1)) as new:
        results = run_validation(cfg, Targets(new.url, new.url, kubeconfig=str(tmp_path / "kubeconfig")),
                                 root=tmp_path, out_dir=tmp_path / "junit", latency_floor_ms=0)
    good, bad = results
    assert good.ok and good.data["tests"] == 2 and good.data["failures"] == 0
    assert Path(good.data["junit_xml"]).exists()
    assert not bad.ok and bad.data["failures"] == 1 and "1 failures" in bad.detail
