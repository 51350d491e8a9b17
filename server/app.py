"""Assembles and runs the gRPC server: services, health, reflection, shutdown."""

from __future__ import annotations

import asyncio
import signal

import grpc
import structlog
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from reelscribe import db, redis_client
from reelscribe.auth import JwksCache, TokenVerifier
from reelscribe.blobs import BlobStore
from reelscribe.config import Settings
from reelscribe.queue import JobQueue, make_broker
from reelscribe.ratelimit import Rate, RateLimiter
from reelscribe.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    search_service_pb2,
    search_service_pb2_grpc,
    transcript_service_pb2,
    transcript_service_pb2_grpc,
)
from server.deps import Deps
from server.hub import EventHub
from server.interceptors import CallInterceptor
from server.services.jobs import JobService
from server.services.search import SearchService
from server.services.transcripts import TranscriptService

log = structlog.get_logger(__name__)

SERVICE_NAMES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    transcript_service_pb2.DESCRIPTOR.services_by_name["TranscriptService"].full_name,
    search_service_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name,
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
        self._server: grpc.aio.Server | None = None
        self._deps: Deps | None = None
        self._health = health_aio.HealthServicer()

    @property
    def deps(self) -> Deps:
        """The shared resources (available after `start`)."""
        assert self._deps is not None
        return self._deps

    async def start(self, address: str | None = None) -> int:
        """Connect, migrate, bind and start serving; returns the bound port."""
        settings = self.settings
        pool = await db.create_pool(settings.database_url)
        async with pool.acquire() as conn:
            await db.apply_migrations(conn)
        redis = redis_client.connect(settings.redis_url)
        hub = EventHub(redis, buffer_events=settings.watch_buffer_events)
        await hub.start()
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
            blobs=BlobStore(settings.blob_dir),
            hub=hub,
        )
        verifier = TokenVerifier(
            settings.resolved_jwt_secret(),
            algorithms=settings.jwt_algorithms,
            leeway_s=settings.jwt_leeway_s,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
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
            default_timeout_s=settings.default_call_timeout_s,
        )
        server = grpc.aio.server(
            interceptors=[self.interceptor],
            options=[
                # Uploads arrive in 1 MiB chunks; leave room for framing.
                ("grpc.max_receive_message_length", settings.max_chunk_bytes + 64 * 1024),
                ("grpc.keepalive_time_ms", 60_000),
                ("grpc.keepalive_timeout_ms", 20_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        job_service_pb2_grpc.add_JobServiceServicer_to_server(JobService(self._deps), server)
        search = SearchService(self._deps)
        transcript_service_pb2_grpc.add_TranscriptServiceServicer_to_server(
            TranscriptService(self._deps, search), server
        )
        search_service_pb2_grpc.add_SearchServiceServicer_to_server(search, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        self.port = server.add_insecure_port(address or settings.listen_address)
        await server.start()
        for name in (*SERVICE_NAMES, ""):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        # Load the search model now, off the event loop, not on the first query.
        self._warm_up = asyncio.create_task(search.warm_up())
        log.info("server started", port=self.port)
        return self.port

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking calls, let in-flight ones finish within `grace_s`, release resources."""
        await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace_s)
        if self._deps is not None:
            await self._deps.hub.stop()
            await self._deps.redis.aclose()
            await self._deps.pool.close()
        log.info("server stopped")

    async def wait(self) -> None:
        """Block until the server terminates."""
        assert self._server is not None
        await self._server.wait_for_termination()


async def serve(settings: Settings, *, grace_s: float = 10.0) -> None:
    """Run a server until SIGINT or SIGTERM."""
    app = ServerApp(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop(grace_s)
