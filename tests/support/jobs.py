"""Holding a job still while a test looks at it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from reelscribe.config import Settings


@contextlib.asynccontextmanager
async def frozen_job(settings: Settings, name: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold the job's row lock: no worker can move it (nor can CancelJob) until released.

    Every worker's reconciler re-sends messages of jobs idle for a couple of
    seconds *to its own queue*, so a job on a queue nobody consumes is only
    guaranteed to stay put while its row is locked.
    """
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", uuid.UUID(name.split("/")[1])
            )
            yield conn
    finally:
        await conn.close()
