"""Queries behind the storage quota: what an owner stores, under a per-owner lock."""

from __future__ import annotations

import asyncpg

#: First key of the per-owner advisory locks (the second is the owner's hash), so
#: they cannot collide with other advisory locks (migrations use a bigint key).
_LOCK_CLASS = 0x5707


async def lock_owner(conn: asyncpg.Connection, owner: str) -> None:
    """Serialize storage reservations of one owner until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_CLASS, owner)


async def stored_bytes(conn: asyncpg.Connection, owner: str, *, except_upload: str = "") -> int:
    """Bytes the owner stores: media, plus the declared size of uploads in progress
    (other than `except_upload`, the one being checked)."""
    value = await conn.fetchval(
        "SELECT (SELECT coalesce(sum(size_bytes), 0) FROM media WHERE owner = $1)"
        " + (SELECT coalesce(sum(size_bytes), 0) FROM uploads"
        "    WHERE owner = $1 AND media_id IS NULL AND upload_id <> $2)",
        owner,
        except_upload,
    )
    return int(value or 0)
