"""The sandbox daemon: one process holding the whole emulated cloud until it is stopped.

Everything runs as threads of this process (moto, the API emulators, data planes, GKE, GCS, router,
control API), so stopping the process leaves nothing behind. The endpoints file is written atomically
once everything is up and seeded, and rewritten when clusters come and go.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .aws import ACCOUNT_ID, REGION, AwsHooks, Moto
from .blockstore import BlockStore, EbsHooks, ebs_deprovisioner, ebs_provisioner, ebs_snapshotter
from .clusters import ClusterRegistry
from .compute import pd_provisioner
from .control import Control
from .faults import SandboxFaults
from .gateway import GatewayProxy
from .gcs import Gcs
from .gke import GkeEmulator
from .layout import ENDPOINTS_VERSION, Layout, write_json_atomic
from .router import TrafficRouter
from .seed import cloud as seed

GCP_PROJECT = "sandbox-project"
GCP_LOCATION = "us-central1"
log = logging.getLogger("migrate.sandbox")


class Sandbox:
    def __init__(self, layout: Layout, seed_envs: tuple[str, ...] = seed.ENVIRONMENTS) -> None:
        self.layout = layout.ensure()
        self.seed_envs = seed_envs
        self.faults = SandboxFaults()
        self.registry = ClusterRegistry(self.faults, layout.kubeconfigs)
        self.blocks = BlockStore(layout.root / "blocks")
        self.registry.blocks = self.blocks
        self.registry.ebs_provisioner = ebs_provisioner(self.blocks, ACCOUNT_ID, REGION)
        self.registry.ebs_deprovisioner = ebs_deprovisioner(ACCOUNT_ID, REGION)
        self.registry.ebs_snapshotter = ebs_snapshotter(ACCOUNT_ID, REGION)
        self.ebs = EbsHooks(self.blocks, self.faults)
        self.moto = Moto()
        self.gateways = GatewayProxy(self.registry)
        self.hooks = AwsHooks(self.registry, self.faults, self.gateways.open, self.gateways.close)
        self.gcs = Gcs()
        self.gke = GkeEmulator(self.registry)
        if self.gke.compute is not None:
            self.registry.pd_provisioner = pd_provisioner(self.gke.compute, GCP_PROJECT, GCP_LOCATION)
        self.router: TrafficRouter | None = None
        self.control: Control | None = None
        self.environments: dict[str, Any] = {}
        self.started = time.time()
        self.ready_s: float | None = None
        self.stopped = threading.Event()

    def start(self) -> None:
        self.hooks.install()
        self.ebs.install()
        self.moto.start()
        self.gcs.start()
        self.gke.start()
        self.router = TrafficRouter(self.registry, self.moto.url, REGION).start()
        self.control = Control(self.registry, self.faults, self.router.url, self.stopped.set).start()
        self._seed()
        self.ready_s = round(time.time() - self.started, 3)
        self.write_endpoints()
        self.registry.on_change.append(self.write_endpoints)

    def _seed(self) -> None:
        aws = seed.Aws.connect(self.moto.url, REGION)
        zone_id = seed.seed_shared(aws)
        infra = {env: seed.create_infrastructure(aws, env, i + 1) for i, env in enumerate(self.seed_envs)}
        for env in self.seed_envs:
            seed.seed_workloads(self.registry, env)
        for env in self.seed_envs:
            lb = seed.ingress_hostname(self.registry, f"{env}-blue")
            traffic = seed.seed_traffic(aws, zone_id, env, lb)
            key = seed.write_state(aws, env, seed.build_state(env, zone_id, infra[env], traffic, lb).dumps())
            self.environments[env] = {
                "record": seed.record_name(env), "zone": seed.ZONE, "zone_id": zone_id, "ttl": seed.RECORD_TTL,
                "old_cluster": f"{env}-blue", "new_cluster": f"{env}-green", "ingress_hostname": lb,
                "prod_api": {"id": traffic["api"]["ApiId"], "endpoint": traffic["api"]["ApiEndpoint"]},
                "state": {"bucket": seed.BUCKET, "key": key, "dynamodb_table": seed.LOCK_TABLE, "workspace": env}}

    def endpoints(self) -> dict[str, Any]:
        assert self.router is not None and self.control is not None
        return {
            "version": ENDPOINTS_VERSION, "pid": os.getpid(),
            "started_at": datetime.fromtimestamp(self.started, UTC).isoformat(), "ready_s": self.ready_s,
            "state_dir": str(self.layout.root.resolve()), "log": str(self.layout.log.resolve()),
            "aws": {"endpoint_url": self.moto.url, "region": REGION, "account_id": ACCOUNT_ID,
                    "access_key_id": "testing", "secret_access_key": "testing"},
            "gcp": {"project": GCP_PROJECT, "location": GCP_LOCATION, "container_endpoint": self.gke.url,
                    "cluster_scheme": "http", "storage_emulator_host": self.gcs.url,
                    "storage_bucket": "sandbox-tfstate"},
            "control_url": self.control.url, "router_url": self.router.url,
            "clusters": {c.name: c.info() for c in self.registry.all()},
            "environments": self.environments,
        }

    def write_endpoints(self) -> None:
        if not self.stopped.is_set():
            write_json_atomic(self.layout.endpoints, self.endpoints())

    def stop(self) -> None:
        self.stopped.set()
        self.layout.endpoints.unlink(missing_ok=True)  # first: nobody must find a stopping sandbox
        for part in (self.control, self.router, self.gke, self.gcs):
            if part is not None:
                _quietly(part.stop)
        _quietly(self.gateways.close_all)
        _quietly(self.registry.stop_all)
        _quietly(self.moto.stop)
        self.hooks.uninstall()
        self.ebs.uninstall()


def _quietly(fn: Any) -> None:
    try:
        fn()
    except Exception:  # shutdown goes on: every part must get its stop call
        log.exception("while stopping")


def run(state_dir: Path) -> int:
    """Entry point of the background process (`python -m migrate.sandbox daemon`)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log would flood the file
    layout = Layout(state_dir).ensure()
    layout.pid.write_text(f"{os.getpid()}\n")
    box = Sandbox(layout)
    signal.signal(signal.SIGTERM, lambda *_: box.stopped.set())
    signal.signal(signal.SIGINT, lambda *_: box.stopped.set())
    try:
        box.start()
        log.info("sandbox ready in %.2fs: %s", box.ready_s, layout.endpoints)
        while not box.stopped.wait(0.5):
            pass
        log.info("stopping")
        return 0
    except Exception:
        log.exception("the sandbox failed")
        return 1
    finally:
        box.stop()
        try:
            if layout.pid.read_text().strip() == str(os.getpid()):
                layout.pid.unlink()
        except OSError:
            pass
        log.info("stopped")
