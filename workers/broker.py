"""The Dramatiq broker of a worker process, configured from settings."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage

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
    # Spans, log context and metrics per stage; the metrics endpoint.
    observability.install(broker)
    dramatiq.set_broker(broker)
    return broker
