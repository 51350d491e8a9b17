"""Worker observability as Dramatiq middleware: metrics, traces and log context.

Metrics. A `reelscribe worker` (`dramatiq workers.actors`) is a main process
with several worker processes. Dramatiq's Prometheus middleware keeps every
process's metrics in files of one directory (prometheus_client's
multiprocess mode) and one extra process, forked by the main one, serves
their sum. Our own metrics (`reelscribe.metrics`: stage durations,
redeliveries, costs) land in the same files, so one endpoint per worker run
(`worker_metrics_port`) shows Dramatiq's and ours.

prometheus_client picks multiprocess mode when it is first imported, so this
module must be imported before anything imports it: `workers.actors` imports
it first. Importing it switches the mode only inside a process started by
the Dramatiq CLI, never in a test process that merely imports worker code.

Traces and logs. Each stage message runs in a span continuing the trace its
message carries (`reelscribe.tracing`), with `job_id`, `stage` and the
message id bound to the log context for as long as it runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import dramatiq
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace

from reelscribe.config import Settings, get_settings

log = structlog.get_logger(__name__)

#: Redis key marking a message as started (deleted when it finishes): a message
#: that finds its key already there was started before by a worker that vanished.
_STARTED_KEY = "reelscribe:started:{}"
_STARTED_TTL_S = 7 * 24 * 3600


def _start_time(pid: int) -> str:
    """The kernel's start time of `pid` (tells a reused pid apart); empty if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _run_name(pid: int) -> str:
    started = _start_time(pid)
    return f"{pid}-{started}" if started else str(pid)


def _is_alive(run: str) -> bool:
    pid_text, _, started = run.partition("-")
    if not pid_text.isdigit():
        return True  # not ours: leave it alone
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or _start_time(pid) == started


def metrics_base_dir(settings: Settings) -> Path:
    """Where worker runs keep their metric files, one directory per run."""
    if settings.worker_metrics_dir:
        return Path(settings.worker_metrics_dir)
    return Path(tempfile.gettempdir()) / f"reelscribe-worker-metrics-{os.getuid()}"


def _prepare_multiprocess(settings: Settings) -> Path | None:
    """Point prometheus_client (and Dramatiq's middleware) at this run's directory."""
    if not settings.worker_metrics_port or "dramatiq.cli" not in sys.modules:
        return None
    if "prometheus_client" in sys.modules:
        log.warning(
            "prometheus_client was imported before workers.observability; worker metrics are off"
        )
        return None
    base = metrics_base_dir(settings)
    # Worker processes and the exporter are children of the Dramatiq main
    # process: its pid (and start time) names the run they share.
    run_dir = base / _run_name(os.getppid())
    run_dir.mkdir(parents=True, exist_ok=True)
    # Counters in files of finished runs would be added to ours: remove them.
    for other in base.iterdir():
        if other != run_dir and other.is_dir() and not _is_alive(other.name):
            shutil.rmtree(other, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(run_dir)
    # Read by dramatiq.middleware.prometheus when it is imported (in `install`).
    os.environ["dramatiq_prom_db"] = str(run_dir)  # noqa: SIM112 - Dramatiq's own name
    return run_dir


#: This run's metric directory, or None when worker metrics are off here.
MULTIPROC_DIR = _prepare_multiprocess(get_settings())

# Only now may prometheus_client be imported.
from reelscribe import metrics, queue, tracing  # noqa: E402

_tracer = tracing.tracer(__name__)


def serve_worker_metrics() -> int:
    """Dramatiq fork process: serve the sum of all worker processes' metrics.

    A port already in use is logged, and this process ends; the workers go on.
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from reelscribe import logs

    logs.configure()
    settings = get_settings()
    if MULTIPROC_DIR is None:
        return 0
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(MULTIPROC_DIR))
    host = metrics.endpoint_host(settings.metrics_host, settings.listen_address)
    server = metrics.serve(registry, host, settings.worker_metrics_port)
    if server is None:
        return 0
    server.wait()  # until the Dramatiq main process ends this one with SIGTERM
    return 0


class StageObservability(dramatiq.Middleware):
    """Per stage message: a span, log context, duration and redelivery metrics.

    Dramatiq runs `before_process_message`, the actor and `after_*` in one
    worker thread, so what was started before is kept in a thread-local.
    Also returns prefetched messages to the queue on shutdown.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        stage = queue.STAGES.get(message.actor_name, message.actor_name)
        job_id = str(message.args[0]) if message.args else ""
        retries = int(message.options.get("retries", 0) or 0)
        if retries:
            metrics.STAGE_REDELIVERIES.labels(stage, "retry").inc()
        elif self._started_before(broker, message):
            metrics.STAGE_REDELIVERIES.labels(stage, "redelivered").inc()
        structlog.contextvars.bind_contextvars(
            job_id=job_id, stage=stage, message_id=message.message_id
        )
        span = _tracer.start_span(
            f"stage {stage}",
            context=tracing.extract_from_options(message.options),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                "dramatiq.actor": message.actor_name,
                "dramatiq.retries": retries,
                "reelscribe.job_id": job_id,
                "reelscribe.stage": stage,
            },
        )
        if message.actor_name == queue.TRANSCRIBE_CHUNK and len(message.args) > 1:
            span.set_attribute("reelscribe.chunk", int(message.args[1]))
        token = otel_context.attach(trace.set_span_in_context(span))
        self._local.state = (span, token, time.perf_counter(), stage)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        state = getattr(self._local, "state", None)
        self._local.state = None
        if state is None:
            return  # skipped before our `before_process_message` ran
        span, token, started, stage = state
        try:
            outcome = "ok" if exception is None else "error"
            metrics.STAGE_DURATION.labels(stage, outcome).observe(time.perf_counter() - started)
            if exception is not None:
                span.record_exception(exception)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(exception).__name__))
            span.end()
            self._finished(broker, message)
        finally:
            otel_context.detach(token)
            structlog.contextvars.unbind_contextvars("job_id", "stage", "message_id")

    after_skip_message = after_process_message

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        requeue_prefetched(worker)
        with contextlib.suppress(Exception):
            tracing.shutdown()

    @staticmethod
    def _started_before(broker: dramatiq.Broker, message: Any) -> bool:
        redis = getattr(broker, "client", None)
        broker_id = message.options.get("redis_message_id")
        if redis is None or not broker_id:
            return False
        try:
            first = redis.set(_STARTED_KEY.format(broker_id), b"1", nx=True, ex=_STARTED_TTL_S)
        except Exception as exc:  # metrics must never fail a message
            log.debug("redelivery check failed", error=repr(exc))
            return False
        return not first

    @staticmethod
    def _finished(broker: dramatiq.Broker, message: Any) -> None:
        redis = getattr(broker, "client", None)
        broker_id = message.options.get("redis_message_id")
        if redis is not None and broker_id:
            with contextlib.suppress(Exception):
                redis.delete(_STARTED_KEY.format(broker_id))


@contextlib.contextmanager
def inner_stage(stage: str, job_id: str, chunk: int | None = None) -> Any:
    """A stage run inside another stage's message (`workers.inplace`): its own
    span (a child of the message's) and duration, as if it had a message."""
    attributes: dict[str, Any] = {"reelscribe.job_id": job_id, "reelscribe.stage": stage}
    if chunk is not None:
        attributes["reelscribe.chunk"] = chunk
    started = time.perf_counter()
    outcome = "error"
    try:
        with (
            structlog.contextvars.bound_contextvars(stage=stage),
            _tracer.start_as_current_span(
                f"stage {stage}", kind=trace.SpanKind.INTERNAL, attributes=attributes
            ),
        ):
            yield
        outcome = "ok"
    finally:
        metrics.STAGE_DURATION.labels(stage, outcome).observe(time.perf_counter() - started)


def requeue_prefetched(worker: Any) -> int:
    """Put messages a consumer fetched but never handed out back on their queue.

    On shutdown Dramatiq requeues the messages waiting in its work queue, but
    the Redis consumer's own prefetch cache is left in this worker's ack set
    until its heartbeat times out (`broker_heartbeat_timeout_s`): other
    workers could have started them at once. Returns how many were requeued.
    """
    count = 0
    for thread in getattr(worker, "consumers", {}).values():
        consumer = getattr(thread, "consumer", None)
        cache = getattr(consumer, "message_cache", None)
        if consumer is None or not cache:
            continue
        messages = [dramatiq.Message.decode(data) for data in cache if data]
        consumer.message_cache = []
        try:
            consumer.requeue(messages)
        except Exception as exc:
            log.warning("prefetched messages not requeued", error=repr(exc))
            continue
        count += len(messages)
    if count:
        log.info("prefetched messages requeued", count=count)
    return count


def install(broker: dramatiq.Broker) -> None:
    """Add the worker's observability middleware to `broker` (in each worker process)."""
    settings = get_settings()
    tracing.configure(settings, "reelscribe-worker")
    broker.add_middleware(StageObservability())
    if MULTIPROC_DIR is not None:
        broker.add_middleware(_exporter())


def _exporter() -> dramatiq.Middleware:
    # Imported here: the module reads `dramatiq_prom_db` when first imported.
    from dramatiq.middleware.prometheus import Prometheus

    class Exporter(Prometheus):
        """Dramatiq's metrics, served by our exporter (configured host and port,
        this run's directory, survives a port in use)."""

        @property
        def forks(self) -> list[Any]:
            return [serve_worker_metrics]

    return Exporter()
