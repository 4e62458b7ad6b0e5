"""The embedded cloud (DESIGN.md section 6): moto, Kubernetes API emulators, GKE and GCS emulators, and a
data plane with a weighted router and a probe, in one background process.

The toolkit never imports this package: it reaches the sandbox through endpoints, as it reaches a cloud.
Only the CLI calls `ensure_running` and `env_vars`. Importing this package stays light (no moto).
"""

from .lifecycle import SandboxError, control, down, ensure_running, env_vars, reset, running, status, up

__all__ = ["SandboxError", "control", "down", "ensure_running", "env_vars", "reset", "running", "status", "up"]
