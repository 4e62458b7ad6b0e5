"""One run per environment: a second run is refused and told who holds the lock."""

from __future__ import annotations

import json
import time

from engine.kit import Project, env_block, hook, write_config


def test_second_run_is_refused_and_names_the_holder(project: Project) -> None:
    wait = hook("wait", undo=False).replace(
        "run: [sh, -c, 'echo wait >> effects.log && touch wait.done']",
        "run: [sh, -c, 'echo wait >> effects.log; while [ ! -f go ]; do sleep 0.05; done; touch wait.done']",
    )
    write_config(project.root, [env_block("dev", [wait, hook("after")])])
    first = project.popen("migrate", "--env", "dev")
    try:
        deadline = time.monotonic() + 20
        while "wait" not in project.effects():
            assert time.monotonic() < deadline, "first run never reached its hook"
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        before = project.snapshot()
        second = project.run("migrate", "--env", "dev")
        assert second.returncode == 5
        assert "is locked by" in second.stderr
        holder = json.loads((project.root / ".migrate/dev/run.lock").read_text())
        assert holder["Who"] in second.stderr and holder["ID"] in second.stderr
        assert holder["Operation"] == "migrate"
        assert project.snapshot() == before  # the refused run changed nothing
        # status shows the holder too
        status = json.loads(project.run("status", "--env", "dev", "--json").stdout)[0]
        assert status["lock"]["ID"] == holder["ID"]
        # a rollback is refused the same way
        assert project.run("rollback", "--env", "dev").returncode == 5
    finally:
        (project.root / "go").touch()
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert project.effects() == ["wait", "after"]
    # Released: the next command takes the lock without trouble.
    assert project.run("migrate", "--env", "dev").returncode == 0


def test_force_unlock_needs_the_right_id_and_never_breaks_a_live_lock(project: Project) -> None:
    write_config(project.root, [env_block("dev", [hook("one")])])
    r = project.run("migrate", "--env", "dev", "--force-unlock", "nope")
    assert r.returncode == 5 and "not locked" in r.stderr
