"""A worker pool that loses a process keeps processing, and health says whether any worker runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reelscribe.config import Settings
from reelscribe.v1 import job_pb2
from server.app import ServerApp
from server.liveness import WORKERS_SERVICE
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from tests.support.processes import worker_env
from tests.support.tokens import token_for
from workers.supervisor import MALLOC_DEFAULTS

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _workers_status(app: ServerApp) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=WORKERS_SERVICE), timeout=5
        )
        return int(reply.status)


async def _eventually(check: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.5)


async def test_health_reports_whether_workers_consume_the_queue(
    server: ServerApp, extra_server: Callable[..., Awaitable[ServerApp]]
) -> None:
    async def serving() -> bool:
        return await _workers_status(server) == SERVING

    await _eventually(serving, 30)
    # Overall health describes the server alone and stays SERVING.
    lonely = await extra_server(queue_name=f"nobody-consumes-{os.getpid()}")
    assert await _workers_status(lonely) == NOT_SERVING
    async with grpc.aio.insecure_channel(f"127.0.0.1:{lonely.port}") as channel:
        overall = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert overall.status == SERVING


@pytest.fixture
def supervised_pool(settings: Settings, data_dir: Path) -> Iterator[tuple[psutil.Process, str]]:
    """A supervised worker group of two processes on a queue of its own."""
    queue = f"supervised-{os.getpid()}"
    log = open(data_dir / "supervised.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "workers.supervisor", "--",
            sys.executable, "-m", "dramatiq", "workers.actors",
            "--processes", "2", "--threads", "1", "--worker-shutdown-timeout", "2000",
        ],
        # Without the malloc settings the test workers otherwise get: the
        # supervisor sets them for its group.
        env={
            **{k: v for k, v in worker_env(settings).items() if k not in MALLOC_DEFAULTS},
            "REELSCRIBE_QUEUE_NAME": queue,
        },
        stdout=log,
        stderr=log,
        start_new_session=True,
    )  # fmt: skip
    supervisor = psutil.Process(proc.pid)
    yield supervisor, queue
    leftovers = supervisor.children(recursive=True)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    finally:
        for child in leftovers:
            if child.is_running():
                child.kill()
        log.close()


def _worker_processes(supervisor: psutil.Process) -> list[psutil.Process]:
    """The Dramatiq worker processes (grandchildren: supervisor → main → workers)."""
    return [p for main in supervisor.children() for p in main.children()]


async def test_a_killed_worker_process_does_not_stop_processing(
    supervised_pool: tuple[psutil.Process, str],
    extra_server: Callable[..., Awaitable[ServerApp]],
    user: str,
) -> None:
    supervisor, queue = supervised_pool
    app = await extra_server(queue_name=queue)

    async def two_workers() -> bool:
        return len(_worker_processes(supervisor)) == 2 and await _workers_status(app) == SERVING

    await _eventually(two_workers, 90)
    # Worker processes run with glibc's arenas bounded (workers.supervisor).
    for proc in _worker_processes(supervisor):
        assert proc.environ().get("MALLOC_ARENA_MAX") == MALLOC_DEFAULTS["MALLOC_ARENA_MAX"]
    victim = _worker_processes(supervisor)[0]
    os.kill(victim.pid, signal.SIGKILL)

    # The group is restarted, and a job submitted afterwards completes.
    async def restarted() -> bool:
        workers = _worker_processes(supervisor)
        return len(workers) == 2 and victim.pid not in {w.pid for w in workers}

    await _eventually(restarted, 90)
    assert supervisor.is_running()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user))
        job = await api.run(MEDIA_DIR / "volcano.ogg")
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
