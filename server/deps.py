"""What the services share: pools, clients and settings."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from reelscribe.blobs import Blobs
from reelscribe.config import Settings
from reelscribe.queue import JobQueue
from server.hub import EventHub


@dataclass(frozen=True)
class Deps:
    """Long-lived resources of one server process."""

    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    queue: JobQueue
    blobs: Blobs
    hub: EventHub
