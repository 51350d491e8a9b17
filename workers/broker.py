"""The Dramatiq broker of a worker process, configured from settings."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import CurrentMessage, Middleware

from reelscribe import broker_redis
from reelscribe.config import get_settings
from reelscribe.queue import make_broker
from workers import observability

log = structlog.get_logger(__name__)


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
    # A stage longer than the heartbeat timeout stays with its live worker.
    broker.add_middleware(BrokerHeartbeat())
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


class BrokerHeartbeat(Middleware):
    """Keeps this process's hold on the messages it runs while it is alive.

    The Redis broker hands a worker's messages to others once the worker's
    heartbeat is older than `broker_heartbeat_timeout_s`, and Dramatiq sends
    that heartbeat only as a side effect of a consumer polling Redis. A
    consumer whose prefetch slots are all busy does not poll; the process
    stays covered only while some other consumer of it (today: the idle
    delay-queue consumers) happens to poll more often than the timeout. A
    thread of its own beats four times per timeout instead, whatever the
    consumers do, from worker boot until the worker has shut down (Dramatiq
    lets running stages finish first). It dies with the process, so a dead
    worker's messages still go to another worker after the timeout.
    """

    #: Beats per heartbeat timeout: three may be lost before the lease lapses.
    BEATS_PER_TIMEOUT = 4

    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        timeout_s = broker_redis.heartbeat_timeout_s(broker)
        if timeout_s is None:
            return  # another broker: it keeps its own leases
        interval_s = timeout_s / self.BEATS_PER_TIMEOUT
        threading.Thread(
            target=self._loop, args=(broker, interval_s), name="broker-heartbeat", daemon=True
        ).start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def _loop(self, broker: dramatiq.Broker, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                broker_redis.beat(broker)
            except broker_redis.CONNECTION_ERRORS as exc:
                # The consumers report the outage; beat again next interval.
                log.debug("broker heartbeat failed", error=repr(exc))
            except Exception:
                log.exception("broker heartbeat failed")
