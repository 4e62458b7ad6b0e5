"""Failpoints: kill the process with SIGKILL at an exact step boundary.

Used by the crash/resume tests and the fault matrix, and by operators who want
to rehearse a resume. ``MIGRATE_FAILPOINTS="after-done:03-provision-cluster,after-start:hook-x"``:
each entry is ``<point>:<step id, its number, its suffix, or kind>``; ``point`` is
``after-start`` (journaled as started, before any effect) or ``after-done``
(journaled as done, before the next step starts). ``at:<label>`` is a point inside a step (see `at`).
"""

from __future__ import annotations

import os
import signal

from migrate.plan.model import Step


def _matches(step: Step, target: str) -> bool:
    return target in (step.id, step.kind) or step.id.endswith("-" + target) or step.id.startswith(target + "-")


def hit(point: str, step: Step) -> None:
    spec = os.environ.get("MIGRATE_FAILPOINTS", "")
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        where, _, target = entry.partition(":")
        if where == point and _matches(step, target):
            os.kill(os.getpid(), signal.SIGKILL)


def at(label: str) -> None:
    """A failpoint inside a step, between two of its side effects: ``at:<label>`` (e.g.
    ``at:cut-volumes/snapshotted``) kills the process there, so that a resume must find what was done."""
    spec = os.environ.get("MIGRATE_FAILPOINTS", "")
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        where, _, target = entry.partition(":")
        if where == "at" and target == label:
            os.kill(os.getpid(), signal.SIGKILL)
