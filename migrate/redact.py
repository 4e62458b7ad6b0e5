"""Secret redaction for everything that is written down: plans, journals, events, reports."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"
_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[-_]?key|private[-_]?key|credential|authorization|session|cert(ificate)?-?data)",
    re.IGNORECASE,
)
# Values that look like credentials whatever their key is called.
_SECRET_VALUE = re.compile(
    r"(AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|k8s-aws-v1\.[A-Za-z0-9_-]{20,}|ya29\.[A-Za-z0-9_.-]{20,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----)"
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact(value: Any, *, key: str = "") -> Any:
    """Return a copy with secret-looking keys and values replaced by ``<redacted>``."""
    if key and is_secret_key(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        # A Kubernetes Secret's payload is secret whatever its keys are.
        if value.get("kind") == "Secret":
            return {
                k: ({dk: REDACTED for dk in v} if k in ("data", "stringData") and isinstance(v, dict)
                    else redact(v, key=str(k)))
                for k, v in value.items()
            }
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str) and _SECRET_VALUE.search(value):
        return _SECRET_VALUE.sub(REDACTED, value)
    return value
