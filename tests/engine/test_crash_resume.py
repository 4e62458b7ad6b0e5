"""kill -9 at every step boundary, resume, and count side effects: each happens exactly once."""

from __future__ import annotations

import json
import signal

import pytest

from engine.kit import Project, env_block, hook, write_config

HOOKS = ["one", "two", "three"]
STEP_IDS = ["01-hook-one", "02-hook-two", "03-hook-three", "04-hook-py", "05-write-report"]


def _setup(project: Project) -> None:
    py = hook("py", check=True, undo=False).replace(
        "run: [sh, -c, 'echo py >> effects.log && touch py.done']",
        "run: [python3, -c, \"import pathlib; p = pathlib.Path('effects.log'); "
        "p.write_text((p.read_text() if p.exists() else '') + 'py\\\\n'); pathlib.Path('py.done').touch()\"]",
    )
    write_config(project.root, [env_block("dev", [*(hook(h) for h in HOOKS), py])])


def _assert_complete_once(project: Project) -> None:
    assert project.effects() == ["one", "two", "three", "py"]
    status = json.loads(project.run("status", "--env", "dev", "--json").stdout)[0]
    run = status["runs"]["migrate"]
    assert run["status"] == "completed"
    assert [s["status"] for s in run["steps"]] == ["done"] * len(STEP_IDS)
    assert [s["id"] for s in run["steps"]] == STEP_IDS
    assert list((project.root / "plans").glob("dev-*.report.md"))


def test_full_run_without_faults(project: Project) -> None:
    _setup(project)
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stderr
    _assert_complete_once(project)
    # A second run is a no-op, not a repeat.
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0 and "nothing to do" in r.stdout
    assert project.effects() == ["one", "two", "three", "py"]


@pytest.mark.parametrize("point", ["after-start", "after-done"])
@pytest.mark.parametrize("step", STEP_IDS)
def test_kill_at_step_boundary_then_resume(project: Project, step: str, point: str) -> None:
    _setup(project)
    r = project.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": f"{point}:{step}"})
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    idx = STEP_IDS.index(step)
    # The effects before the kill are exactly the hooks that ran.
    expected_before = ["one", "two", "three", "py"][: idx + (1 if point == "after-done" else 0)]
    assert project.effects() == expected_before
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert "resuming run" in r.stdout
    _assert_complete_once(project)


def test_kill_inside_a_step_after_its_effect(project: Project) -> None:
    """The hook itself kills migrate after doing its work: resume must see it done, not redo it."""
    killer = hook("two", undo=False).replace("touch two.done'", "touch two.done && kill -9 $PPID'")
    write_config(project.root, [env_block("dev", [hook("one"), killer, hook("three")])])
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == -signal.SIGKILL
    assert project.effects() == ["one", "two"]
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert project.effects() == ["one", "two", "three"]
    assert "already in place" in r.stdout


def test_interrupted_hook_without_check_is_not_rerun_blindly(project: Project) -> None:
    blind = hook("two", check=False, undo=False).replace("touch two.done'", "touch two.done && kill -9 $PPID'")
    write_config(project.root, [env_block("dev", [hook("one"), blind, hook("three")])])
    assert project.run("migrate", "--env", "dev").returncode == -signal.SIGKILL
    before = project.snapshot()
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 8
    assert "interrupted and its effect cannot be verified" in r.stderr
    assert "--assume-done 02-hook-two" in r.stderr
    assert project.effects() == ["one", "two"]
    assert {k: v for k, v in project.snapshot().items() if "journal" not in k} == {
        k: v for k, v in before.items() if "journal" not in k}
    r = project.run("migrate", "--env", "dev", "--assume-done", "02-hook-two")
    assert r.returncode == 0, r.stderr
    assert project.effects() == ["one", "two", "three"]
