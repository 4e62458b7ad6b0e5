"""Engine tests run the real CLI (`python -m migrate`) in a temporary project.

The environments skip the cloud steps and use operator hooks instead: real
commands that write files, so every side effect can be counted.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CLOUD_KINDS = [
    "duplicate-workspace", "detach-cluster", "provision-cluster", "wait-cluster-ready", "write-kubeconfig",
    "replay-workloads", "wait-workloads-ready", "open-gateway", "validate", "shift-traffic", "protect-volumes",
]


def hook(name: str, *, check: bool = True, undo: bool = True, extra: str = "") -> str:
    """A hook that appends its name to effects.log once and leaves a marker file."""
    lines = [
        f"      - name: {name}",
        f"        run: [sh, -c, 'echo {name} >> effects.log && touch {name}.done']",
    ]
    if check:
        lines.append(f"        check: [test, -f, {name}.done]")
    if undo:
        lines.append(f"        undo: [sh, -c, 'echo undo-{name} >> effects.log && rm -f {name}.done']")
    if extra:
        lines.append(textwrap.indent(textwrap.dedent(extra).strip(), "        "))
    return "\n".join(lines)


def env_block(name: str, hooks: list[str], *, requires: str = "[]", review: str = "none",
              extra: str = "") -> str:
    skip = ", ".join(CLOUD_KINDS)
    body = f"""  {name}:
    cloud: aws
    aws: {{region: us-east-1}}
    clusters: {{old: {{name: {name}-blue}}, new: {{name: {name}-green}}}}
    skip: [{skip}]
    requires: {requires}
    review: {review}
    hooks:
{chr(10).join(hooks)}
"""
    if extra:
        body += textwrap.indent(textwrap.dedent(extra).strip(), "    ") + "\n"
    return body


def write_config(root: Path, envs: list[str], header: str = "") -> Path:
    path = root / "migrate.yaml"
    path.write_text("version: 1\n" + header + "environments:\n" + "".join(envs))
    return path


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        inherited = {k: v for k, v in os.environ.items() if k != "MIGRATE_FAILPOINTS"}
        full_env = {**inherited, "COLUMNS": "200", **(env or {})}
        return subprocess.run([sys.executable, "-m", "migrate", *args], cwd=self.root, env=full_env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "migrate", *args], cwd=self.root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def effects(self) -> list[str]:
        log = self.root / "effects.log"
        return log.read_text().split() if log.exists() else []

    def snapshot(self) -> dict[str, str]:
        """Every file under the project with a hash of its content: to prove nothing changed."""
        out = {}
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and p.name != "run.lock":  # the lock file's record is bookkeeping
                out[str(p.relative_to(self.root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        return out

    def plans(self, suffix: str = ".plan.json") -> list[Path]:
        d = self.root / "plans"
        return sorted(d.glob(f"*{suffix}")) if d.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
