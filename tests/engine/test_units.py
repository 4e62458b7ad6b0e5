"""Fast tests of the pure pieces: config parsing, plan building and digest, redaction, journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrate.config import Environment, Traffic, load_config, parse_duration
from migrate.errors import ConfigError, JournalError
from migrate.plan.builder import build_plan
from migrate.plan.model import Plan
from migrate.plan.render import render_markdown
from migrate.redact import REDACTED, redact
from migrate.run.journal import Journal, fold

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: object) -> Environment:
    base: dict[str, object] = {
        "cloud": "aws", "aws": {"region": "eu-west-1"},
        "clusters": {"old": {"name": "blue"}, "new": {"name": "green"}},
        "traffic": {"record": {"zone": "z", "name": "app.z"}, "steps": [10, 50, 100], "pause_after": [1]},
        "terraform": {"root": "stack", "backend": {"type": "s3", "bucket": "b", "key": "k"},
                      "workspace": "prod", "new_workspace": "prod-green",
                      "variables": {"db_password": "hunter2", "size": 3}},
    }
    base.update(extra)
    return Environment.model_validate(base)


def _plan(env: Environment, **kw: object) -> Plan:
    args: dict[str, object] = {"config_digest": "c", "facts": {}, "available": {"hook", "write-report"},
                               "now": "2026-01-01T00:00:00.000000Z", "who": "op@host"}
    args.update(kw)
    return build_plan("prod", env, **args)  # type: ignore[arg-type]


def test_shipped_config_is_valid() -> None:
    loaded = load_config(ROOT / "migrate.yaml")
    assert list(loaded.config.environments) == ["dev", "staging", "prod"]
    assert loaded.env("prod").review == "required"
    assert loaded.env("prod").requires == ["staging"]


def test_full_plan_order_weights_pause_and_availability() -> None:
    plan = _plan(_env())
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["duplicate-workspace", "detach-cluster", "provision-cluster", "wait-cluster-ready",
                     "write-kubeconfig", "replay-workloads", "wait-workloads-ready", "open-gateway", "validate",
                     "shift-traffic", "shift-traffic", "shift-traffic", "write-report"]
    shifts = [s for s in plan.steps if s.kind == "shift-traffic"]
    assert [s.params["weights"] for s in shifts] == [{"old": 90, "new": 10}, {"old": 50, "new": 50},
                                                     {"old": 0, "new": 100}]
    assert [s.pause_after for s in shifts] == [True, False, False]
    assert not plan.step("01-duplicate-workspace").available and plan.step("13-write-report").available


def test_gateway_router_plan_says_which_steps_only_soak() -> None:
    plan = _plan(_env(traffic={"router": "gateway", "api_id": "abc123", "steps": [10, 100]}))
    first, last = [s for s in plan.steps if s.kind == "shift-traffic"]
    assert first.title == "Soak with all traffic on blue (gateway router; step 1/2)"
    assert "keeps sending every request to blue" in first.effect and first.undo == "nothing to undo"
    assert last.title == "Shift traffic: 100% to green (step 2/2)"


def test_plan_digest_is_stable_and_detects_any_change() -> None:
    a, b = _plan(_env()), _plan(_env())
    assert a.digest == b.digest == a.compute_digest()
    changed = a.model_copy(update={"env": "dev"})
    assert changed.compute_digest() != a.digest
    roundtrip = Plan.model_validate(json.loads(json.dumps(a.model_dump(mode="json"))))
    assert roundtrip.compute_digest() == a.digest


def test_secrets_are_redacted_in_plan_and_markdown() -> None:
    plan = _plan(_env(provisioner="terraform"))
    params = plan.step("03-provision-cluster").params
    assert params["variables"] == {"db_password": REDACTED, "size": 3}
    assert "hunter2" not in json.dumps(plan.model_dump()) and "hunter2" not in render_markdown(plan)


def test_hooks_are_placed_at_their_anchor() -> None:
    env = _env(hooks=[
        {"name": "before-dns", "run": ["true"], "before": "shift-traffic"},
        {"name": "after-replay", "run": ["true"], "after": "replay-workloads"},
        {"name": "chained", "run": ["true"], "after": "after-replay"},
        {"name": "last", "run": ["true"]},
    ])
    ids = [s.id.split("-", 1)[1] for s in _plan(env).steps]
    assert ids.index("hook-after-replay") == ids.index("replay-workloads") + 1
    assert ids.index("hook-chained") == ids.index("hook-after-replay") + 1
    assert ids.index("hook-before-dns") == ids.index("shift-traffic-1") - 1
    assert ids[-2:] == ["hook-last", "write-report"]


def test_decommission_plan_deletes_only_the_old_side() -> None:
    plan = _plan(_env(), operation="decommission")
    assert [s.kind for s in plan.steps] == ["protect-volumes", "remove-gateway", "handover-shared",
                                            "destroy-old-cluster", "retire-workspace", "write-report"]
    assert "cluster blue" in plan.review["delete"] and "cluster green" in plan.review["never_touch"]


def test_decommission_review_names_the_snapshots_and_the_accepted_loss() -> None:
    rows = [{"claim": "shop/data-redis-0", "pv": "pvc-1", "handle": "vol-1", "reclaim": "Delete", "strategy": "fresh",
             "snapshot": True, "at_risk": True},
            {"claim": "shop/files", "pv": "pv-efs", "handle": "fs-1", "reclaim": "Delete", "strategy": "shared",
             "snapshot": False, "at_risk": False}]
    facts = {"protect-volumes": {"volumes": rows, "params": {"accept_data_loss": ["shop/data-redis-*"]}}}
    plan = _plan(_env(), operation="decommission", facts=facts)
    assert plan.steps[0].params["accept_data_loss"] == ["shop/data-redis-*"]
    assert plan.review["create"] == ["a final snapshot of shop/data-redis-0 (vol-1)"]
    assert "the data of shop/data-redis-0 on vol-1 (accepted with --accept-data-loss)" in plan.review["delete"]
    assert "PV pv-efs of shop/files: reclaim policy set to Retain (shared with green)" in plan.review["change"]
    assert _plan(_env(skip=["protect-volumes"]), operation="decommission").steps[0].kind == "remove-gateway"


@pytest.mark.parametrize(("value", "seconds"), [("30s", 30), ("5m", 300), ("1.5h", 5400), (12, 12), ("250ms", 0.25)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


def test_explicit_weights_and_their_bounds() -> None:
    env = _env(traffic={"record": {"zone": "z", "name": "n"}, "steps": [{"old": 200, "new": 55},
                                                                         {"old": 0, "new": 255}]})
    assert env.traffic is not None and env.traffic.steps[0].new == 55
    with pytest.raises(ValueError, match="weight 256 is above 255"):
        _env(traffic={"record": {"zone": "z", "name": "n"}, "steps": [{"old": 0, "new": 256}]})


def test_config_error_names_file_and_path(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text("environments:\n  prod:\n    cloud: azure\n    clusters: {old: {name: a}, new: {name: b}}\n")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert "m.yaml: environments.prod.cloud" in str(e.value)


@given(st.recursive(st.one_of(st.text(max_size=8), st.integers(), st.none()),
                    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=10), c, max_size=3)),
                    max_leaves=12))
def test_redact_is_idempotent(value: object) -> None:
    once = redact(value)
    assert redact(once) == once


def test_redact_secret_payloads_and_credential_shapes() -> None:
    secret = {"kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg==", "user": "YQ=="}}
    assert redact(secret)["data"] == {"password": REDACTED, "user": REDACTED}
    assert redact({"note": "key AKIAABCDEFGHIJKLMNOP here"}) == {"note": f"key {REDACTED} here"}
    assert redact({"author": "ada", "token": "x"}) == {"author": "ada", "token": REDACTED}


def test_journal_cuts_a_torn_tail_but_refuses_corruption(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.jsonl")
    j.append({"type": "run.started", "run": "r", "plan": {"digest": "d"}})
    with open(j.path, "ab") as f:
        f.write(b'{"type": "step.sta')  # a crash in the middle of a write
    assert [r["type"] for r in j.records()] == ["run.started"]
    j.append({"type": "run.completed", "run": "r"})
    assert [r["type"] for r in j.records()] == ["run.started", "run.completed"]
    assert fold(j.records())["r"].status == "completed"
    text = j.path.read_text().splitlines()
    j.path.write_text(text[0] + "\n{oops\n" + text[1] + "\n")
    with pytest.raises(JournalError, match="line 2"):
        j.records()


def test_traffic_default_steps_are_parsed_like_written_ones() -> None:
    # A traffic section without `steps` used the raw default list, which crashed later with AttributeError.
    t = Traffic.model_validate({"record": {"zone": "example.internal.", "name": "app.example.internal"}})
    assert [(s.old, s.new) for s in t.steps] == [(90, 10), (50, 50), (0, 100)]
