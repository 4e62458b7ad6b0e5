"""One run per environment: a second run is refused and told who holds the lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from engine.kit import Project, env_block, hook, write_config


def _blocking_hook() -> str:
    """A hook that waits for a file named ``go``: it keeps its run (and the run lock) alive."""
    return hook("wait", undo=False).replace(
        "run: [sh, -c, 'echo wait >> effects.log && touch wait.done']",
        "run: [sh, -c, 'echo wait >> effects.log; while [ ! -f go ]; do sleep 0.05; done; touch wait.done']",
    )


def _wait_for(project: Project, proc: subprocess.Popen[str], effect: str) -> None:
    deadline = time.monotonic() + 20
    while effect not in project.effects():
        assert time.monotonic() < deadline, f"the run never reached {effect}"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


def test_second_run_is_refused_and_names_the_holder(project: Project) -> None:
    write_config(project.root, [env_block("dev", [_blocking_hook(), hook("after")])])
    first = project.popen("migrate", "--env", "dev")
    try:
        _wait_for(project, first, "wait")
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
    write_config(project.root, [env_block("dev", [_blocking_hook(), hook("after")])])
    lock_file = project.root / ".migrate/dev/run.lock"
    first = project.popen("migrate", "--env", "dev")
    try:
        _wait_for(project, first, "wait")
        record = lock_file.read_text()
        held_id = json.loads(record)["ID"]
        # A wrong id is refused and names the held one.
        r = project.run("migrate", "--env", "dev", "--force-unlock", "not-the-id")
        assert r.returncode == 5, r.stderr
        assert "does not match the held lock" in r.stderr and held_id in r.stderr
        # The right id does not break a lock held by a live process on this host either.
        r = project.run("migrate", "--env", "dev", "--force-unlock", held_id)
        assert r.returncode == 5, r.stderr
        assert "held by a live process on this host" in r.stderr
        assert lock_file.read_text() == record  # untouched: same file, same holder
        r = project.run("migrate", "--env", "dev")
        assert r.returncode == 5 and held_id in r.stderr  # still locked
    finally:
        (project.root / "go").touch()
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0, err  # the live run was never disturbed
    assert project.effects() == ["wait", "after"]
    r = project.run("migrate", "--env", "dev", "--force-unlock", held_id)
    assert r.returncode == 5 and "not locked" in r.stderr


# Stands in for a run on another machine that holds the lock file on a shared filesystem and is gone
# for good: its flock is still held (here by this helper), and its record names the other host.
_FOREIGN_HOLDER = """
import fcntl, json, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, json.dumps({"ID": sys.argv[2], "Operation": "migrate", "Info": "env=dev pid=4242",
                         "Who": "ci@host-that-is-gone", "Version": "0.1.0",
                         "Created": "2024-01-01T00:00:00.000000Z", "Path": sys.argv[1]}).encode())
os.fsync(fd)
print("held", flush=True)
sys.stdin.read()
"""


def test_force_unlock_releases_a_stale_lock_only_by_its_id(project: Project) -> None:
    write_config(project.root, [env_block("dev", [hook("one")])])
    lock_file = project.root / ".migrate/dev/run.lock"
    lock_file.parent.mkdir(parents=True)
    stale_id = "8d6b0c3e-stale-lock"
    holder = subprocess.Popen([sys.executable, "-c", _FOREIGN_HOLDER, str(lock_file), stale_id],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = project.run("migrate", "--env", "dev")
        assert r.returncode == 5 and "ci@host-that-is-gone" in r.stderr and stale_id in r.stderr
        r = project.run("migrate", "--env", "dev", "--force-unlock", "8d6b0c3e")
        assert r.returncode == 5 and "does not match the held lock" in r.stderr
        assert project.run("migrate", "--env", "dev").returncode == 5  # a wrong id released nothing
        assert project.effects() == []
        r = project.run("migrate", "--env", "dev", "--force-unlock", stale_id)
        assert r.returncode == 0, r.stderr
        assert "released the run lock of dev" in r.stdout
        # Released: a run takes a fresh lock even though the gone holder never let go of the old file.
        r = project.run("migrate", "--env", "dev")
        assert r.returncode == 0, r.stderr
        assert project.effects() == ["one"]
        assert holder.poll() is None
    finally:
        holder.communicate(input="", timeout=10)
