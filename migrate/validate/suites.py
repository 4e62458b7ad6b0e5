"""The team's own pytest suites, run as a subprocess against the new cluster; their JUnit XML is collected."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from migrate.config import Suite
from migrate.validate.result import CheckResult


def junit_counts(path: Path) -> dict[str, int]:
    """tests / failures / errors / skipped summed over the testsuites of a JUnit XML file."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return counts
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for s in suites:
        for k in counts:
            counts[k] += int(s.get(k, "0") or 0)
    return counts


def run_suite(suite: Suite, *, cwd: Path, out_dir: Path, env: dict[str, str]) -> CheckResult:
    """Exit 0 and at least one test passes the check; the XML lands in ``out_dir/<name>.xml``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / f"{suite.name}.xml"
    xml.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", str(cwd / suite.path), f"--junitxml={xml}", "-q", "-p", "no:cacheprovider",
           *suite.args]
    data: dict[str, Any] = {"junit_xml": str(xml), "command": cmd[1:]}
    try:
        proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=suite.timeout, check=False)
    except subprocess.TimeoutExpired:
        return CheckResult(name=f"suite: {suite.name}", kind="suite", ok=False,
                           detail=f"timed out after {suite.timeout:g}s", data=data)
    counts = junit_counts(xml)
    data.update(counts, exit_code=proc.returncode)
    tail = "\n".join(proc.stdout.strip().splitlines()[-3:])
    ok = proc.returncode == 0 and counts["tests"] > counts["skipped"]
    detail = (f"{counts['tests']} tests, {counts['failures']} failures, {counts['errors']} errors, "
              f"{counts['skipped']} skipped (exit {proc.returncode})")
    if not ok:
        detail += f": {tail}" if tail else ""
    return CheckResult(name=f"suite: {suite.name}", kind="suite", ok=ok, detail=detail, data=data)
