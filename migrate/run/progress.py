"""Reporters: rich progress on a terminal, one JSON object per line for CI logs."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from rich.console import Console

from migrate.run.events import Event

_STYLE = {
    "step.started": ("▶", "cyan"),
    "step.done": ("✔", "green"),
    "step.skipped": ("·", "dim"),
    "step.failed": ("✖", "red"),
    "step.rolled_back": ("↺", "yellow"),
    "run.paused": ("⏸", "yellow"),
    "run.completed": ("★", "bold green"),
    "rollback.started": ("↺", "yellow"),
    "rollback.completed": ("↺", "bold yellow"),
    "run.resumed": ("↻", "cyan"),
    "run.started": ("●", "bold cyan"),
    "info": ("•", ""),
    "warning": ("!", "yellow"),
}


class RichReporter:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=False, highlight=False)

    def emit(self, event: Event) -> None:
        mark, style = _STYLE.get(event.type, ("•", ""))
        extra = ""
        if event.type == "step.done" and "seconds" in event.data:
            extra = f" [dim]({event.data['seconds']:.1f}s)[/dim]"
        self.console.print(f"[{style}]{mark}[/{style}] {event.message}{extra}" if style
                           else f"{mark} {event.message}{extra}", soft_wrap=True)


class JsonReporter:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def emit(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_dict(), sort_keys=True, default=str) + "\n")
        self.stream.flush()
