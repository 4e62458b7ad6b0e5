"""Kubernetes API emulator: the embedded default cluster of the sandbox (DESIGN.md section 6).

Standalone on purpose: nothing here imports the rest of `migrate`.
"""

from .faults import FAULT_ANNOTATION, Faults
from .kubeconfig import kubeconfig_dict, write_kubeconfig
from .server import KubeAPIServer

__all__ = ["FAULT_ANNOTATION", "Faults", "KubeAPIServer", "kubeconfig_dict", "write_kubeconfig"]
