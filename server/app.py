"""Assembles and runs the gRPC server: services, health, reflection, metrics, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

import asyncpg
import grpc
import structlog
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from reelscribe import db, metrics, redis_client, tracing
from reelscribe.auth import JwksCache, TokenVerifier
from reelscribe.blobs import open_blob_store
from reelscribe.config import Settings
from reelscribe.db import jobs as jobs_db
from reelscribe.errors import Unavailable
from reelscribe.queue import JobQueue, make_broker
from reelscribe.ratelimit import Rate, RateLimiter
from reelscribe.states import JobState
from reelscribe.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    search_service_pb2,
    search_service_pb2_grpc,
    transcript_service_pb2,
    transcript_service_pb2_grpc,
)
from server import partsweep
from server.deps import Deps
from server.hub import EventHub
from server.interceptors import CallInterceptor
from server.listen import ListenError
from server.liveness import WorkerWatch
from server.reflection import DescriptorFiles, ReflectionServicer
from server.services.jobs import JobService
from server.services.search import SearchService
from server.services.transcripts import TranscriptService
from server.web import WebListener, bind_web, web_listener

log = structlog.get_logger(__name__)

#: Allocations between two young-generation collections (Python's default is 700).
GC_THRESHOLD_GEN0 = 50_000

_SERVICES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"],
    transcript_service_pb2.DESCRIPTOR.services_by_name["TranscriptService"],
    search_service_pb2.DESCRIPTOR.services_by_name["SearchService"],
)
SERVICE_NAMES = tuple(service.full_name for service in _SERVICES)
#: Streaming methods, exported (as 0) in the active streams gauge before any opens.
STREAMING_METHODS = tuple(
    method.name
    for service in _SERVICES
    for method in service.methods
    if method.client_streaming or method.server_streaming
)


class ServerApp:
    """One server process: owns the pools, the gRPC server and the event hub."""

    def __init__(self, settings: Settings) -> None:
        if not settings.database_url or not settings.redis_url:
            raise ValueError(
                "the server needs REELSCRIBE_DATABASE_URL and REELSCRIBE_REDIS_URL "
                "(`reelscribe up` starts embedded ones)"
            )
        self.settings = settings
        self.port = 0
        #: Port of the `/metrics` endpoint (0: not serving metrics).
        self.metrics_port = 0
        #: Port of the gRPC-Web listener (0: not listening; see `web_listen`).
        self.web_port = 0
        self._web: WebListener | None = None
        self._server: grpc.aio.Server | None = None
        self._deps: Deps | None = None
        self._health = health_aio.HealthServicer()
        self._metrics: metrics.MetricsServer | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self._part_sweep: asyncio.Task[None] | None = None
        #: Whether the gRPC server started (a failed bind leaves it unstarted).
        self._serving = False
        self._workers: WorkerWatch | None = None

    @property
    def web_address(self) -> str:
        """`host:port` of the gRPC-Web listener and console ("" when off)."""
        return self._web.bound_address if self._web is not None else ""

    @property
    def deps(self) -> Deps:
        """The shared resources (available after `start`)."""
        assert self._deps is not None
        return self._deps

    async def start(self, address: str | None = None) -> int:
        """Connect, migrate, bind and start serving; returns the bound port."""
        settings = self.settings
        self._loop = asyncio.get_running_loop()
        # Bound first: a busy gRPC-Web address stops the start before anything runs.
        web_socket = bind_web(settings.web_listen) if settings.web_listen else None
        pool = await db.create_pool(settings.database_url)
        async with pool.acquire() as conn:
            await db.apply_migrations(conn)
        redis = redis_client.connect(settings.redis_url)
        hub = EventHub(redis, buffer_events=settings.watch_buffer_events)
        await hub.start()
        blobs = open_blob_store(settings)
        try:
            # A store that refuses this configuration (credentials, bucket) stops
            # the start (S3ConfigError names the setting); one that cannot be
            # reached yet only makes uploads UNAVAILABLE until it is back.
            await asyncio.to_thread(blobs.check)
        except Unavailable as exc:
            log.warning("blob store unreachable", error=exc.message)
        self._deps = Deps(
            settings=settings,
            pool=pool,
            redis=redis,
            queue=JobQueue(
                make_broker(
                    settings.redis_url,
                    heartbeat_timeout_s=settings.broker_heartbeat_timeout_s,
                    maintenance_chance=settings.broker_maintenance_chance,
                ),
                settings.queue_name,
            ),
            blobs=blobs,
            hub=hub,
        )
        verifier = TokenVerifier(
            settings.resolved_jwt_secret(),
            algorithms=settings.jwt_algorithms,
            leeway_s=settings.jwt_leeway_s,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            max_lifetime_s=settings.jwt_max_lifetime_s,
            jwks=(
                JwksCache(settings.jwks_url, min_refetch_s=settings.jwks_min_refetch_s)
                if settings.jwks_url
                else None
            ),
        )
        limiter = RateLimiter(
            redis,
            {method: Rate(*rate) for method, rate in settings.rate_limits.items()},
            Rate(settings.rate_limit_per_s, settings.rate_limit_burst),
        )
        self.interceptor = CallInterceptor(
            verifier,
            leeway_s=settings.jwt_leeway_s,
            limiter=limiter,
            max_streams=settings.max_concurrent_streams,
            max_streams_per_user=settings.max_streams_per_user,
            default_timeout_s=settings.default_call_timeout_s,
        )
        server = grpc.aio.server(
            interceptors=[self.interceptor],
            options=[
                # A busy address is an error, not a second server sharing the
                # port with the first (gRPC sets SO_REUSEPORT by default, and the
                # kernel would then split connections between two stacks).
                ("grpc.so_reuseport", 0),
                # Uploads arrive in 1 MiB chunks; leave room for framing.
                ("grpc.max_receive_message_length", settings.max_chunk_bytes + 64 * 1024),
                ("grpc.keepalive_time_ms", 60_000),
                ("grpc.keepalive_timeout_ms", 20_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        jobs = JobService(self._deps)
        search = SearchService(self._deps)
        transcripts = TranscriptService(self._deps, search)
        job_service_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)
        transcript_service_pb2_grpc.add_TranscriptServiceServicer_to_server(transcripts, server)
        search_service_pb2_grpc.add_SearchServiceServicer_to_server(search, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            ReflectionServicer(
                (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME),
                DescriptorFiles.default(),
            ),
            server,
        )
        listen = address or settings.listen_address
        try:
            self.port = server.add_insecure_port(listen)
        except RuntimeError as exc:
            # Nothing was served: release what start() took, bounded, and say why.
            if web_socket is not None:
                web_socket.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop(grace_s=0), timeout=15.0)
            raise ListenError(
                f"cannot listen on {listen}: the address is in use (another server?) "
                "or not available; set REELSCRIBE_LISTEN_ADDRESS to another one"
            ) from exc
        await server.start()
        self._serving = True
        self._server = server
        if web_socket is not None:
            # The same servicer objects, through the same interceptor.
            self._web = web_listener(
                settings, self.interceptor.wrap, web_socket, jobs, transcripts, search
            )
            self.web_port = await self._web.start()
        for name in (*SERVICE_NAMES, ""):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._workers = WorkerWatch(self._health, redis, settings.queue_name)
        await self._workers.start()
        if settings.metrics_port:
            host = metrics.endpoint_host(settings.metrics_host, address or settings.listen_address)
            self._metrics = metrics.serve(self._metrics_registry(), host, settings.metrics_port)
            self.metrics_port = self._metrics.port if self._metrics else 0
        # With `search_model_preload`, load the search model now, off the event
        # loop, not on the first query; by default it waits for the first query
        # that needs it (MiniLM under ONNX Runtime is about 100 MB of the server).
        self._warm_up = asyncio.create_task(
            self._settle(search if settings.search_model_preload else None)
        )
        self._part_sweep = asyncio.create_task(
            partsweep.run(
                settings.blob_dir,
                idle_s=settings.upload_expiry_s,
                interval_s=settings.upload_sweep_interval_s,
            )
        )
        log.info("server started", port=self.port, metrics=self.metrics_port, web=self.web_port)
        return self.port

    def _metrics_registry(self) -> CollectorRegistry:
        """Process-wide metrics plus this server's live figures.

        Jobs by state and queue depth cost a query each, so they are cached
        for a moment; they are read from the scrape thread (the jobs query runs
        on the event loop, the queue depth with the broker's own Redis client).
        """
        registry = CollectorRegistry()
        registry.register(metrics.RegistryCollector(REGISTRY))
        registry.register(metrics.CachedCollector(self._stream_metrics, cache_s=0.0))
        registry.register(metrics.CachedCollector(self._backend_metrics, cache_s=2.0))
        return registry

    def _stream_metrics(self) -> list[Metric]:
        return [
            metrics.gauge_family(
                "reelscribe_server_active_streams",
                "Streams (watches, uploads) open on this server.",
                "grpc_method",
                {
                    **dict.fromkeys(STREAMING_METHODS, 0.0),
                    **{k: float(v) for k, v in self.interceptor.streams_by_method.items()},
                },
            )
        ]

    def _backend_metrics(self) -> list[Metric]:
        deps = self.deps
        loop = self._loop
        families: list[Metric] = []
        try:
            counts = asyncio.run_coroutine_threadsafe(_count_jobs(deps.pool), loop).result(3.0)
        except Exception as exc:
            log.warning("jobs by state not collected", error=repr(exc))
        else:
            all_states = {str(state): 0.0 for state in JobState}
            families.append(
                metrics.gauge_family(
                    "reelscribe_jobs",
                    "Jobs stored in Postgres, by state (all users).",
                    "state",
                    {**all_states, **counts},
                )
            )
        try:
            depth = deps.queue.depth()
        except Exception as exc:
            log.warning("queue depth not collected", error=repr(exc))
        else:
            family = GaugeMetricFamily(
                "reelscribe_queue_messages",
                "Messages in the broker: ready to be taken, delayed (retry backoff), dead.",
                labels=["queue", "state"],
            )
            for state, count in depth.items():
                family.add_metric([self.settings.queue_name, state], count)
            families.append(family)
        return families

    @staticmethod
    async def _settle(search: SearchService | None) -> None:
        """Load the search model (if `search` is given), then keep the cycle
        collector out of the way of streams: everything loaded so far (the
        modules and, if preloaded, the model; a full collection over torch's
        millions of objects once stalled every stream for ~300 ms) is exempted,
        and collections run less often (most garbage here is freed by reference
        counting anyway). A model loaded
        later is exempted when it loads (`SearchService`)."""
        if search is not None:
            await search.warm_up()
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD_GEN0, 20, 100)

    async def stop(self, grace_s: float | None = None) -> None:
        """Shut down gracefully (idempotent; see `_shutdown`).

        `grace_s` defaults to the `shutdown_grace_s` setting.
        """
        if self._stopping is None:
            grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
            self._stopping = asyncio.create_task(self._shutdown(grace))
        # Shielded: a caller giving up must not leave the server half stopped.
        await asyncio.shield(self._stopping)

    async def _shutdown(self, grace_s: float) -> None:
        """Health NOT_SERVING, no new calls, streams told to resume elsewhere,
        unary calls in flight given `grace_s` to finish; then release resources."""
        log.info("server shutting down", grace_s=grace_s)
        if self._server is not None:
            # New calls are refused, and open streams end with UNAVAILABLE
            # (SERVER_SHUTTING_DOWN) saying how to resume: watchers are woken
            # by the hub, uploads at their next read.
            self.interceptor.begin_shutdown()
        if self._deps is not None:
            self._deps.hub.close_subscriptions()
        if self._workers is not None:
            await self._workers.stop()
        await self._health.enter_graceful_shutdown()
        # Both listeners refuse new connections and calls, wait for calls in
        # flight and cancel whatever is left after the grace.
        await asyncio.gather(
            *([self._server.stop(grace_s)] if self._server is not None and self._serving else []),
            *([self._web.stop(grace_s)] if self._web is not None else []),
        )
        if self._metrics is not None:
            await asyncio.to_thread(self._metrics.close)
        if self._warm_up is not None:
            self._warm_up.cancel()  # (the thread loading the model runs on regardless)
        if self._part_sweep is not None:
            self._part_sweep.cancel()
        if self._deps is not None:
            await self._deps.hub.stop()
            await self._deps.redis.aclose()
            try:
                await asyncio.wait_for(self._deps.pool.close(), timeout=5.0)
            except TimeoutError:
                self._deps.pool.terminate()
        log.info("server stopped")

    async def wait(self) -> None:
        """Block until the server terminates."""
        assert self._server is not None
        await self._server.wait_for_termination()


async def _count_jobs(pool: asyncpg.Pool) -> dict[str, float]:
    async with pool.acquire(timeout=2.0) as conn:
        return await jobs_db.count_by_state(conn)


async def serve(settings: Settings, *, grace_s: float | None = None) -> None:
    """Run a server until SIGINT or SIGTERM, then shut down gracefully.

    Calls in flight get `grace_s` (default: the `shutdown_grace_s` setting).
    """
    tracing.configure(settings, "reelscribe-server")
    app = ServerApp(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # A second signal changes nothing: the grace already bounds the shutdown.
    try:
        await app.stop(grace_s)
    finally:
        with contextlib.suppress(Exception):
            tracing.shutdown()
