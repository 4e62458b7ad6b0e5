"""Helpers for the traffic tests: a sandbox environment with its new (green) cluster, and an engine Context."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import yaml

from migrate.config import load_config
from migrate.kube.client import KubeClient
from migrate.plan.model import Fingerprint, Plan, Step
from migrate.run.events import CollectingReporter
from migrate.run.executor import Executor
from migrate.run.journal import Journal
from migrate.sandbox import lifecycle
from migrate.sandbox.seed import workloads
from migrate.steps.base import Context

KUBECONFIG_STEP = "05-write-kubeconfig"
GATEWAY_STEP = "08-open-gateway"
Endpoints = dict[str, Any]


def aws(endpoints: Endpoints, service: str) -> Any:
    a = endpoints["aws"]
    return boto3.client(service, endpoint_url=a["endpoint_url"], region_name=a["region"],  # type: ignore
                        aws_access_key_id=a["access_key_id"], aws_secret_access_key=a["secret_access_key"])


def wait_for(cond: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def green_manifests(env: str) -> list[dict[str, Any]]:
    """What a replay brings over for the public path: ingress controller, frontend, api, Ingress."""
    keep = {"Namespace", "ServiceAccount", "Deployment", "Service", "Ingress", "IngressClass", "ConfigMap", "Secret"}
    return [o for o in workloads.ingress_controller() + workloads.shop(env, f"{env}-green") if o["kind"] in keep]


def kubeconfig_of(endpoints: Endpoints, cluster: str) -> Path:
    def path() -> str | None:
        eps = json.loads(Path(endpoints["state_dir"], "endpoints.json").read_text())
        return (eps["clusters"].get(cluster) or {}).get("kubeconfig")
    return Path(wait_for(path, what=f"a kubeconfig for {cluster}"))


def merged_kubeconfig(parts: list[Path], out: Path) -> Path:
    docs = [yaml.safe_load(p.read_text()) for p in parts]
    merged = {"apiVersion": "v1", "kind": "Config", "preferences": {},
              "clusters": [c for d in docs for c in d["clusters"]], "users": [u for d in docs for u in d["users"]],
              "contexts": [c for d in docs for c in d["contexts"]], "current-context": docs[0]["current-context"]}
    out.write_text(yaml.safe_dump(merged))
    out.chmod(0o600)
    return out


def start_green(endpoints: Endpoints, env: str) -> Path:
    """Create <env>-green with boto3 (the sandbox starts its emulator), apply the public path's workloads, wait
    until its ingress LoadBalancer has a hostname and its data plane answers; returns the kubeconfig for both."""
    eks = aws(endpoints, "eks")
    blue = eks.describe_cluster(name=f"{env}-blue")["cluster"]
    eks.create_cluster(name=f"{env}-green", version="1.31", roleArn=blue["roleArn"],
                       resourcesVpcConfig={"subnetIds": blue["resourcesVpcConfig"]["subnetIds"]})
    green_cfg = kubeconfig_of(endpoints, f"{env}-green")
    ctx_name = yaml.safe_load(green_cfg.read_text())["current-context"]
    with KubeClient.from_kubeconfig(str(green_cfg), ctx_name, qps=None) as kube:
        for obj in green_manifests(env):
            api = f"/api/{obj['apiVersion']}" if "/" not in obj["apiVersion"] else f"/apis/{obj['apiVersion']}"
            ns = obj["metadata"].get("namespace")
            plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Deployment": "deployments",
                      "Service": "services", "Ingress": "ingresses", "IngressClass": "ingressclasses",
                      "ConfigMap": "configmaps", "Secret": "secrets"}[obj["kind"]]
            kube.request("POST", f"{api}/namespaces/{ns}/{plural}" if ns else f"{api}/{plural}", body=obj)

        def lb() -> str | None:
            svc = kube.request("GET", f"/api/v1/namespaces/{workloads.INGRESS_NAMESPACE}/services/"
                                      f"{workloads.INGRESS_SERVICE}")
            ing = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            return ing[0].get("hostname") if ing else None
        wait_for(lb, what="a LoadBalancer hostname on the new cluster")
    out = green_cfg.parent / f"{env}-both.yaml"
    return merged_kubeconfig([kubeconfig_of(endpoints, f"{env}-blue"), green_cfg], out)


def contexts_of(kubeconfig: Path) -> list[str]:
    return [c["name"] for c in yaml.safe_load(kubeconfig.read_text())["contexts"]]


def write_config(root: Path, env: str, endpoints: Endpoints, traffic: dict[str, Any],
                 validation: dict[str, Any] | None = None) -> Path:
    e = endpoints["environments"][env]
    cfg = {"cloud": "aws", "aws": {"region": endpoints["aws"]["region"]},
           "clusters": {"old": {"name": f"{env}-blue"}, "new": {"name": f"{env}-green"}},
           "traffic": {"router": "route53", "record": {"zone": e["zone"], "name": e["record"], "ttl": 2,
                                                       "old_set_id": "blue", "new_set_id": "green"},
                       "backend_header": "X-Sandbox-Cluster", **traffic},
           "validation": validation or {}}
    path = root / "migrate.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "plans_dir": "plans", "environments": {env: cfg}}))
    return path


def context(config: Path, env: str, kubeconfig: Path, log: list[str] | None = None,
            run_id: str = "test-run") -> Context:
    loaded = load_config(config)
    workdir = config.parent / ".migrate" / env
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    sink = log if log is not None else []
    names = contexts_of(kubeconfig)
    old = next(n for n in names if "blue" in n)
    new = next(n for n in names if "green" in n)

    def say(msg: str) -> None:
        sink.append(msg)
        print(msg)
    return Context(loaded=loaded, env_name=env, env=loaded.env(env), workdir=workdir, run_id=run_id,
                   outputs={KUBECONFIG_STEP: {"kubeconfig": str(kubeconfig), "contexts": {"old": old, "new": new}}},
                   log=say)


def shift_steps(ctx: Context) -> list[Step]:
    t = ctx.env.traffic
    assert t is not None
    return [Step(id=f"{9 + i:02d}-shift-traffic-{i}", kind="shift-traffic", title=f"shift {i}",
                 params={"router": t.router, "target": t.record.name if t.record else t.api_id,
                         "weights": w.model_dump(), "step": i, "of": len(t.steps), "soak_s": t.soak,
                         "gate_interval_s": t.gate_interval, "thresholds": t.thresholds.model_dump()},
                 effect="", undo="") for i, w in enumerate(t.steps, start=1)]


def engine(ctx: Context, steps: list[Step]) -> tuple[Executor, Journal, CollectingReporter]:
    """The real executor over a plan of ``steps``, journaled in ``<workdir>/journal.jsonl`` as run ``ctx.run_id``;
    the kubeconfig comes from a journaled write-kubeconfig step, as in a real run. Call again to resume."""
    journal = Journal(ctx.workdir / "journal.jsonl")
    plan = Plan(env=ctx.env_name, target={}, created_at="", created_by="test", fingerprint=Fingerprint(config=""),
                steps=steps).sealed()
    if not any(r.get("run") == ctx.run_id for r in journal.records()):
        journal.append({"type": "run.started", "run": ctx.run_id, "operation": "migrate",
                        "plan": plan.model_dump(mode="json")})
        journal.append({"type": "step.done", "run": ctx.run_id, "step": KUBECONFIG_STEP,
                        "outputs": ctx.outputs[KUBECONFIG_STEP]})
    reporter = CollectingReporter()
    return Executor(plan, journal, ctx, reporter), journal, reporter


def step(kind: str, step_id: str, **params: Any) -> Step:
    return Step(id=step_id, kind=kind, title=kind, params=params, effect="", undo="")


def weights(endpoints: Endpoints, env: str) -> dict[str, tuple[int, str]]:
    e = endpoints["environments"][env]
    rrs = aws(endpoints, "route53").list_resource_record_sets(HostedZoneId=e["zone_id"],
                                                              StartRecordName=e["record"])["ResourceRecordSets"]
    return {r["SetIdentifier"]: (r["Weight"], r["ResourceRecords"][0]["Value"]) for r in rrs
            if r["Name"].rstrip(".") == e["record"] and "SetIdentifier" in r}


def fault(endpoints: Endpoints, cluster: str, status: int = 503) -> None:
    lifecycle.control(endpoints, "POST", "/faults", {"kind": "http", "cluster": cluster, "path": "/",
                                                     "status": status})


class JsonServer:
    """A local HTTP server answering JSON made by ``make`` per request path: a document (status 200), or
    ``(status, document or None)`` for another answer (response-diff and read-back tests)."""

    def __init__(self, make: Callable[[str], dict[str, Any] | tuple[int, dict[str, Any] | None]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                got = make(self.path)
                status, doc = got if isinstance(got, tuple) else (200, got)
                if doc is None:
                    self.send_response(status)
                    self.end_headers()
                    return
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> JsonServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
