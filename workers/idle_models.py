"""Let go of speech models a worker process has stopped using.

An English-only job whose segments may be in another language loads the
multilingual model to check them (`workers.runs.flag_other_languages`): with
tiny.en jobs that is base, about 170 MB beside tiny.en's 100, kept for the
process's life. Measured on a 10-minute lecture (`bench.memory`), that model
is what keeps a tiny.en worker above 500 MB after the job.

Once the process has run no message for `worker_model_idle_s`, the models not
handed out for that long are released (the one the last job asked for
stays, so the next job of the same model loads nothing), and the heap is
trimmed so the kernel gets the pages back. Loading base again costs about
1 CPU-s, paid only by a job that needs it after such a pause, never within a
job (its chunks come back to back).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
import structlog

from workers import transcriber
from workers.heap import malloc_trim
from workers.periodic import Periodic
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


class ReleaseIdleModels(Periodic):
    """Every few seconds, while the process runs no message, `transcriber.release_idle`."""

    name = "release-idle-models"

    def __init__(self, idle_s: float) -> None:
        super().__init__()
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._running = 0
        self._last_message = time.monotonic()

    def interval_s(self, rt: Runtime) -> float:
        return min(5.0, max(self._idle_s / 4, 0.1))

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        with self._lock:
            self._running += 1

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self._running = max(0, self._running - 1)
            self._last_message = time.monotonic()

    after_skip_message = after_process_message

    def tick(self, rt: Runtime) -> None:
        self.release(time.monotonic())

    def release(self, now: float) -> list[str]:
        """Release the idle models if no message has run for `idle_s`; those released."""
        with self._lock:
            if self._running or now - self._last_message < self._idle_s:
                return []
            released = transcriber.release_idle(self._idle_s, now=now)
        if released:
            trim = malloc_trim()
            if trim is not None:
                trim(0)
            log.info("idle speech models released", models=released)
        return released
