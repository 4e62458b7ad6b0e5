"""Kubeconfigs for the operator and the toolkit, with exec credentials instead of stored tokens.

Tokens expire (EKS: 15 min), so the kubeconfig runs ``python -m migrate.cloud.token``
to mint a fresh one, the way ``aws eks get-token`` or ``gke-gcloud-auth-plugin``
would, but without either CLI. Written atomically with mode 0600.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from migrate.fileio import atomic_write


@dataclass(frozen=True)
class ClusterAccess:
    context: str  # name of the context to write
    server: str  # https://… or, for emulators, http://127.0.0.1:PORT
    ca_data: str | None  # base64 PEM, None for plain-http emulators
    token_args: list[str]  # arguments to `python -m migrate.cloud.token`
    token_env: dict[str, str]  # non-secret environment for the exec plugin (region, profile)


def kubeconfig_dict(clusters: list[ClusterAccess], current: str | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "preferences": {},
                           "current-context": current or (clusters[0].context if clusters else ""),
                           "clusters": [], "users": [], "contexts": []}
    for c in clusters:
        cluster: dict[str, Any] = {"server": c.server}
        if c.ca_data:
            cluster["certificate-authority-data"] = c.ca_data
        elif c.server.startswith("https://"):
            cluster["insecure-skip-tls-verify"] = False
        cfg["clusters"].append({"name": c.context, "cluster": cluster})
        cfg["users"].append({"name": c.context, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": ["-m", "migrate.cloud.token", *c.token_args],
            "env": [{"name": k, "value": v} for k, v in sorted(c.token_env.items())] or None,
            "interactiveMode": "Never",
            "provideClusterInfo": False,
        }}})
        cfg["contexts"].append({"name": c.context, "context": {"cluster": c.context, "user": c.context}})
    return cfg


def write_kubeconfig(path: Path, clusters: list[ClusterAccess], current: str | None = None) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return atomic_write(path, yaml.safe_dump(kubeconfig_dict(clusters, current), sort_keys=False))


def read_contexts(path: Path) -> dict[str, str]:
    """context name -> server, or {} when the file is missing or unreadable."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    servers = {c["name"]: c["cluster"].get("server") for c in data.get("clusters", []) if isinstance(c, dict)}
    return {c["name"]: servers.get(c["context"]["cluster"], "") for c in data.get("contexts", [])
            if isinstance(c, dict)}
