"""Zero-downtime Kubernetes cluster rebuilds."""

__version__ = "0.1.0"
