"""Every shipped example loads and passes config validation, including the check that an environment which
calls AWS (temporary gateway, Route 53, the production API) has an AWS region to call it in."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from migrate.config import load_config
from migrate.errors import ConfigError

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"aws.yaml", "gcp.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    loaded = load_config(path)
    for name, env in loaded.config.environments.items():
        uses_aws = (env.traffic is not None and "shift-traffic" not in env.skip) or (
            env.gateway.enabled and not env.gateway.url)
        assert not uses_aws or env.aws is not None or env.gateway.region, f"{path.name}: {name}"


def _gke_env(gateway: dict[str, object], **extra: object) -> dict[str, object]:
    return {"cloud": "gcp", "gcp": {"project": "p", "location": "europe-west1"},
            "clusters": {"old": {"name": "blue"}, "new": {"name": "green"}}, "gateway": gateway,
            "traffic": {"router": "route53", "record": {"zone": "acme.example", "name": "app.acme.example"},
                        "steps": [10, 100]},
            **extra}


def _load(tmp_path: Path, env: dict[str, object]) -> None:
    path = tmp_path / "migrate.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "environments": {"dev": env}}))
    load_config(path)


def test_route53_without_an_aws_region_is_refused_at_load_time(tmp_path: Path) -> None:
    # What examples/gcp.yaml used to say: it failed only at the validate step, after the cluster was built.
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, _gke_env({"enabled": False}))
    assert "migrate.yaml: environments.dev: gateway.region: missing" in str(e.value)
    assert "the route53 router uses AWS" in str(e.value)
    with pytest.raises(ConfigError, match="the route53 router and the temporary gateway use AWS"):
        _load(tmp_path, _gke_env({}))


def test_an_aws_region_for_a_gke_environment_is_enough(tmp_path: Path) -> None:
    _load(tmp_path, _gke_env({"region": "eu-west-1"}))
    _load(tmp_path, _gke_env({"enabled": False}, aws={"region": "eu-west-1"}))
    # Nothing of AWS is used: no region needed.
    _load(tmp_path, _gke_env({"url": "https://green.acme.example"}, skip=["shift-traffic"]))
