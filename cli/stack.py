"""Running the server and workers as child processes (`reelscribe up`)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from reelscribe import db
from reelscribe.config import Settings
from reelscribe.embedded import EmbeddedUrls, embedded_stack
from reelscribe.embedded_s3 import embedded_s3


def child_env(settings: Settings, database_url: str, redis_url: str) -> dict[str, str]:
    """The environment for server and worker children: same settings, concrete URLs."""
    env = dict(os.environ)
    env.update(
        {
            "REELSCRIBE_DATABASE_URL": database_url,
            "REELSCRIBE_REDIS_URL": redis_url,
            "REELSCRIBE_DATA_DIR": str(settings.data_dir),
            "REELSCRIBE_JWT_SECRET": settings.resolved_jwt_secret(),
            "REELSCRIBE_LISTEN_ADDRESS": settings.listen_address,
            "REELSCRIBE_WEB_LISTEN": settings.web_listen,
            "REELSCRIBE_BLOB_BACKEND": settings.blob_backend,
            "HF_HUB_OFFLINE": "1",
        }
    )
    if settings.blob_backend == "s3":
        env.update(
            {
                "REELSCRIBE_S3_ENDPOINT_URL": settings.s3_endpoint_url,
                "REELSCRIBE_S3_BUCKET": settings.s3_bucket,
                "REELSCRIBE_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
                "REELSCRIBE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),
            }
        )
    return env


def server_command() -> list[str]:
    """The invocation that runs the gRPC server (`server.process.main`)."""
    return [sys.executable, "-m", "server"]


def worker_command(
    processes: int, threads: int, shutdown_timeout_s: float | None = None
) -> list[str]:
    """The Dramatiq CLI invocation that runs the pipeline actors.

    On SIGTERM Dramatiq stops taking messages, returns the ones it holds to
    the queue and waits up to `shutdown_timeout_s` for running stages (its own
    default is 10 minutes); stages still running then are redelivered to other
    workers once this one's heartbeat times out.
    """
    cmd = [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.actors",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    if shutdown_timeout_s is not None:
        cmd += ["--worker-shutdown-timeout", str(max(int(shutdown_timeout_s * 1000), 100))]
    return cmd


def ensure_free(address: str, *, setting: str = "REELSCRIBE_LISTEN_ADDRESS") -> None:
    """Refuse to start a stack on an address something already listens on.

    A second server there would fail to bind, but only after another server's
    health checks had already answered for it.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdecimal() or int(port) == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the servers bind: connections of a stack that just stopped, left
        # in TIME_WAIT, do not hold the address; only a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise RuntimeError(
                    f"{address} is already in use (another server?); "
                    f"set {setting} to another address"
                ) from exc


def supervised(command: list[str]) -> list[str]:
    """`command` (a Dramatiq worker group) run under `workers.supervisor`, which
    restarts the group when one of its processes dies (Dramatiq would otherwise
    stop them all)."""
    return [sys.executable, "-m", "workers.supervisor", "--", *command]


def wait_healthy(
    address: str, timeout_s: float = 60.0, server: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until the server at `address` reports SERVING.

    With `server`, fail as soon as that process exits: another server already
    answering on the address must not pass for ours.
    """
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if server is not None and server.poll() is not None:
                raise RuntimeError(
                    f"the server exited (code {server.returncode}) before it was healthy; "
                    f"is {address} already in use? (see its log)"
                )
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server at {address} did not become healthy")
            time.sleep(0.2)


def migrate(database_url: str) -> list[int]:
    """Apply pending migrations; returns the versions applied."""
    import asyncio

    async def _run() -> list[int]:
        pool = await db.create_pool(database_url, max_size=1)
        try:
            async with pool.acquire() as conn:
                return await db.apply_migrations(conn)
        finally:
            await pool.close()

    return asyncio.run(_run())


@dataclass(frozen=True)
class RunningStack:
    """What `running_stack` started."""

    #: Where the server answers.
    address: str
    #: Where its gRPC-Web listener and the web console answer (`host:port`; "" if off).
    web_address: str
    #: The database and Redis in use (embedded or configured).
    urls: EmbeddedUrls
    #: The server process.
    server: subprocess.Popen[bytes]
    #: The supervised Dramatiq worker group (None when started without workers).
    worker: subprocess.Popen[bytes] | None


@contextmanager
def running_stack(
    settings: Settings,
    *,
    quiet: bool = False,
    workers: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[RunningStack]:
    """Embedded services (unless configured), migrations, a server and (by default) a worker.

    Children get `settings`' URLs, data dir, secret and listen addresses, plus
    `extra_env`; the server listens for gRPC-Web (and serves the web console)
    on `web_listen`, else `up_web_listen`. On exit, children stop first, then
    the services.
    """
    settings = settings.model_copy(
        update={"web_listen": settings.web_listen or settings.up_web_listen}
    )
    ensure_free(settings.listen_address)
    if settings.web_listen:
        ensure_free(settings.web_listen, setting="REELSCRIBE_WEB_LISTEN")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    with (
        embedded_stack(
            settings.data_dir, database_url=settings.database_url, redis_url=settings.redis_url
        ) as urls,
        contextlib.ExitStack() as services,
    ):
        if settings.blob_backend == "s3" and not settings.s3_endpoint_url:
            # `up --s3` without a store of its own: SeaweedFS beside Postgres and Valkey.
            s3 = services.enter_context(embedded_s3(settings.data_dir, bucket=settings.s3_bucket))
            settings = settings.model_copy(
                update={
                    "s3_endpoint_url": s3.endpoint_url,
                    "s3_access_key_id": s3.access_key_id,
                    "s3_secret_access_key": SecretStr(s3.secret_access_key),
                }
            )
        migrate(urls.database_url)
        env = {**child_env(settings, urls.database_url, urls.redis_url), **(extra_env or {})}
        out = open(log_dir / "stack.log", "ab") if quiet else None  # noqa: SIM115
        # Children get a session of their own: a Ctrl-C on the terminal reaches
        # only us, and we send each child exactly one SIGTERM. (A second one
        # makes Dramatiq kill its workers at once instead of letting stages finish.)
        server = subprocess.Popen(
            server_command(),
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        worker = None
        if workers:
            worker = subprocess.Popen(
                supervised(
                    worker_command(
                        settings.worker_processes,
                        settings.worker_threads,
                        settings.worker_shutdown_timeout_s,
                    )
                ),
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        # How long each child may take to stop before it is killed: its grace plus
        # a margin for releasing resources.
        limits = {
            server: settings.shutdown_grace_s + 10.0,
            worker: settings.worker_shutdown_timeout_s + 10.0,
        }
        children = [c for c in (server, worker) if c is not None]
        try:
            wait_healthy(settings.server_address, server=server)
            yield RunningStack(settings.server_address, settings.web_listen, urls, server, worker)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + max(limits[c] for c in children)
            for child in children:
                try:
                    child.wait(timeout=max(min(limits[child], deadline - time.monotonic()), 0.1))
                except subprocess.TimeoutExpired:
                    # The worker's main process forwards signals to its processes;
                    # killing the group leaves none of them behind.
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            if out is not None:
                out.close()
