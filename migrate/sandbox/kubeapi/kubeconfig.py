"""Write a kubeconfig that points kubectl and the Python client at an emulated cluster."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def kubeconfig_dict(url: str, name: str = "sandbox", token: str | None = None,
                    namespace: str | None = None) -> dict:
    user: dict = {"token": token} if token else {}
    context: dict = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        # Plain http: there is no TLS to verify, so no certificate-authority is needed.
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }


def write_kubeconfig(path: str | Path, url: str, name: str = "sandbox", token: str | None = None,
                     namespace: str | None = None) -> Path:
    """Write (mode 0600, a token may be in it) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(kubeconfig_dict(url, name, token, namespace), f, sort_keys=False)
    return p
