"""Reporters: rich progress on a terminal, one JSON object per line for CI logs."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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
    """One line per event; on a terminal, a spinner with elapsed time while a step runs."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=False, highlight=False)
        self._live: Progress | None = None

    def _stop_spinner(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def emit(self, event: Event) -> None:
        self._stop_spinner()
        if event.type == "step.started" and self.console.is_terminal:
            self._live = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=self.console, transient=True)
            self._live.add_task(event.message, total=None)
            self._live.start()
            return
        if event.type == "step.progress":
            # Sub-step progress from long steps (replay counts, traffic weights): a line each.
            self.console.print(f"  [dim]{event.message}[/dim]", soft_wrap=True)
            return
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
