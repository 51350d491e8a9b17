"""Queries on uploaded media."""

from __future__ import annotations

import uuid

import asyncpg


async def insert_media(
    conn: asyncpg.Connection,
    *,
    media_id: uuid.UUID,
    owner: str,
    filename: str,
    size_bytes: int,
    sha256: str,
    blob_key: str,
) -> asyncpg.Record:
    """Record a completed upload."""
    row = await conn.fetchrow(
        "INSERT INTO media (id, owner, filename, size_bytes, sha256, blob_key)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        media_id,
        owner,
        filename,
        size_bytes,
        sha256,
        blob_key,
    )
    assert row is not None
    return row


async def get_media(
    conn: asyncpg.Connection, media_id: uuid.UUID, *, owner: str
) -> asyncpg.Record | None:
    """The media object, if it belongs to `owner`."""
    return await conn.fetchrow("SELECT * FROM media WHERE id = $1 AND owner = $2", media_id, owner)


async def sha256_of(conn: asyncpg.Connection, media_id: uuid.UUID | None) -> str:
    """The SHA-256 of a media object's content ("" when there is none)."""
    value = await conn.fetchval("SELECT sha256 FROM media WHERE id = $1", media_id)
    return str(value or "")


async def delete_media(
    conn: asyncpg.Connection, media_id: uuid.UUID, *, owner: str
) -> asyncpg.Record | None:
    """Delete the owner's media row and the finished upload that made it
    (inside the caller's transaction, after `lock_media` and `active_jobs_using`).

    Returns the deleted row (for its blob key), or None when the owner has no
    such media. The upload row goes too: left behind it would look like an
    upload in progress and count against the storage quota.
    """
    await conn.execute("DELETE FROM uploads WHERE owner = $1 AND media_id = $2", owner, media_id)
    return await conn.fetchrow(
        "DELETE FROM media WHERE id = $1 AND owner = $2 RETURNING *", media_id, owner
    )


async def lock_media(conn: asyncpg.Connection, media_id: uuid.UUID, *, owner: str) -> bool:
    """Lock the owner's media row for the rest of the transaction; False if absent."""
    found = await conn.fetchval(
        "SELECT true FROM media WHERE id = $1 AND owner = $2 FOR UPDATE", media_id, owner
    )
    return bool(found)


async def active_jobs_using(conn: asyncpg.Connection, media_id: uuid.UUID) -> int:
    """How many queued or running jobs use the media."""
    count = await conn.fetchval(
        "SELECT count(*) FROM jobs WHERE media_id = $1 AND state IN ('QUEUED', 'RUNNING')",
        media_id,
    )
    return int(count or 0)
