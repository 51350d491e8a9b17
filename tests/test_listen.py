"""One address, one server: a second server on a busy address refuses to start."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest

from cli.stack import ensure_free
from reelscribe.config import Settings
from server.app import ListenError, ServerApp
from tests.support.processes import CLI


async def test_a_busy_address_is_refused(settings: Settings, server: ServerApp) -> None:
    second = ServerApp(settings.model_copy(update={"listen_address": f"127.0.0.1:{server.port}"}))
    with pytest.raises(ListenError, match="in use"):
        await second.start()


async def test_up_on_a_busy_address_fails_instead_of_sharing_it(
    settings: Settings, server: ServerApp, tmp_path: Path
) -> None:
    # A second stack whose server cannot bind: `up` must not take the first
    # server's health for its own.
    env = {
        **os.environ,
        "REELSCRIBE_DATABASE_URL": settings.database_url,
        "REELSCRIBE_REDIS_URL": settings.redis_url,
        "REELSCRIBE_DATA_DIR": str(tmp_path),
        "REELSCRIBE_LISTEN_ADDRESS": f"127.0.0.1:{server.port}",
        "REELSCRIBE_SERVER_ADDRESS": f"127.0.0.1:{server.port}",
        "REELSCRIBE_QUEUE_NAME": f"busy-{os.getpid()}",
        "REELSCRIBE_WORKER_PROCESSES": "1",
        "REELSCRIBE_METRICS_PORT": "0",
        "REELSCRIBE_WORKER_METRICS_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "up",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    finally:
        if proc.returncode is None:  # it started a stack after all: take it down
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 1, text
    assert "already in use" in text
    assert "reelscribe is up" not in text


def test_an_address_whose_last_server_just_stopped_is_free() -> None:
    # A server that closed its connections first leaves them in TIME_WAIT for
    # a minute; `up` right after a stop must not take that for a listener.
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC and uvicorn do
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        with socket.create_connection(listener.getsockname()) as client:
            served, _ = listener.accept()
            served.close()  # the server side closes first: TIME_WAIT is on its port
            client.recv(1)
    ensure_free(address)
    with socket.socket() as other, pytest.raises(RuntimeError, match="already in use"):
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", int(address.rsplit(":", 1)[1])))
        other.listen()
        ensure_free(address)
