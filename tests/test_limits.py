"""Rate limits, quotas, stream limits and default deadlines."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reelscribe.v1 import job_service_pb2
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.media import MEDIA_DIR
from tests.support.tokens import token_for

StartServer = Callable[..., Awaitable[ServerApp]]


def _api(channel: grpc.aio.Channel, user: str, plan: str = "premium") -> Api:
    return Api(channel, token_for(user, plan=plan))


async def _get(api: Api) -> grpc.StatusCode:
    try:
        await api.get(f"jobs/{uuid.uuid4()}")
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            info = error_details(exc)
            assert info["ErrorInfo"].reason == "RATE_LIMITED"
            retry = info["RetryInfo"].retry_delay
            assert retry.seconds + retry.nanos / 1e9 > 0
        return exc.code()
    return grpc.StatusCode.OK


async def test_rate_limit_is_shared_by_all_servers(extra_server: StartServer, user: str) -> None:
    limits = {"rate_limits": {"GetJob": (1.0, 2)}}
    a, b = await extra_server(**limits), await extra_server(**limits)
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{a.port}") as ca,
        grpc.aio.insecure_channel(f"127.0.0.1:{b.port}") as cb,
    ):
        api_a, api_b = _api(ca, user), _api(cb, user)
        codes = [await _get(api_a), await _get(api_b), await _get(api_a)]
        assert codes == [
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ]
        # Another user has a budget of their own; the first one refills.
        assert await _get(_api(ca, user + "-2")) == grpc.StatusCode.NOT_FOUND
        await asyncio.sleep(1.1)
        assert await _get(api_b) == grpc.StatusCode.NOT_FOUND


async def test_without_redis_work_creation_fails_closed(
    extra_server: StartServer, user: str
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}"
    app = await extra_server(
        redis_url=dead, rate_limits={}, rate_limit_per_s=10.0, rate_limit_burst=10
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = _api(channel, user)
        for call in (
            api.upload_bytes(b"abc", "a.ogg"),
            api.create("media/5f0c4a9e-1d57-4b8e-9a61-1f4ac1b0a111"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        # Reads still work (they fail open).
        assert await _get(api) == grpc.StatusCode.NOT_FOUND


async def test_free_plan_quotas(extra_server: StartServer, user: str) -> None:
    app = await extra_server(free_max_stored_jobs=3, free_audio_minutes_per_day=0.3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        free = _api(channel, user, plan="free")
        media = await free.upload(MEDIA_DIR / "ocean.ogg")  # 5.6 s of audio
        for _ in range(3):
            await free.create(media.name, skip_cache=True)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await free.create(media.name, skip_cache=True)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = error_details(err.value)
        assert details["ErrorInfo"].reason == "QUOTA_EXCEEDED"
        described = " ".join(v.description for v in details["QuotaFailure"].violations)
        assert "stored jobs" in described and "audio minutes" in described
        usage = await free.jobs.GetUsage(job_service_pb2.GetUsageRequest(), metadata=free.metadata)
        assert (usage.plan, usage.stored_jobs, usage.max_stored_jobs) == ("free", 3, 3)
        assert 0.27 < usage.audio_minutes_today < 0.29
        # Premium users have no such limits.
        premium = _api(channel, user + "-premium")
        media = await premium.upload(MEDIA_DIR / "ocean.ogg")
        for _ in range(4):
            await premium.create(media.name, skip_cache=True)
        usage = await premium.jobs.GetUsage(
            job_service_pb2.GetUsageRequest(), metadata=premium.metadata
        )
        assert usage.max_stored_jobs == 0 and usage.stored_jobs == 4


async def test_excess_streams_are_refused_while_health_answers(
    extra_server: StartServer, user: str
) -> None:
    app = await extra_server(max_concurrent_streams=2)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = _api(channel, user)
        streams = [
            api.jobs.WatchJobs(job_service_pb2.WatchJobsRequest(), metadata=api.metadata)
            for _ in range(2)
        ]
        await asyncio.sleep(0.3)
        third = api.jobs.WatchJobs(job_service_pb2.WatchJobsRequest(), metadata=api.metadata)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in third:
                pass
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=2
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        for stream in streams:
            stream.cancel()
        await asyncio.sleep(0.3)
        assert app.interceptor.open_streams == 0


async def test_calls_without_a_deadline_get_the_default(
    extra_server: StartServer, user: str
) -> None:
    app = await extra_server(default_call_timeout_s=0.000001)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = _api(channel, user)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=api.metadata)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # With a deadline of its own, the same call succeeds.
        await api.jobs.ListJobs(
            job_service_pb2.ListJobsRequest(), metadata=api.metadata, timeout=10
        )


async def _first_message(stream: grpc.aio.UnaryStreamCall) -> None:
    """Wait until `stream` is open and answering (its first heartbeat)."""
    async with asyncio.timeout(10):
        await stream.read()


async def test_one_user_cannot_take_every_stream(extra_server: StartServer, user: str) -> None:
    app = await extra_server(max_streams_per_user=3, watch_heartbeat_s=0.2)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        hog, other = _api(channel, user), _api(channel, user + "-other")

        def watch(api: Api) -> grpc.aio.UnaryStreamCall:
            return api.jobs.WatchJobs(job_service_pb2.WatchJobsRequest(), metadata=api.metadata)

        streams = [watch(hog) for _ in range(3)]
        for stream in streams:
            await _first_message(stream)
        refused = watch(hog)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await refused.read()
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = error_details(err.value)
        assert details["ErrorInfo"].reason == "TOO_MANY_STREAMS_FOR_USER"
        retry = details["RetryInfo"].retry_delay
        assert retry.seconds + retry.nanos / 1e9 > 0
        # Uploads count too: the same user cannot start one either.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hog.upload_bytes(b"abc", "a.ogg")
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Another user still gets a stream on the same server.
        theirs = watch(other)
        await _first_message(theirs)
        assert app.interceptor.open_streams == 4
        # Once one of the hog's streams closes, it may open another.
        streams[0].cancel()
        await asyncio.sleep(0.3)
        again = watch(hog)
        await _first_message(again)
        for stream in (*streams, theirs, again):
            stream.cancel()
        await asyncio.sleep(0.3)
        assert app.interceptor.open_streams == 0
