"""The real stack for the test suite.

Postgres and Valkey come from their pip packages (or from
REELSCRIBE_TEST_DATABASE_URL / REELSCRIBE_TEST_REDIS_URL when set), a real
Dramatiq worker runs as a subprocess, and the grpc.aio server runs in the test
event loop on a loopback port chosen by the OS.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import pytest

from reelscribe.auth import mint_token
from reelscribe.config import Settings
from reelscribe.embedded import EmbeddedUrls, embedded_stack
from server.app import ServerApp
from tests.helpers import Api

JWT_SECRET = "test-secret-" + "x" * 40
MEDIA_DIR = Path(__file__).parent / "media"
#: Media the test worker treats as a decoder crash (see `fault_kill_on_sha256`).
POISON = MEDIA_DIR / "poison.ogg"
POISON_SHA256 = hashlib.sha256(POISON.read_bytes()).hexdigest()
URL_TEST_NETWORK = "127.0.0.2/32"
WEBHOOK_SECRET = "webhook-test-secret"


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="reelscribe-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def stack(data_dir: Path) -> Iterator[EmbeddedUrls]:
    with embedded_stack(
        data_dir,
        database_url=os.environ.get("REELSCRIBE_TEST_DATABASE_URL", ""),
        redis_url=os.environ.get("REELSCRIBE_TEST_REDIS_URL", ""),
    ) as urls:
        yield urls


@pytest.fixture(scope="session")
def settings(data_dir: Path, stack: EmbeddedUrls) -> Settings:
    return Settings(
        database_url=stack.database_url,
        redis_url=stack.redis_url,
        data_dir=data_dir,
        jwt_secret=JWT_SECRET,
        listen_address="127.0.0.1:0",
        # A per-run queue keeps a shared external Redis from mixing runs.
        queue_name=f"reelscribe-test-{os.getpid()}",
        watch_heartbeat_s=1.0,
        watch_buffer_events=16,
        # The shared test server is generous; limits are tested on servers of their own.
        rate_limit_per_s=1000.0,
        rate_limit_burst=1000,
        rate_limits={},
        url_allowed_networks=(URL_TEST_NETWORK,),
        progress_min_interval_s=0.05,
        # Metrics endpoints are tested on servers and workers of their own.
        metrics_port=0,
        worker_metrics_port=0,
    )


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "REELSCRIBE_DATABASE_URL": settings.database_url,
            "REELSCRIBE_REDIS_URL": settings.redis_url,
            "REELSCRIBE_DATA_DIR": str(settings.data_dir),
            "REELSCRIBE_JWT_SECRET": JWT_SECRET,
            "REELSCRIBE_QUEUE_NAME": settings.queue_name,
            "REELSCRIBE_PROGRESS_MIN_INTERVAL_S": "0.05",
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
            "HF_HUB_OFFLINE": "1",
        }
    )
    return env


class WorkerProcess:
    """A real Dramatiq worker (`reelscribe worker`) in a subprocess."""

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
        log = open(self._log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dramatiq",
                "workers.actors",
                "--processes",
                "1",
                "--threads",
                str(self._threads),
            ],
            env={**_env(self._settings), **self._extra_env},
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


@pytest.fixture(scope="session")
def worker(settings: Settings, data_dir: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(settings, data_dir / "worker.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
async def server(settings: Settings, worker: WorkerProcess) -> AsyncIterator[ServerApp]:
    app = ServerApp(settings)
    await app.start()
    yield app
    await app.stop(grace_s=1.0)


@pytest.fixture(scope="session")
async def channel(server: ServerApp) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def token_for(user: str, **kwargs: object) -> str:
    """A valid token for `user` (premium unless a plan is given: quotas have their own tests)."""
    kwargs.setdefault("plan", "premium")
    return mint_token(JWT_SECRET, user, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A user id unique to the test, so tests never see each other's jobs."""
    return f"user-{request.node.name}-{os.urandom(4).hex()}"


@pytest.fixture
def api(channel: grpc.aio.Channel, user: str) -> Api:
    return Api(channel, token_for(user))


@pytest.fixture
def other_api(channel: grpc.aio.Channel, user: str) -> Api:
    return Api(channel, token_for(user + "-other"))


@pytest.fixture
async def extra_server(
    settings: Settings, server: ServerApp
) -> AsyncIterator[Callable[..., Awaitable[ServerApp]]]:
    """Start more servers on the same stack with some settings changed."""
    started: list[ServerApp] = []

    async def start(**overrides: object) -> ServerApp:
        app = ServerApp(settings.model_copy(update=overrides))
        await app.start()
        started.append(app)
        return app

    yield start
    for app in started:
        await app.stop(grace_s=0.2)
