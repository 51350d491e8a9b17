"""Announces this worker process in Redis while it runs (see `reelscribe.presence`)."""

from __future__ import annotations

import contextlib

import dramatiq

from reelscribe import presence
from workers.periodic import Periodic
from workers.runtime import Runtime, get_runtime


class Presence(Periodic):
    """Beats every `presence.BEAT_INTERVAL_S`, from a thread of its own, so a
    process busy with a long stage still counts as alive."""

    name = "presence"

    def __init__(self) -> None:
        super().__init__()
        self._member = ""

    def interval_s(self, rt: Runtime) -> float:
        return presence.BEAT_INTERVAL_S

    def tick(self, rt: Runtime) -> None:
        self._member = self._member or presence.worker_id()
        rt.call(presence.beat(rt.redis, rt.settings.queue_name, self._member), timeout_s=5.0)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Announce at once: a server started beside this worker should not
        # report "no workers" for the first interval.
        with contextlib.suppress(Exception):
            self.tick(get_runtime())
        super().after_worker_boot(broker, worker)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        super().before_worker_shutdown(broker, worker)
        if self._member:
            rt = get_runtime()
            with contextlib.suppress(Exception):
                rt.call(presence.leave(rt.redis, rt.settings.queue_name, self._member), 5.0)
