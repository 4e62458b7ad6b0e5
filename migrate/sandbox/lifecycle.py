"""Start, find, and stop the sandbox daemon from another process (the CLI, invoke tasks, tests).

    endpoints = ensure_running(Path(".migrate/sandbox"))
    os.environ.update(env_vars(endpoints))   # boto3 and google-cloud-storage now talk to the sandbox
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .layout import Layout, read_json

DAEMON_MARK = "migrate.sandbox"
_children: dict[int, subprocess.Popen[bytes]] = {}  # daemons this process started: reaped on down


class SandboxError(RuntimeError):
    """The sandbox could not be started or reached; the message says what to do."""


def pid_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_daemon(pid: int) -> bool:
    """Guards against a recycled pid: only signal a process that runs our daemon."""
    try:
        return DAEMON_MARK in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return pid_alive(pid)


def _read_pid(layout: Layout) -> int | None:
    try:
        return int(layout.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def control(endpoints: dict[str, Any], method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
    """Call the daemon's control API (see control.py) and return the decoded JSON."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(endpoints["control_url"] + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        raise SandboxError(f"sandbox control {method} {path}: {e.code} {detail}") from e
    except OSError as e:
        raise SandboxError(f"the sandbox does not answer at {endpoints['control_url']}: {e}") from e


def running(state_dir: Path) -> dict[str, Any] | None:
    """The endpoints of a live, ready sandbox in state_dir, or None."""
    layout = Layout(state_dir)
    doc = read_json(layout.endpoints)
    if not doc or not pid_alive(int(doc.get("pid", 0))):
        return None
    try:
        control(doc, "GET", "/healthz", timeout=2.0)
    except SandboxError:
        return None
    return doc


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# How long to wait for a starting daemon before giving up: a failure bound, well above the usual 3-9 s,
# because a loaded 2-core machine can be slow to import moto and the emulators.
START_TIMEOUT = 60.0


def up(state_dir: Path, timeout: float = START_TIMEOUT) -> dict[str, Any]:
    """Start the daemon unless one is running; wait until it is ready; return its endpoints."""
    found = running(state_dir)
    if found is not None:
        return found
    layout = Layout(state_dir).ensure()
    old = _read_pid(layout)
    if old is not None and pid_alive(old) and _is_daemon(old):
        down(state_dir)  # alive but not answering: a wedged daemon; replace it
    layout.endpoints.unlink(missing_ok=True)
    with open(layout.log, "ab") as logf:
        logf.write(f"--- sandbox up {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        logf.flush()
        cmd = [sys.executable, "-m", "migrate.sandbox", "--state-dir", str(Path(state_dir).resolve()), "daemon"]
        proc = subprocess.Popen(cmd,
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    _children[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = read_json(layout.endpoints)
        if doc and doc.get("pid") == proc.pid:
            return doc
        if proc.poll() is not None:
            raise SandboxError(f"the sandbox exited with code {proc.returncode} while starting. "
                               f"Its log ({layout.log}) ends with:\n{_tail(layout.log)}")
        time.sleep(0.05)
    down(state_dir)
    raise SandboxError(f"the sandbox was not ready within {timeout:.0f}s; it was stopped. "
                       f"See its log: {layout.log}")


def ensure_running(state_dir: Path, timeout: float = START_TIMEOUT) -> dict[str, Any]:
    """What `migrate` calls when the config points at the sandbox: start it if needed, return its endpoints."""
    return up(Path(state_dir), timeout)


def down(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the daemon (and, through its process group, anything it started). True if one was running."""
    layout = Layout(state_dir)
    doc = read_json(layout.endpoints)
    pid = _read_pid(layout) or (int(doc["pid"]) if doc and doc.get("pid") else None)
    if pid is None or not pid_alive(pid) or not _is_daemon(pid):
        _cleanup(layout, pid)
        return False
    if doc is not None:
        with contextlib.suppress(SandboxError):
            control(doc, "POST", "/shutdown", timeout=2.0)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):  # stuck: the group was made for the daemon alone (start_new_session)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        end = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.05)
    _cleanup(layout, pid)
    return True


def _cleanup(layout: Layout, pid: int | None) -> None:
    if pid is not None and pid in _children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            _children.pop(pid).wait(timeout=5)
    layout.endpoints.unlink(missing_ok=True)
    layout.pid.unlink(missing_ok=True)


def status(state_dir: Path) -> dict[str, Any]:
    doc = running(state_dir)
    if doc is None:
        return {"running": False, "state_dir": str(state_dir)}
    live = control(doc, "GET", "/status")
    return {"running": True, "endpoints": doc, **live}


def reset(state_dir: Path, timeout: float = START_TIMEOUT) -> dict[str, Any]:
    """Back to the seeds: every change made to the emulated cloud is dropped (the state is in memory)."""
    down(state_dir)
    return up(state_dir, timeout)


def env_vars(endpoints: dict[str, Any]) -> dict[str, str]:
    """The standard SDK variables that point boto3, terraform's AWS backend and google-cloud-storage at it."""
    aws = endpoints["aws"]
    gcp = endpoints["gcp"]
    return {
        "AWS_ENDPOINT_URL": aws["endpoint_url"],
        "AWS_ACCESS_KEY_ID": aws["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": aws["secret_access_key"],
        "AWS_DEFAULT_REGION": aws["region"],
        "AWS_REGION": aws["region"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "STORAGE_EMULATOR_HOST": gcp["storage_emulator_host"],
        "GOOGLE_CLOUD_PROJECT": gcp["project"],
        "MIGRATE_SANDBOX_ENDPOINTS": str(Path(endpoints["state_dir"]) / "endpoints.json"),
        # The router answers for the sandbox's DNS names as an HTTP proxy, the way resolvers answer for real ones;
        # loopback endpoints (moto, emulators, gateway listeners) are reached directly.
        "HTTP_PROXY": endpoints["router_url"],
        "http_proxy": endpoints["router_url"],
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
