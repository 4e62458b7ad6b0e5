"""Plans, reviewed plans, promotion order, pauses, rollback, secrets and JSON events, end to end."""

from __future__ import annotations

import json
import os
import stat

from engine.kit import Project, env_block, hook, write_config


def _three_envs(project: Project, prod_extra_hooks: list[str] | None = None) -> None:
    write_config(project.root, [
        env_block("dev", [hook("d1"), hook("d2")]),
        env_block("staging", [hook("s1")], requires="[dev]"),
        env_block("prod", [hook("p1", extra="pause_after: true"), hook("p2"), *(prod_extra_hooks or [])],
                  requires="[staging]", review="required"),
    ])


def test_dry_run_writes_plan_and_changes_nothing_else(project: Project) -> None:
    _three_envs(project)
    before = project.snapshot()
    r = project.run("migrate", "--env", "dev", "--dry-run")
    assert r.returncode == 0, r.stderr
    after = project.snapshot()
    new = sorted(set(after) - set(before))
    assert len(new) == 2 and new[0].endswith(".plan.json") and new[1].endswith(".plan.md")
    assert all(after[k] == v for k, v in before.items())
    assert project.effects() == []
    assert not (project.root / ".migrate").exists()
    plan = json.loads(project.plans()[0].read_text())
    assert plan["env"] == "dev" and plan["format_version"] == 1 and plan["digest"].startswith("sha256:")
    assert [s["id"] for s in plan["steps"]] == ["01-hook-d1", "02-hook-d2", "03-write-report"]
    md = project.plans(".plan.md")[0].read_text()
    for heading in ("## Will be created", "## Will be changed", "## Will never be touched", "## Steps"):
        assert heading in md


def test_promotion_order_review_pause_continue(project: Project) -> None:
    _three_envs(project)
    assert project.run("migrate", "--env", "staging").returncode == 3
    assert project.run("migrate", "--env", "dev").returncode == 0
    assert project.run("migrate", "--env", "staging").returncode == 0
    # prod: only from a reviewed, current plan
    assert project.run("migrate", "--env", "prod").returncode == 3
    assert project.run("plan", "--env", "prod").returncode == 0
    plan = project.plans()[-1]
    digest = json.loads(plan.read_text())["digest"]
    r = project.run("migrate", "--env", "prod", "--plan", str(plan))
    assert r.returncode == 0, r.stderr
    assert "paused after 01-hook-p1" in r.stdout
    assert project.effects() == ["d1", "d2", "s1", "p1"]
    # paused: a plain re-run refuses, --continue goes on
    r = project.run("migrate", "--env", "prod", "--plan", str(plan))
    assert r.returncode == 3 and "--continue" in r.stderr
    r = project.run("migrate", "--env", "prod", "--continue")
    assert r.returncode == 0, r.stderr
    assert project.effects() == ["d1", "d2", "s1", "p1", "p2"]
    records = [json.loads(line) for line in (project.root / ".migrate/prod/journal.jsonl").read_text().splitlines()]
    approvals = [r for r in records if r["type"] == "approval"]
    assert len(approvals) == 1 and approvals[0]["plan_digest"] == digest and "@" in approvals[0]["by"]
    assert any(r["type"] == "run.continued" for r in records)


def test_rollback_undoes_in_reverse_and_partially(project: Project) -> None:
    write_config(project.root, [env_block("dev", [hook("a"), hook("b"), hook("c")])])
    assert project.run("migrate", "--env", "dev").returncode == 0
    r = project.run("rollback", "--env", "dev", "--to", "02-hook-b")
    assert r.returncode == 0, r.stderr
    assert project.effects() == ["a", "b", "c", "undo-c", "undo-b"]
    status = json.loads(project.run("status", "--env", "dev", "--json").stdout)[0]["runs"]["migrate"]
    assert status["status"] == "partly_rolled_back"
    # resuming re-applies only what was rolled back
    assert project.run("migrate", "--env", "dev").returncode == 0
    assert project.effects()[-2:] == ["b", "c"]
    assert project.run("rollback", "--env", "dev").returncode == 0
    assert project.effects()[-3:] == ["undo-c", "undo-b", "undo-a"]
    assert project.run("rollback", "--env", "dev").returncode == 2  # nothing left to roll back


def test_failed_step_stops_the_run_and_resume_retries_it(project: Project) -> None:
    flaky = hook("flaky", undo=False).replace(
        "run: [sh, -c, 'echo flaky >> effects.log && touch flaky.done']",
        "run: [sh, -c, 'test -f fixed || { echo not yet >&2; exit 3; }; "
        "echo flaky >> effects.log && touch flaky.done']",
    )
    write_config(project.root, [env_block("dev", [hook("a"), flaky, hook("b")])])
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 8 and "hook flaky exited with 3: not yet" in r.stderr
    assert project.effects() == ["a"]
    (project.root / "fixed").touch()
    assert project.run("migrate", "--env", "dev").returncode == 0
    assert project.effects() == ["a", "flaky", "b"]


def test_secrets_stay_out_of_plans_journal_and_events(project: Project) -> None:
    secret = "s3cr3t-value-9f8e7d"
    leaky = hook("notify", extra=f"env: {{API_TOKEN: {secret}, CHANNEL: ops}}").replace(
        "echo notify >> effects.log", f"[ ${{#API_TOKEN}} -eq {len(secret)} ] && echo notify >> effects.log")
    write_config(project.root, [env_block("dev", [leaky])])
    assert project.run("plan", "--env", "dev").returncode == 0
    r = project.run("migrate", "--env", "dev", "--json")
    assert r.returncode == 0, r.stderr
    assert project.effects() == ["notify"]  # the hook got the real value
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert {e["type"] for e in events} >= {"run.started", "step.started", "step.done", "run.completed"}
    written = [p for p in project.root.rglob("*") if p.is_file() and p.name != "migrate.yaml"]
    assert written
    for p in written:
        assert secret not in p.read_text(errors="replace"), p
    assert secret not in r.stdout + r.stderr
    journal = project.root / ".migrate/dev/journal.jsonl"
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600


def test_decommission_waits_for_a_completed_cutover_and_its_bake_time(project: Project) -> None:
    write_config(project.root, [env_block("dev", [hook("a")], extra="bake: 1h")])
    r = project.run("decommission", "--env", "dev")
    assert r.returncode == 3 and "needs a completed migration" in r.stderr
    assert project.run("migrate", "--env", "dev").returncode == 0
    before = project.snapshot()
    r = project.run("decommission", "--env", "dev")
    assert r.returncode == 3
    assert "bake time of 3600s has not passed" in r.stderr and "environments.dev.bake" in r.stderr
    assert project.snapshot() == before
    r = project.run("decommission", "--env", "dev", "--dry-run")
    assert r.returncode == 0, r.stderr
    md = sorted((project.root / "plans").glob("decommission-dev-*.plan.md"))
    assert md and "## Will be deleted" in md[0].read_text() and "cluster dev-blue" in md[0].read_text()
