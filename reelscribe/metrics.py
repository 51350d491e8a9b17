"""Prometheus metrics shared by the server and the workers, and their HTTP endpoint.

Metrics defined here live in the default registry. In the server they are
plain in-memory values. In a worker started by the Dramatiq CLI they are kept
in files shared by all its processes (prometheus multiprocess mode, switched
on by `workers.observability` before this module is first imported) and one
endpoint serves their sum.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = structlog.get_logger(__name__)

COST_USD = Counter(
    "reelscribe_cost_usd_total", "Estimated processing cost in US dollars.", ["stage"]
)
PROVIDER_TOKENS = Counter(
    "reelscribe_provider_tokens_total", "Tokens used at analysis providers.", ["provider"]
)
COST_ALERTS = Counter(
    "reelscribe_cost_alerts_total", "Days whose cost rose more than the alert threshold."
)
DAILY_COST_INCREASE = Gauge(
    "reelscribe_daily_cost_increase_percent",
    "Today's estimated cost over yesterday's, in percent (last check).",
    # Every worker process computes the same figure: export the latest, not one per pid.
    multiprocess_mode="mostrecent",
)

# -- server: the go-grpc-prometheus names, so existing dashboards work ------------------

_RPC_LABELS = ["grpc_service", "grpc_method", "grpc_type"]

RPC_STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", _RPC_LABELS)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    [*_RPC_LABELS, "grpc_code"],
)
RPC_DURATION = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status (streams: the whole stream).",
    [*_RPC_LABELS, "grpc_code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
)

# -- workers -------------------------------------------------------------------------

STAGE_DURATION = Histogram(
    "reelscribe_stage_duration_seconds",
    "Wall-clock time of one pipeline stage message (one chunk for transcribe).",
    ["stage", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400),
)
STAGE_REDELIVERIES = Counter(
    "reelscribe_stage_redeliveries_total",
    "Stage messages started again: `retry` after a failure, `redelivered` after a "
    "worker vanished mid-message.",
    ["stage", "kind"],
)


def endpoint_host(metrics_host: str, listen_address: str) -> str:
    """The host to bind a metrics endpoint to: configured, else the gRPC listen host."""
    if metrics_host:
        return metrics_host
    host = listen_address.rsplit(":", 1)[0].strip("[]")
    return host or "127.0.0.1"


@dataclass
class MetricsServer:
    """A running `/metrics` endpoint."""

    #: The bound port (useful when 0 was asked for).
    port: int
    _httpd: WSGIServer
    _thread: threading.Thread

    def wait(self) -> None:
        """Block while the endpoint serves."""
        self._thread.join()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve(registry: CollectorRegistry, host: str, port: int) -> MetricsServer | None:
    """Serve `registry` over HTTP in a daemon thread.

    A port in use is logged and tolerated: metrics are not worth refusing to
    serve gRPC for (and several servers in one test process share defaults).
    """
    try:
        httpd, thread = start_http_server(port, host, registry=registry)
    except OSError as exc:
        log.warning("metrics endpoint not started", host=host, port=port, error=str(exc))
        return None
    bound = int(httpd.server_address[1])
    log.info("metrics endpoint started", host=host, port=bound)
    return MetricsServer(bound, httpd, thread)


class RegistryCollector(Collector):
    """Re-exports everything in another registry (e.g. the default one)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


class CachedCollector(Collector):
    """Metric families computed by `read` at scrape time, reused for `cache_s`.

    For figures that cost a query (jobs by state, queue depth): frequent or
    concurrent scrapes cost one query per `cache_s`. A failing `read` is logged
    and yields nothing, so one unreachable backend never breaks the scrape.
    """

    def __init__(self, read: Callable[[], list[Metric]], *, cache_s: float = 2.0) -> None:
        self._read = read
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._cached: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self._cache_s:
                try:
                    self._cached = self._read()
                except Exception as exc:
                    log.warning("metrics collection failed", error=repr(exc))
                    self._cached = []
                self._at = time.monotonic()
            return list(self._cached)


def gauge_family(
    name: str, documentation: str, label: str, values: dict[str, float]
) -> GaugeMetricFamily:
    """A gauge with one label, one sample per entry of `values`."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family
