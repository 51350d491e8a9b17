"""Graceful shutdown: servers drain and exit within their grace; workers hand work back."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import grpc
import pytest
import redis as sync_redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cli.stack import worker_command
from reelscribe.config import Settings
from reelscribe.queue import JobQueue, make_broker, queue_names
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.jobs import frozen_job
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav
from tests.support.metrics import fetch_metrics
from tests.support.ports import free_port
from tests.support.processes import WorkerProcess, start_server_process
from tests.support.tokens import token_for
from workers.observability import requeue_prefetched

StartServer = Callable[..., Awaitable[ServerApp]]
UPLOAD_SIZE = 1024 * 1024
FIRST_PART = 256 * 1024


def _assert_shutting_down(exc: grpc.aio.AioRpcError, hint: str) -> None:
    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
    details = error_details(exc)
    assert details["ErrorInfo"].reason == "SERVER_SHUTTING_DOWN"
    retry = details["RetryInfo"].retry_delay
    assert retry.seconds + retry.nanos / 1e9 > 0
    assert "shutting down" in (exc.details() or "") and hint in (exc.details() or "")


async def _blocked_by(lock: asyncpg.Connection) -> int:
    """How many sessions wait for a lock that `lock` holds."""
    return int(
        await lock.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
    )


async def _call_blocked_by(lock: asyncpg.Connection, call: Awaitable[Any]) -> asyncio.Future[Any]:
    """Start `call` and return once it waits for `lock` (one more session blocked by it)."""
    before = await _blocked_by(lock)
    task = asyncio.ensure_future(call)
    for _ in range(200):
        if await _blocked_by(lock) > before:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError("the call never waited for the lock")


async def test_stop_drains_streams_and_lets_unary_calls_finish(
    extra_server: StartServer, server: ServerApp, user: str, settings: Settings, idle_queue: str
) -> None:
    app = await extra_server(queue_name=idle_queue)
    data = (MEDIA_DIR / "ocean.ogg").read_bytes()[:UPLOAD_SIZE].ljust(UPLOAD_SIZE, b"\0")
    upload_id = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user))
        media = await api.upload(MEDIA_DIR / "ocean.ogg")
        job = await api.create(media.name, skip_cache=True)
        async with frozen_job(settings, job.name) as lock:
            # Open: a health watcher, both kinds of watch, an upload half sent.
            health = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            assert (await health.read()).status == health_pb2.HealthCheckResponse.SERVING
            watch = api.jobs.WatchJob(
                job_service_pb2.WatchJobRequest(name=job.name), metadata=api.metadata
            )
            assert (await watch.read()).event.kind == job_pb2.JOB_EVENT_KIND_SNAPSHOT
            watch_all = api.jobs.WatchJobs(
                job_service_pb2.WatchJobsRequest(), metadata=api.metadata
            )
            assert (await watch_all.read()).event.job.name == job.name

            async def half_upload() -> AsyncIterator[job_service_pb2.UploadMediaRequest]:
                header = job_service_pb2.UploadHeader(
                    filename="big.ogg",
                    size_bytes=UPLOAD_SIZE,
                    sha256=hashlib.sha256(data).hexdigest(),
                    upload_id=upload_id,
                )
                yield job_service_pb2.UploadMediaRequest(header=header)
                yield job_service_pb2.UploadMediaRequest(chunk=data[:FIRST_PART])
                await gone.wait()  # the rest never comes

            gone = asyncio.Event()

            upload = api.jobs.UploadMedia(half_upload(), metadata=api.metadata)
            for _ in range(100):
                with contextlib.suppress(grpc.aio.AioRpcError):  # header not read yet
                    status = await api.jobs.GetUpload(
                        job_service_pb2.GetUploadRequest(upload_id=upload_id),
                        metadata=api.metadata,
                    )
                    if status.stored_bytes == FIRST_PART:
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the first part of the upload was never stored")
            # A unary call in flight: CancelJob waits for the job's row lock.
            cancel = await _call_blocked_by(lock, api.cancel(job.name))

            started = time.monotonic()
            stopping = asyncio.create_task(app.stop(grace_s=20))
            # Health turns NOT_SERVING at once.
            reply = await asyncio.wait_for(health.read(), 5)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            health.cancel()  # (a health watcher would otherwise hold the server to its grace)
            # Every stream ends telling the client how to resume.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                while True:
                    reply_event = await asyncio.wait_for(watch.read(), 5)
                    assert reply_event is not grpc.aio.EOF
            _assert_shutting_down(err.value, "after_seq")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                while True:
                    assert await asyncio.wait_for(watch_all.read(), 5) is not grpc.aio.EOF
            _assert_shutting_down(err.value, "after_cursor")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await asyncio.wait_for(upload, 5)
            _assert_shutting_down(err.value, "offset_bytes")
            gone.set()
            # New calls are refused.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.jobs.ListJobs(
                    job_service_pb2.ListJobsRequest(), metadata=api.metadata, timeout=5
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            # The unary call is still running, and so is the shutdown.
            await asyncio.sleep(0.5)
            assert not cancel.done() and not stopping.done()
            assert await lock.fetchval("SELECT 1") == 1  # still held; released on leaving
        # The lock is gone: the call in flight completes, then the server stops.
        cancelled = await asyncio.wait_for(cancel, 10)
        assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
        await asyncio.wait_for(stopping, 10)
        assert time.monotonic() - started < 10  # well within the 20 s grace

    # The upload resumes on another server from what the first one stored.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        api = Api(channel, token_for(user))
        status = await api.jobs.GetUpload(
            job_service_pb2.GetUploadRequest(upload_id=upload_id), metadata=api.metadata
        )
        assert status.stored_bytes == FIRST_PART
        header = job_service_pb2.UploadHeader(
            filename="big.ogg",
            size_bytes=UPLOAD_SIZE,
            sha256=hashlib.sha256(data).hexdigest(),
            upload_id=upload_id,
            offset_bytes=FIRST_PART,
        )

        async def rest() -> AsyncIterator[job_service_pb2.UploadMediaRequest]:
            yield job_service_pb2.UploadMediaRequest(header=header)
            yield job_service_pb2.UploadMediaRequest(chunk=data[FIRST_PART:])

        reply = await api.jobs.UploadMedia(rest(), metadata=api.metadata, timeout=30)
        assert reply.media.size_bytes == UPLOAD_SIZE


async def test_calls_still_running_at_the_end_of_the_grace_are_cut(
    extra_server: StartServer, api: Api, user: str, settings: Settings, idle_queue: str
) -> None:
    app = await extra_server(queue_name=idle_queue)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        own = Api(channel, token_for(user))
        job = await own.create((await own.upload(MEDIA_DIR / "ocean.ogg")).name, skip_cache=True)
        async with frozen_job(settings, job.name) as lock:
            cancel = await _call_blocked_by(lock, own.cancel(job.name))
            started = time.monotonic()
            await asyncio.wait_for(app.stop(grace_s=1.0), 10)
            assert 1.0 <= time.monotonic() - started < 8
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await asyncio.wait_for(cancel, 5)
            assert err.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    # The cut call changed nothing: the job is still there to cancel elsewhere.
    assert (await api.cancel(job.name)).state == job_pb2.JOB_STATE_CANCELLED


async def test_server_process_exits_zero_within_its_grace_on_sigterm(
    settings: Settings, tmp_path: Path, user: str, api: Api, idle_queue: str
) -> None:
    log_path = tmp_path / "server.log"
    proc, port = await start_server_process(
        settings, log_path, REELSCRIBE_SHUTDOWN_GRACE_S="5", REELSCRIBE_QUEUE_NAME=idle_queue
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            own = Api(channel, token_for(user))
            media = await own.upload(MEDIA_DIR / "ocean.ogg")
            job = await own.create(media.name, skip_cache=True)
            async with frozen_job(settings, job.name):
                watch = own.jobs.WatchJob(
                    job_service_pb2.WatchJobRequest(name=job.name), metadata=own.metadata
                )
                await watch.read()
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    while True:
                        assert await asyncio.wait_for(watch.read(), 5) is not grpc.aio.EOF
                _assert_shutting_down(err.value, "after_seq")
                code = await asyncio.wait_for(proc.wait(), 15)
                elapsed = time.monotonic() - started
        await api.cancel(job.name)  # through the session server, as its owner
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 0, log_path.read_text()
    # Nothing was in flight: the exit does not wait for the grace (nor for
    # the search model still loading in the background).
    assert elapsed < 5, log_path.read_text()
    assert '"server stopped"' in log_path.read_text()


# -- workers -------------------------------------------------------------------------------


def test_worker_command_passes_the_shutdown_timeout() -> None:
    cmd = worker_command(2, 1, 12.5)
    assert cmd[cmd.index("--worker-shutdown-timeout") + 1] == "12500"
    assert "--worker-shutdown-timeout" not in worker_command(2, 1)


def test_prefetched_messages_go_back_to_the_queue(settings: Settings, idle_queue: str) -> None:
    """What a consumer fetched but never started is requeued on shutdown at once
    (Dramatiq alone leaves it in the worker's ack set until its heartbeat expires)."""
    broker = make_broker(settings.redis_url)
    try:
        queue = JobQueue(broker, idle_queue)
        ids = [queue.enqueue_sync(queue.message("prepare_job", uuid.uuid4())) for _ in range(3)]
        consumer = broker.consume(idle_queue, prefetch=3, timeout=100)
        first = next(consumer)
        while first is None:
            first = next(consumer)
        assert broker.client.llen(f"dramatiq:{idle_queue}") == 0  # all three fetched
        worker = SimpleNamespace(consumers={idle_queue: SimpleNamespace(consumer=consumer)})
        assert requeue_prefetched(worker) == 2
        queued = [m.decode() for m in broker.client.lrange(f"dramatiq:{idle_queue}", 0, -1)]
        assert sorted(queued) == sorted(i for i in ids if i != first.options["redis_message_id"])
        assert queue.depth()["ready"] == 2
        assert requeue_prefetched(worker) == 0  # nothing twice
    finally:
        broker.close()


def _queues(queue_name: str) -> tuple[str, ...]:
    """The job queue, the queue of started jobs' stages and the short jobs' lane."""
    return queue_names(queue_name)


def _acks(client: sync_redis.Redis, queue_name: str) -> set[str]:
    """Message ids in any worker's ack sets for the job's queues (taken, not finished)."""
    found: set[str] = set()
    for name in _queues(queue_name):
        for key in client.scan_iter(f"dramatiq:__acks__.*.{name}"):
            found |= {m.decode() for m in client.smembers(key)}
    return found


@pytest.fixture(scope="module")
def lecture_90s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lecture_wav(tmp_path_factory.mktemp("shutdown") / "lecture.wav", repeat=4)


async def test_worker_sigterm_finishes_the_running_stage_and_returns_the_rest(
    extra_server: StartServer,
    settings: Settings,
    user: str,
    tmp_path: Path,
    idle_queue: str,
    lecture_90s: Path,
) -> None:
    metrics_port = free_port()
    worker = WorkerProcess(
        settings,
        tmp_path / "worker.log",
        extra_env={
            "REELSCRIBE_QUEUE_NAME": idle_queue,
            "REELSCRIBE_WORKER_METRICS_PORT": str(metrics_port),
            "REELSCRIBE_WORKER_METRICS_DIR": str(tmp_path / "metrics"),
            # This worker must not re-send other tests' jobs to its queue.
            "REELSCRIBE_RECONCILE_INTERVAL_S": "3600",
        },
        threads=1,
    )
    worker.start()
    client = sync_redis.Redis.from_url(settings.redis_url)
    jobs: list[str] = []
    app = await extra_server(queue_name=idle_queue)
    try:
        # Every worker process consumes once the metrics exporter answers.
        for _ in range(300):
            try:
                await asyncio.to_thread(fetch_metrics, metrics_port)
                break
            except OSError:
                await asyncio.sleep(0.2)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            api = Api(channel, token_for(user))
            long = await api.create((await api.upload(lecture_90s)).name, skip_cache=True)
            jobs.append(long.name)
            for _ in range(600):  # until its one 90 s chunk is being transcribed
                current = await api.get(long.name)
                if current.stage == job_pb2.STAGE_TRANSCRIBE:
                    break
                await asyncio.sleep(0.1)
            assert current.stage == job_pb2.STAGE_TRANSCRIBE, current
            # ...and a worker thread has claimed it (the stage is set when the
            # chunk is sent, a little before it starts).
            conn = await asyncpg.connect(settings.database_url)
            try:
                for _ in range(600):
                    claimed = await conn.fetchval(
                        "SELECT count(*) FROM chunks WHERE job_id = $1 AND attempts > 0",
                        uuid.UUID(long.name.split("/")[1]),
                    )
                    if claimed:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await conn.close()
            assert claimed == 1
            short = await api.upload(MEDIA_DIR / "ocean.ogg")
            for _ in range(2):
                jobs.append((await api.create(short.name, skip_cache=True)).name)
            # The chunk running (stages queue) and at least one prepare prefetched
            # behind it (job queue).
            for _ in range(100):
                taken = _acks(client, idle_queue)
                if len(taken) >= 2:
                    break
                await asyncio.sleep(0.05)
            assert len(taken) >= 2, taken

            assert worker.proc is not None
            worker.proc.terminate()  # SIGTERM to Dramatiq's main process
            code = await asyncio.wait_for(asyncio.to_thread(worker.proc.wait), 120)
            assert code == 0
            # Nothing is left taken: the running message finished and was acked,
            # the prefetched one is back in the queue for any worker to take now.
            assert _acks(client, idle_queue) == set()
            queued = {
                m.decode()
                for name in _queues(idle_queue)
                for m in client.lrange(f"dramatiq:{name}", 0, -1)
            }
            held = {
                m
                for m in taken
                if any(client.hexists(f"dramatiq:{name}.msgs", m) for name in _queues(idle_queue))
            }
            finished = taken - held
            # The running stage finished (a prefetched one may have started and
            # finished too); every other taken message is back in a queue.
            assert finished
            assert held <= queued
            # The stage that was running completed (it was not cut short).
            conn = await asyncpg.connect(settings.database_url)
            try:
                done = await conn.fetchval(
                    "SELECT count(*) FROM chunks WHERE job_id = $1 AND state <> 'PENDING'",
                    uuid.UUID(long.name.split("/")[1]),
                )
            finally:
                await conn.close()
            assert done == 1
            log = (tmp_path / "worker.log").read_text()
            assert "Worker has been shut down" in log
    finally:
        worker.stop()
        client.close()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            api = Api(channel, token_for(user))
            for name in jobs:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await api.cancel(name)
