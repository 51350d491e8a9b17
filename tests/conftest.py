"""The real stack for the test suite.

Postgres and Valkey come from their pip packages (or from
REELSCRIBE_TEST_DATABASE_URL / REELSCRIBE_TEST_REDIS_URL when set), a real
Dramatiq worker runs as a subprocess, and the grpc.aio server runs in the test
event loop on a loopback port chosen by the OS. Helpers the fixtures and tests
share are in tests/support.

Every test whose fixtures reach the stack is marked `stack`, so
`pytest -m "not stack"` runs the unit tests alone, starting no service.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import pytest
import redis as sync_redis

from reelscribe.config import Settings
from reelscribe.embedded import EmbeddedUrls, embedded_stack
from server.app import ServerApp
from tests.support import ports
from tests.support.api import Api
from tests.support.processes import WorkerProcess
from tests.support.settings import URL_TEST_NETWORK, WEB_TEST_ORIGIN, stack_settings
from tests.support.tokens import token_for

#: Fixtures that start Postgres and Valkey: the session stack, and the drills'
#: private one. Whatever depends on them (settings, worker, server, api, ...)
#: reaches them too.
STACK_FIXTURES = frozenset({"stack", "drills"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `stack` every test whose fixture closure reaches a stack fixture."""
    for item in items:
        if STACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


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
    return stack_settings(
        database_url=stack.database_url,
        redis_url=stack.redis_url,
        data_dir=data_dir,
        # A per-run queue keeps a shared external Redis from mixing runs.
        queue_name=f"reelscribe-test-{os.getpid()}",
        url_allowed_networks=(URL_TEST_NETWORK,),
        # Metrics endpoints are tested on servers and workers of their own.
        worker_metrics_port=0,
        # gRPC-Web beside native gRPC (`server.web_address`), for browser tests too.
        web_listen="127.0.0.1:0",
        web_cors_origins=(WEB_TEST_ORIGIN,),
    )


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


@pytest.fixture
def idle_queue(settings: Settings) -> Iterator[str]:
    """A queue of the test's own that no worker consumes unless the test starts
    one on it; its keys (messages, and any worker's acks) are removed afterwards."""
    name = f"idle-{uuid.uuid4().hex[:8]}"
    yield name
    client = sync_redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(f"dramatiq:*{name}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def short_chunk_worker(settings: Settings, data_dir: Path) -> Iterator[str]:
    """A worker on a queue of its own that cuts chunks of about 20 s (at least
    20 s each), for tests that need a short recording in several chunks."""
    queue = f"chunks-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        settings.model_copy(update={"queue_name": queue}),
        data_dir / f"{queue}.log",
        extra_env={"REELSCRIBE_CHUNK_TARGET_S": "20"},
        threads=2,
    )
    worker.start()
    yield queue
    worker.stop()


@pytest.fixture
def free_port() -> int:
    """A loopback port with nothing listening."""
    return ports.free_port()
