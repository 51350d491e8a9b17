"""Background duties of a worker process, as Dramatiq middleware.

A `Periodic` subclass names how often it runs and what one run does; the
base class owns the thread, the stop signal and error logging.
"""

from __future__ import annotations

import threading

import dramatiq
import structlog

from workers.runtime import Runtime, get_runtime

log = structlog.get_logger(__name__)


class Periodic(dramatiq.Middleware):
    """Runs `tick` every `interval_s(rt)` seconds in each worker process."""

    #: Thread name, also used in log messages.
    name = "periodic"
    #: Whether the duty also runs once as soon as the worker has started.
    at_boot = False

    def __init__(self) -> None:
        self._stop = threading.Event()

    def interval_s(self, rt: Runtime) -> float:
        """Seconds between two ticks."""
        raise NotImplementedError

    def tick(self, rt: Runtime) -> None:
        """One run of the duty."""
        raise NotImplementedError

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=self._loop, name=self.name, daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def _loop(self) -> None:
        rt = get_runtime()
        if self.at_boot:
            self._tick(rt)
        while not self._stop.wait(self.interval_s(rt)):
            self._tick(rt)

    def _tick(self, rt: Runtime) -> None:
        try:
            self.tick(rt)
        except Exception:
            log.exception("background duty failed", duty=self.name)
