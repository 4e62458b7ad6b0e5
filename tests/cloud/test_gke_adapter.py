"""The GKE adapter (migrate.cloud.gcp.gke, GcpClusters) against the project's GKE REST emulator, in process.

google-cloud-container talks REST to the emulator exactly as to GKE: no mocks. The emulator runs one
operation per cluster (FAILED_PRECONDITION otherwise) and its ``gke_create_error`` fault makes a create fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import container_v1

from migrate.cloud.clusters import GcpClusters
from migrate.cloud.gcp.gke import Gke, GkeClusterSpec, NodePoolSpec, precondition_failed
from migrate.config import Environment, GcpTarget
from migrate.errors import ProviderError
from migrate.sandbox.clusters import ClusterRegistry
from migrate.sandbox.faults import SandboxFaults
from migrate.sandbox.gke import GkeEmulator

PROJECT, LOCATION = "test-project", "europe-west1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[GkeEmulator]:
    (tmp_path / "kubeconfigs").mkdir()
    registry = ClusterRegistry(SandboxFaults(), tmp_path / "kubeconfigs", controller_delay=0.05)
    emu = GkeEmulator(registry, provision_delay=0.3).start()
    try:
        yield emu
    finally:
        emu.stop()
        registry.stop_all()


@pytest.fixture
def gke(emulator: GkeEmulator) -> Gke:
    return Gke(GcpTarget(project=PROJECT, location=LOCATION, endpoint=emulator.url), poll_interval=0.05)


@pytest.fixture
def raw(emulator: GkeEmulator) -> container_v1.ClusterManagerClient:
    return container_v1.ClusterManagerClient(credentials=AnonymousCredentials(), transport="rest",
                                             client_options={"api_endpoint": emulator.url})


def spec(name: str = "green", pools: tuple[str, ...] = ("pool-a",), channel: str | None = None) -> GkeClusterSpec:
    return GkeClusterSpec(name=name, version="1.31", network=None, subnetwork=None,
                          node_pools=[NodePoolSpec(p, "e2-standard-4", 1) for p in pools], release_channel=channel,
                          labels={"migrate-replaces": "blue"})


def wait_done(gke: Gke, op: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not gke.operation_done(op)[0]:
        assert time.monotonic() < deadline, f"operation {op} never finished"
        time.sleep(0.05)


def environment(emulator: GkeEmulator, ready_timeout: str = "10s") -> Environment:
    return Environment.model_validate({
        "cloud": "gcp", "gcp": {"project": PROJECT, "location": LOCATION, "endpoint": emulator.url},
        "clusters": {"old": {"name": "blue"}, "new": {"name": "green", "ready_timeout": ready_timeout}},
        "skip": ["open-gateway", "shift-traffic"]})


def test_release_channel_reaches_gke_and_is_copied_from_the_old_cluster(gke: Gke) -> None:
    wait_done(gke, str(gke.create(spec("blue", channel="REGULAR"))))
    assert gke.get("blue").release_channel.channel == container_v1.ReleaseChannel.Channel.REGULAR
    copied = gke.spec_from_old("blue", "green", None, None)
    assert copied.release_channel == "REGULAR"
    wait_done(gke, str(gke.create(copied)))
    assert gke.get("green").release_channel.channel == container_v1.ReleaseChannel.Channel.REGULAR


def test_delete_while_the_create_operation_runs_waits_for_it_then_deletes(
        gke: Gke, raw: container_v1.ClusterManagerClient, emulator: GkeEmulator) -> None:
    emulator.provision_delay = 1.0
    t0 = time.monotonic()
    gke.create(spec())
    with pytest.raises(gexc.BadRequest) as refused:  # what GKE answers, and what the adapter must wait out
        raw.delete_cluster(name=f"{PARENT}/clusters/green")
    assert precondition_failed(refused.value) and "incompatible operation" in str(refused.value)
    op = gke.delete(spec())
    assert op and time.monotonic() - t0 >= 0.9  # sent only once the create had finished
    wait_done(gke, op)
    assert gke.get("green") is None


def test_delete_of_a_cluster_that_stays_busy_times_out_retryably(gke: Gke, emulator: GkeEmulator) -> None:
    emulator.provision_delay = 30.0
    gke.create(spec())
    with pytest.raises(ProviderError) as err:
        gke.delete(spec(), timeout=0.5)
    assert err.value.retryable
    assert "timed out" in err.value.what and "busy with another operation" in err.value.what


def test_failed_create_is_reported_at_once_with_gkes_reason(gke: Gke, emulator: GkeEmulator) -> None:
    emulator.registry.faults.add("gke_create_error", {"cluster": "green"})
    provider = GcpClusters(environment(emulator))
    provider.gke = gke
    started = provider.create(spec().to_dict())
    assert started["operation"]
    time.sleep(0.4)  # the operation ends, DONE with an error
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as err:
        provider.readiness(spec().to_dict())
    assert time.monotonic() - t0 < 5 and not err.value.retryable
    text = str(err.value)
    assert "CREATE_CLUSTER" in text and "cluster green failed" in text and "Insufficient regional quota" in text
    # Without the operation (a resumed run): the cluster's ERROR status and statusMessage say it.
    st = gke.status(spec())
    assert st.status == "ERROR"
    assert st.failures == [f"GKE cluster green is ERROR: {emulator.registry.faults.gke_create[0].message}"]
    with pytest.raises(ProviderError, match="is ERROR: Insufficient regional quota"):
        GcpClusters(environment(emulator)).readiness(spec().to_dict())
    wait_done(gke, str(gke.delete(spec())))
    assert gke.get("green") is None


def test_a_missing_node_pool_is_created_on_readiness(gke: Gke, raw: container_v1.ClusterManagerClient,
                                                     emulator: GkeEmulator) -> None:
    """A run resumed after the cluster came up with one pool only (or a pool deleted by hand): repaired."""
    wait_done(gke, str(gke.create(spec(pools=("pool-a",)))))
    want = spec(pools=("pool-a", "pool-b", "pool-c")).to_dict()
    provider = GcpClusters(environment(emulator))
    provider.gke = gke
    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + 15
    while not (ready := provider.readiness(want)).active:
        assert time.monotonic() < deadline, ready.cloud_missing
        seen.append(gke.status(GkeClusterSpec.from_dict(want)).node_pools)
        time.sleep(0.05)
    pools = {p.name: p.status.name for p in raw.list_node_pools(parent=f"{PARENT}/clusters/green").node_pools}
    assert pools == {"pool-a": "RUNNING", "pool-b": "RUNNING", "pool-c": "RUNNING"}
    # One operation at a time, as GKE allows: never two pools provisioning at once.
    assert all(sum(s == "PROVISIONING" for s in st.values()) <= 1 for st in seen)
    emu_cluster: Any = emulator.registry.get("green")
    cfg = kubernetes.client.Configuration()
    cfg.host = emu_cluster.api.url
    nodes = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg)).list_node().items
    pool_of = [n.metadata.labels.get("cloud.google.com/gke-nodepool") for n in nodes]  # the emulator has its own
    assert sorted(p for p in pool_of if p) == ["pool-a", "pool-b", "pool-c"]  # the new pools' kubelets joined
