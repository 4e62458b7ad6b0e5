"""The Terraform modules are real HCL: `terraform fmt -check` clean, parseable by python-hcl2, and every
variable or output the toolkit's configuration (or a stack) refers to exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from migrate.config import load_config

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "terraform-modules"
NAMED = ["eks-cluster", "gke-cluster", "temp-gateway", "weighted-dns"]


def _load(directory: Path) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for tf in sorted(directory.glob("*.tf")):
        with tf.open() as f:
            for k, v in hcl2.load(f).items():
                merged.setdefault(k, []).extend(v)
    return merged


def _names(doc: dict[str, list[Any]], block: str) -> set[str]:
    return {name.strip('"') for item in doc.get(block, []) for name in item}


def _configs() -> list[Path]:
    return [ROOT / "migrate.yaml", *sorted((ROOT / "examples").glob("*.yaml"))]


@pytest.mark.parametrize("name", NAMED)
def test_module_has_variables_outputs_and_readme(name: str) -> None:
    d = MODULES / name
    doc = _load(d)
    assert _names(doc, "variable") and _names(doc, "output")
    readme = (d / "README.md").read_text()
    for var in _names(doc, "variable"):
        assert var in readme, f"{name}: variable {var} is not documented"


def test_fmt_check_is_clean() -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is required (CI installs one)")
    r = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(MODULES)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stack_module_calls_use_existing_variables_and_outputs() -> None:
    for stack in sorted((MODULES / "stacks").iterdir()):
        doc = _load(stack)
        calls = {n.strip('"'): body for item in doc.get("module", []) for n, body in item.items()}
        text = "\n".join(p.read_text() for p in stack.glob("*.tf"))
        for call, body in calls.items():
            source = str(body["source"]).strip('"')
            mod = _load((stack / source).resolve())
            known = _names(mod, "variable")
            args = {k for k in body if not k.startswith("__")
                    and k not in ("source", "providers", "depends_on", "count", "for_each", "version")}
            assert args <= known, f"{stack.name}: module.{call} passes unknown variables {args - known}"
            outputs = _names(mod, "output")
            used = set(re.findall(rf"module\.{call}\.([A-Za-z0-9_]+)", text))
            assert used <= outputs, f"{stack.name}: module.{call} has no outputs {used - outputs}"


@pytest.mark.parametrize("config", _configs(), ids=lambda p: p.name)
def test_configured_variables_exist_in_the_root_module(config: Path) -> None:
    loaded = load_config(config)
    for name, env in loaded.config.environments.items():
        if env.terraform is None:
            continue
        root = loaded.resolve(env.terraform.root)
        if not root.exists():
            continue  # examples point at the team's own stack
        declared = _names(_load(root), "variable")
        unknown = set(env.terraform.variables) - declared
        assert not unknown, f"{config.name}: environments.{name}.terraform.variables {unknown} not in {root}"
