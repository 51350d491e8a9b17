"""The Dramatiq broker of a worker process, configured from settings."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage, Middleware

from reelscribe.config import get_settings
from reelscribe.queue import make_broker
from workers import observability


def setup_broker() -> dramatiq.Broker:
    """Create the Redis broker and make it Dramatiq's global broker."""
    settings = get_settings()
    if not settings.redis_url:
        raise RuntimeError("the worker needs REELSCRIBE_REDIS_URL (`reelscribe up` sets it)")
    broker = make_broker(
        settings.redis_url,
        heartbeat_timeout_s=settings.broker_heartbeat_timeout_s,
        maintenance_chance=settings.broker_maintenance_chance,
    )
    # Actors can read their own message (id, retry count) while they run.
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(PollInterval(settings.queue_poll_max_ms))
    # Spans, log context and metrics per stage; the metrics endpoint.
    observability.install(broker)
    dramatiq.set_broker(broker)
    return broker


class PollInterval(Middleware):
    """Caps how long an idle consumer waits between polls of its queue.

    Dramatiq's Redis consumer backs off exponentially while a queue is empty,
    up to the worker's `worker_timeout` (1 s by default); a stage's next
    message then waits for the backoff to run out before anyone takes it.
    """

    def __init__(self, max_ms: int) -> None:
        self.max_ms = max_ms

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        # Read by the consumers the worker starts right after this hook.
        worker.worker_timeout = self.max_ms
