"""HTTP smoke checks declared in the config: status, body "contains", JSON-path tests."""

from __future__ import annotations

import re
from typing import Any

from migrate.config import SmokeCheck
from migrate.validate.http import Http, Response, join
from migrate.validate.result import CheckResult

_MISSING = object()
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def json_path(doc: Any, path: str) -> Any:
    """A value by a simple path: ``$.a.b[0].c`` or ``a.b.0.c``; a sentinel when absent."""
    cur = doc
    for name, index in _TOKEN.findall(path.removeprefix("$").lstrip(".")):
        key: Any = int(index) if index else (int(name) if name.isdigit() and isinstance(cur, list) else name)
        try:
            cur = cur[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return cur


def check_response(check: SmokeCheck, resp: Response) -> list[str]:
    """What is wrong with the response; empty when the check passes."""
    problems = []
    if resp.status != check.expect_status:
        problems.append(f"status {resp.status or resp.error} (expected {check.expect_status})")
    if check.body_contains is not None and check.body_contains not in resp.body.decode("utf-8", "replace"):
        problems.append(f"body does not contain {check.body_contains!r}")
    if check.json_path:
        doc = resp.json()
        for path, want in check.json_path.items():
            got = json_path(doc, path)
            if got is _MISSING:
                problems.append(f"{path} is missing")
            elif got != want:
                problems.append(f"{path} is {got!r} (expected {want!r})")
    return problems


def headers_for(check: SmokeCheck) -> dict[str, str]:
    return {**({"Host": check.host} if check.host else {}), **check.headers}


def run_smoke(check: SmokeCheck, base_url: str, http: Http) -> CheckResult:
    name = check.name or f"{check.method} {check.path}"
    resp = http.fetch(join(base_url, check.path), check.method, headers_for(check))
    problems = check_response(check, resp)
    return CheckResult(name=f"smoke: {name}", kind="smoke", ok=not problems,
                       detail="; ".join(problems) or f"{resp.status} in {resp.latency_ms:.0f} ms",
                       data={"status": resp.status, "latency_ms": round(resp.latency_ms, 2), "url": base_url})
