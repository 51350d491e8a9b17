"""Workers, servers and the CLI as subprocesses, started the way `reelscribe up` starts them.

Their environment is the CLI's own (`cli.stack.child_env`), plus only what the
test stack sets differently: its queue, fast progress, quick fault recovery,
the test URL network and webhook settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cli.stack import child_env, server_command, worker_command
from reelscribe.config import Settings
from tests.support.media import POISON_SHA256
from tests.support.ports import free_port
from tests.support.settings import URL_TEST_NETWORK, WEBHOOK_SECRET
from workers.supervisor import worker_environ

#: `reelscribe` run from source (the console script may belong to another checkout).
CLI = (sys.executable, "-m", "cli.main")


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a test worker on `settings`' stack."""
    # As `reelscribe worker`'s supervisor starts them (test workers run without it).
    env = worker_environ(child_env(settings, settings.database_url, settings.redis_url))
    env.update(
        {
            "REELSCRIBE_QUEUE_NAME": settings.queue_name,
            "REELSCRIBE_WHISPER_MODEL_NAME": settings.whisper_model_name,
            "REELSCRIBE_PROGRESS_MIN_INTERVAL_S": str(settings.progress_min_interval_s),
            "REELSCRIBE_WORKER_METRICS_PORT": str(settings.worker_metrics_port),
            # Fault drills: a dead worker's messages come back within seconds,
            # the reconciler sweeps every second, and one file kills its worker.
            "REELSCRIBE_BROKER_HEARTBEAT_TIMEOUT_S": "8",
            "REELSCRIBE_BROKER_MAINTENANCE_CHANCE": "300000",
            "REELSCRIBE_RECONCILE_INTERVAL_S": "1",
            "REELSCRIBE_RECONCILE_GRACE_S": "2",
            "REELSCRIBE_FAULT_KILL_ON_SHA256": POISON_SHA256,
            # The test media server listens on 127.0.0.2, the only
            # non-public address URL sources may reach in tests.
            "REELSCRIBE_URL_ALLOWED_NETWORKS": f'["{URL_TEST_NETWORK}"]',
            "REELSCRIBE_URL_FETCH_TIMEOUT_S": "5",
            "REELSCRIBE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "REELSCRIBE_WEBHOOK_MAX_ATTEMPTS": "3",
            "REELSCRIBE_WEBHOOK_BACKOFF_S": "0.2",
            "REELSCRIBE_WEBHOOK_TIMEOUT_S": "1",
        }
    )
    return env


class WorkerProcess:
    """A real Dramatiq worker (`reelscribe worker`'s command) in a subprocess."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        threads: int = 2,
    ) -> None:
        self._settings = settings
        self._log_path = log_path
        self._extra_env = extra_env or {}
        self._threads = threads
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker (one process, `threads` threads), logging to `log_path`."""
        log = open(self._log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            worker_command(1, self._threads),
            env={**worker_env(self._settings), **self._extra_env},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    def ensure_running(self) -> None:
        """Restart the worker if it exited (as a process supervisor would)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            self.start()

    def signal_all(self, sig: int) -> None:
        """Send `sig` to the worker's whole process group (main + worker processes)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL the group if it has not stopped within 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.signal_all(signal.SIGCONT)
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.signal_all(signal.SIGKILL)
            self.proc.wait()


def server_env(settings: Settings, port: int, **extra: str) -> dict[str, str]:
    """The environment of a server subprocess on the test stack, listening on `port`."""
    listening = settings.model_copy(update={"listen_address": f"127.0.0.1:{port}"})
    env = child_env(listening, settings.database_url, settings.redis_url)
    env.update({"REELSCRIBE_METRICS_PORT": "0", "REELSCRIBE_LOG_FORMAT": "json", **extra})
    return env


async def start_server_process(
    settings: Settings, log_path: Path, **extra: str
) -> tuple[asyncio.subprocess.Process, int]:
    """The server as `reelscribe up` starts it, logging to `log_path`; returns it once healthy."""
    port = free_port()
    with log_path.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *server_command(),
            env=server_env(settings, port, **extra),
            stdout=out,
            stderr=out,
        )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return proc, port
            except grpc.aio.AioRpcError:
                pass
            if proc.returncode is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"server did not start:\n{log_path.read_text()}")
            await asyncio.sleep(0.2)


def client_env(port: int, token: str, **extra: str) -> dict[str, str]:
    """The environment of a client process (the CLI, the Node example) calling the
    server on `port` with `token`."""
    return {
        **os.environ,
        "REELSCRIBE_TOKEN": token,
        "REELSCRIBE_SERVER_ADDRESS": f"127.0.0.1:{port}",
        **extra,
    }
