"""Replay tests: two real emulators (old and new) per test, the real official client, no mocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.kube.client import KubeClient
from replay.kit import NEW_NAME, OLD_NAME, Cluster


@pytest.fixture
def old(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(OLD_NAME, tmp_path / "old.kubeconfig")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def new(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(NEW_NAME, tmp_path / "new.kubeconfig")
    try:
        yield c
    finally:
        c.stop()


def client(c: Cluster, qps: float | None = 2000) -> KubeClient:
    # Tests raise the rate limit so the suite stays fast; test_client checks the limiter itself.
    return KubeClient.from_kubeconfig(str(c.kubeconfig), c.name, qps=qps, backoff=0.05)


@pytest.fixture
def kold(old: Cluster) -> Iterator[KubeClient]:
    with client(old) as k:
        yield k


@pytest.fixture
def knew(new: Cluster) -> Iterator[KubeClient]:
    with client(new) as k:
        yield k
