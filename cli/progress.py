"""Live progress in the terminal: one bar per stage.

On a terminal the current stage's line is redrawn in place and a new line
starts when the stage changes; into a pipe or file every event is one line.
"""

from __future__ import annotations

import sys
from typing import TextIO

from reelscribe_client import v1

_BAR_WIDTH = 24
_STAGE_EVENTS = (v1.JobEventKind.PROGRESS, v1.JobEventKind.PARTIAL_RESULT)


def _bar(fraction: float) -> str:
    filled = int(max(0.0, min(1.0, fraction)) * _BAR_WIDTH)
    return "#" * filled + "." * (_BAR_WIDTH - filled)


class StageBars:
    """Renders a job's events as per-stage progress bars."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._tty = self._out.isatty()
        self._stage: v1.Stage | None = None

    def show(self, event: v1.JobEvent) -> None:
        """Render one event."""
        job = event.job
        if job is None or event.kind == v1.JobEventKind.HEARTBEAT:
            return
        if event.kind in _STAGE_EVENTS:
            fraction = event.stage_progress
        elif event.kind == v1.JobEventKind.STAGE_FINISHED or job.state == v1.JobState.SUCCEEDED:
            fraction = 1.0
        else:
            fraction = 0.0
        stage = job.stage.name.lower() if job.stage.name else "-"
        state = job.state.name.lower() if job.state.name else "-"
        eta = f"  eta {int(event.eta.total_seconds())} s" if event.eta else ""
        line = (
            f"{stage:<14} [{_bar(fraction)}] {fraction * 100:5.1f}%  "
            f"overall {job.progress * 100:5.1f}%  {state:<9} {event.message}{eta}"
        )
        if not self._tty:
            seq = f"{event.seq:>4}" if event.seq else "   -"
            print(f"{seq} {line}", file=self._out, flush=True)
            return
        if self._stage is not None and job.stage != self._stage:
            self._out.write("\n")
        self._stage = job.stage
        self._out.write("\r" + line[:200].ljust(100))
        self._out.flush()

    def close(self) -> None:
        """End the last line."""
        if self._tty and self._stage is not None:
            self._out.write("\n")
            self._out.flush()
