"""Real-world Terraform inputs through the CLI, on a local backend: a root with two clusters (only the
named one is detached, and only it is planned for destruction), a resume over a copy swapped since it
was made, and the messages for bad states and plans. Each refusal: a clear error, the right exit code,
and no file written."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from terraform import shapes

from engine.kit import Project

SKIP = ("provision-cluster, wait-cluster-ready, write-kubeconfig, replay-workloads, wait-workloads-ready, "
        "open-gateway, validate, shift-traffic, protect-volumes")


def _config(project: Project, cluster: str, *, provisioner: str = "api", envs: tuple[str, ...] = ("dev",),
            extra: str = "") -> None:
    blocks = []
    for env in envs:
        blocks.append(f"""  {env}:
    cloud: aws
    aws: {{region: eu-west-1}}
    provisioner: {provisioner}
    terraform:
      root: stack
      backend: {{type: local, path: stack}}
      workspace: {env}
      new_workspace: {env}-green
{extra}    clusters: {{old: {{name: {cluster}}}, new: {{name: {cluster}-next}}}}
    skip: [{SKIP}]
""")
    (project.root / "migrate.yaml").write_text("version: 1\nenvironments:\n" + "".join(blocks))


def _stack(project: Project, shape: shapes.Shape, workspaces: tuple[str, ...] = ("dev",)) -> Path:
    root = project.root / "stack"
    root.mkdir(exist_ok=True)
    for name, text in shape.files.items():
        (root / name).write_text(text)
    for ws in workspaces:
        _write_state(root, ws, {**shape.state, "lineage": f"lineage-of-{ws}"})
    return root


def _state_path(root: Path, ws: str) -> Path:
    return root / "terraform.tfstate.d" / ws / "terraform.tfstate"


def _write_state(root: Path, ws: str, state: dict[str, Any] | bytes) -> None:
    path = _state_path(root, ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(state if isinstance(state, bytes) else json.dumps(state, indent=2).encode() + b"\n")


def _state_list(path: Path, tmp: Path) -> list[str]:
    """`terraform state list` of a state file, by the real binary (in an empty directory: no modules to load)."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform is required (CI installs one)")
    work = tmp / "state-list"
    work.mkdir(exist_ok=True)
    r = subprocess.run(["terraform", "state", "list", f"-state={path}"], cwd=work, capture_output=True, text=True,
                       check=False, env={"PATH": str(Path(shutil.which("terraform") or "").parent) + ":/usr/bin:/bin",
                                         "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "HOME": str(tmp)})
    assert r.returncode == 0, r.stderr
    return sorted(r.stdout.split())


def _journal(project: Project) -> bytes:
    path = project.root / ".migrate/dev/journal.jsonl"
    return path.read_bytes() if path.exists() else b""


# ---- one named cluster ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provisioner", ["api", "terraform"])
def test_two_cluster_root_detaches_and_destroys_only_the_named_cluster(project: Project, tmp_path: Path,
                                                                       provisioner: str) -> None:
    shape = shapes.two_clusters()
    root = _stack(project, shape)
    _config(project, shape.cluster_name, provisioner=provisioner)
    r = project.run("plan", "--env", "dev")
    assert r.returncode == 0, r.stderr
    plan = json.loads(project.plans()[-1].read_text())
    dup = next(s for s in plan["steps"] if s["kind"] == "duplicate-workspace")
    assert set(dup["params"]["exclude"]) == shape.cluster
    md = project.plans(".plan.md")[-1].read_text()
    assert "| `module.eks_al2023.aws_eks_cluster.this[0]` | cluster | cluster |" in md
    assert "| `module.eks_bottlerocket.aws_eks_cluster.this[0]` | shared | shared |" in md
    assert "Other clusters in this workspace, shared and untouched: " \
           "`module.eks_bottlerocket.aws_eks_cluster.this[0]` (ex-eks-mng-bottlerocket)" in md

    # The copy, as terraform itself lists it: everything but the named cluster's closure.
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _state_list(_state_path(root, "dev-green"), tmp_path) == sorted(shape.shared)
    assert _state_list(_state_path(root, "dev"), tmp_path) == sorted(shape.cluster | shape.shared)

    # The decommission plan destroys exactly that cluster's closure, never the other cluster, and hands
    # everything else (the other cluster included) to the copy.
    r = project.run("plan", "--env", "dev", "--decommission")
    assert r.returncode == 0, r.stderr
    decom = json.loads(next(p for p in project.plans() if p.name.startswith("decommission-")).read_text())
    destroy = next(s for s in decom["steps"] if s["kind"] == "destroy-old-cluster")
    assert set(destroy["params"]["addresses"]) == shape.cluster
    assert not any("bottlerocket" in a for a in destroy["params"]["addresses"])
    handover = next(s for s in decom["steps"] if s["kind"] == "handover-shared")
    assert set(handover["params"]["addresses"]) == {a for a in shape.shared if not a.startswith("data.")
                                                    and ".data." not in a}


def test_an_unknown_cluster_name_lists_the_clusters_found(project: Project) -> None:
    shape = shapes.two_clusters()
    _stack(project, shape)
    _config(project, "ex-eks-mng")
    before = project.snapshot()
    r = project.run("plan", "--env", "dev")
    assert r.returncode == 2, r.stderr
    assert "environments.dev.clusters.old.name: no cluster named 'ex-eks-mng'" in r.stderr
    assert "module.eks_al2023.aws_eks_cluster.this[0] (name 'ex-eks-mng-al2023')" in r.stderr
    assert "module.eks_bottlerocket.aws_eks_cluster.this[0] (name 'ex-eks-mng-bottlerocket')" in r.stderr
    assert "Traceback" not in r.stderr
    assert project.snapshot() == before and not (project.root / ".migrate").exists()


# ---- a resume checks the copy against the journal -------------------------------------------------------


def _killed_after_copy(project: Project) -> tuple[Path, shapes.Shape]:
    shape = shapes.two_clusters()
    root = _stack(project, shape)
    _config(project, shape.cluster_name)
    r = project.run("migrate", "--env", "dev", env={"MIGRATE_FAILPOINTS": "after-done:duplicate-workspace"})
    assert r.returncode != 0 and _state_path(root, "dev-green").exists()
    return root, shape


def _refused_without_writing(project: Project, root: Path, *fragments: str) -> None:
    journal, copy_bytes = _journal(project), _state_path(root, "dev-green").read_bytes()
    before = project.snapshot()
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 4, r.stdout + r.stderr
    for fragment in fragments:
        assert fragment in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert _journal(project) == journal  # not even a failure record
    assert _state_path(root, "dev-green").read_bytes() == copy_bytes
    assert project.snapshot() == before
    assert not (project.root / ".migrate/dev/run.lock").exists()


def test_resume_refuses_a_copy_overwritten_by_an_unrelated_state(project: Project) -> None:
    root, _ = _killed_after_copy(project)
    journaled = json.loads(next(line for line in _journal(project).decode().splitlines()
                                if '"step.done"' in line))["outputs"]["new_lineage"]
    gke = {**shapes.gke().state, "lineage": "lineage-of-a-gke-state"}
    _write_state(root, "dev-green", gke)
    _refused_without_writing(project, root, "workspace 'dev-green' holds a state of lineage lineage-of-a-gke-state",
                             f"(lineage {journaled})", "invoke rollback --env dev")


def test_resume_refuses_the_original_pushed_over_the_copy(project: Project) -> None:
    root, _ = _killed_after_copy(project)
    _write_state(root, "dev-green", _state_path(root, "dev").read_bytes())
    _refused_without_writing(project, root, "holds a state of lineage lineage-of-dev (the lineage of the original")


def test_resume_refuses_a_copy_whose_serial_went_back(project: Project) -> None:
    root, _ = _killed_after_copy(project)
    state = json.loads(_state_path(root, "dev-green").read_text())
    _write_state(root, "dev-green", {**state, "serial": state["serial"] - 1})
    _refused_without_writing(project, root, f"went back from {state['serial']} to {state['serial'] - 1}")


def test_resume_refuses_a_copy_that_is_gone(project: Project) -> None:
    root, _ = _killed_after_copy(project)
    _write_state(root, "dev-green", b"")
    _refused_without_writing(project, root, "no longer holds the copy this run made", "gone or empty")


def test_a_resume_over_an_intact_copy_goes_on(project: Project) -> None:
    _killed_after_copy(project)
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done in an earlier attempt" in r.stdout


# ---- messages for bad states and plans -----------------------------------------------------------------


def _bad_state(project: Project, body: bytes) -> subprocess.CompletedProcess[str]:
    shape = shapes.gke()
    root = _stack(project, shape)
    _write_state(root, "dev", body)
    _config(project, shape.cluster_name)
    before = project.snapshot()
    r = project.run("plan", "--env", "dev")
    assert project.snapshot() == before and not (project.root / ".migrate").exists()
    assert "Traceback" not in r.stderr
    return r


def test_a_plan_json_given_as_the_state(project: Project) -> None:
    body = json.dumps({"format_version": "1.2", "terraform_version": "1.9.8", "planned_values": {},
                       "resource_changes": []}).encode()
    r = _bad_state(project, body)
    assert r.returncode == 4, r.stderr
    assert "`terraform show -json` for a plan (format_version '1.2'), not a state file" in r.stderr
    assert "terraform.tfstate.d/dev/terraform.tfstate" in r.stderr and "terraform state pull" in r.stderr


def test_a_truncated_state(project: Project) -> None:
    body = json.dumps(shapes.gke().state, indent=2).encode()[:700]
    r = _bad_state(project, body)
    assert r.returncode == 4, r.stderr
    assert "at at" not in r.stderr and "truncated?" in r.stderr
    assert "restore the previous version" in r.stderr


def test_an_empty_state_file(project: Project) -> None:
    r = _bad_state(project, b"")
    assert r.returncode == 4, r.stderr
    assert "the state of workspace 'dev' is empty" in r.stderr


def test_a_stale_plan_is_refused_and_leaves_no_lock(project: Project) -> None:
    shape = shapes.gke()
    root = _stack(project, shape)
    _config(project, shape.cluster_name)
    assert project.run("plan", "--env", "dev").returncode == 0
    plan = project.plans()[-1]
    state = json.loads(_state_path(root, "dev").read_text())
    _write_state(root, "dev", {**state, "serial": state["serial"] + 1})
    r = project.run("migrate", "--env", "dev", "--plan", str(plan))
    assert r.returncode == 3, r.stderr
    assert "the plan is stale" in r.stderr
    assert not (project.root / ".migrate").exists()  # no run.lock, no state directory left behind


def test_a_state_from_a_newer_terraform_is_flagged(project: Project) -> None:
    shape = shapes.gke()
    state = copy.deepcopy(shape.state)
    state["terraform_version"] = "9.1.0"
    root = _stack(project, shapes.Shape(state, shape.files, shape.cluster_name, shape.cluster, shape.shared))
    _write_state(root, "dev", {**state, "lineage": "lineage-of-dev"})
    _config(project, shape.cluster_name)
    r = project.run("plan", "--env", "dev")
    assert r.returncode == 0, r.stderr
    warning = "was written by Terraform 9.1.0, newer than the terraform binary on PATH"
    assert warning in project.plans(".plan.md")[-1].read_text()
    r = project.run("migrate", "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert f"warning: the state of workspace 'dev' {warning}" in r.stdout


def test_a_plan_for_another_environment_is_refused_before_the_journal_is_read(project: Project) -> None:
    shape = shapes.gke()
    _stack(project, shape, workspaces=("staging", "prod"))
    _config(project, shape.cluster_name, envs=("staging", "prod"))
    assert project.run("plan", "--env", "prod").returncode == 0
    prod_plan = project.plans()[-1]
    assert project.run("plan", "--env", "staging").returncode == 0
    staging_plan = next(p for p in project.plans() if p.name.startswith("staging-"))
    r = project.run("migrate", "--env", "staging")
    assert r.returncode == 0, r.stderr  # staging completed
    r = project.run("migrate", "--env", "staging", "--plan", str(prod_plan))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "this plan was made for environment 'prod', not 'staging'" in r.stderr
    assert "nothing to do" not in r.stdout
    # A staging plan made before the completed run is stale now, not "nothing to do".
    r = project.run("migrate", "--env", "staging", "--plan", str(staging_plan))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "the plan is stale" in r.stderr and "nothing to do" not in r.stdout
    tampered = json.loads(prod_plan.read_text())
    tampered["steps"][0]["title"] = "something else"
    prod_plan.write_text(json.dumps(tampered))
    r = project.run("migrate", "--env", "staging", "--plan", str(prod_plan))
    assert r.returncode == 3 and "digest does not match" in r.stderr, r.stderr
