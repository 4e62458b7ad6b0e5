"""Helpers for the sandbox tests: AWS clients on the sandbox, HTTP through the router, /proc inspection."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

Endpoints = dict[str, Any]


def aws(endpoints: Endpoints, service: str) -> Any:
    a = endpoints["aws"]
    return boto3.client(service, endpoint_url=a["endpoint_url"], region_name=a["region"],  # type: ignore
                        aws_access_key_id=a["access_key_id"], aws_secret_access_key=a["secret_access_key"])


def http(url: str, host: str | None = None, method: str = "GET", timeout: float = 5.0) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def upsert_weights(endpoints: Endpoints, env: str, targets: dict[str, tuple[int, str]], ttl: int) -> None:
    """One batch of UPSERTs (never DELETE: moto's DELETE by SetIdentifier removes too much)."""
    e = endpoints["environments"][env]
    aws(endpoints, "route53").change_resource_record_sets(HostedZoneId=e["zone_id"], ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": e["record"], "Type": "CNAME", "SetIdentifier": set_id, "Weight": weight, "TTL": ttl,
            "ResourceRecords": [{"Value": target}]}} for set_id, (weight, target) in targets.items()]})


def listening_addresses(pid: int) -> list[str]:
    """Local addresses of the TCP sockets the process listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                addr, port = cols[1].split(":")
                out.append(f"{_ip(addr, width)}:{int(port, 16)}")
    return out


def _ip(hexaddr: str, width: int) -> str:
    if width == 8:
        return ".".join(str(int(hexaddr[i:i + 2], 16)) for i in (6, 4, 2, 0))
    return hexaddr


def processes_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is pgid."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d.name))
    return out
