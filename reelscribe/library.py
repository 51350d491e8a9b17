"""The generation of an owner's library: a value that changes whenever the set of
searchable jobs changes (a job indexed, a job deleted).

Answers to questions are cached under a key that includes it, so a change makes
every cached answer of that owner unreachable at once: after DeleteJob no
answer quoting the deleted job is served from the cache. Each change stores a
fresh random value, never a counter that could come back to an old number;
the value is kept at least as long as cached answers live (`remember_s`), so
once it lapses (back to "0") every answer cached under an earlier "0" has
expired too.
"""

from __future__ import annotations

import uuid
from typing import Any

from reelscribe.blobs import owner_prefix


def _key(owner: str) -> str:
    return f"reelscribe:library-generation:{owner_prefix(owner)}"


async def generation(redis: Any, owner: str) -> str:
    """The owner's current library generation ("0" before any change is recorded)."""
    value = await redis.get(_key(owner))
    if not value:
        return "0"
    return value.decode() if isinstance(value, bytes) else str(value)


async def changed(redis: Any, owner: str, *, remember_s: float) -> None:
    """Record that the owner's library changed (a new generation)."""
    await redis.set(_key(owner), uuid.uuid4().hex, ex=max(1, int(remember_s) + 1))
