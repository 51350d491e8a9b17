"""One address, one server: a second server on a busy address refuses to start."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

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
