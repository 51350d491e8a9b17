"""Results cached in Redis as serialized protobuf messages, best effort: when
Redis is away the cache only stops saving time, callers read Postgres instead."""

from __future__ import annotations

from typing import Any, TypeVar

import structlog
from google.protobuf.message import Message

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=Message)


async def get_message(redis: Any, key: str, message_type: type[M]) -> M | None:
    """A message cached in Redis; None when absent or when Redis is away (the
    cache only saves time, callers read Postgres instead)."""
    try:
        raw = await redis.get(key)
    except Exception as exc:
        log.warning("cache unavailable", key_kind=key.split(":")[1], error=repr(exc))
        return None
    if not raw:
        return None
    return message_type.FromString(raw if isinstance(raw, bytes) else raw.encode())


async def put_message(redis: Any, key: str, message: Message, ttl_s: float) -> None:
    """Cache a message in Redis for `ttl_s` (best effort)."""
    try:
        await redis.set(key, message.SerializeToString(), ex=int(ttl_s))
    except Exception as exc:
        log.warning("cache unavailable", key_kind=key.split(":")[1], error=repr(exc))
