"""Queries on `uploads`: resumable uploads and the media they became."""

from __future__ import annotations

import uuid

import asyncpg


async def open_upload(
    conn: asyncpg.Connection,
    *,
    owner: str,
    upload_id: str,
    filename: str,
    size_bytes: int,
    sha256: str,
) -> asyncpg.Record:
    """The upload with this id, created if new (an existing row is returned as
    it is, for the caller to compare with the header it was given)."""
    row = await conn.fetchrow(
        "INSERT INTO uploads (owner, upload_id, filename, size_bytes, sha256)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, upload_id) DO UPDATE"
        " SET update_time = now() RETURNING *",
        owner,
        upload_id,
        filename,
        size_bytes,
        sha256,
    )
    assert row is not None
    return row


async def get_upload(conn: asyncpg.Connection, owner: str, upload_id: str) -> asyncpg.Record | None:
    """One of the owner's uploads."""
    return await conn.fetchrow(
        "SELECT * FROM uploads WHERE owner = $1 AND upload_id = $2", owner, upload_id
    )


async def forget_upload(conn: asyncpg.Connection, owner: str, upload_id: str) -> None:
    """Remove an upload that never became media."""
    await conn.execute(
        "DELETE FROM uploads WHERE owner = $1 AND upload_id = $2 AND media_id IS NULL",
        owner,
        upload_id,
    )


async def set_stored_bytes(
    conn: asyncpg.Connection, owner: str, upload_id: str, stored_bytes: int
) -> bool:
    """Record how many bytes of the upload are stored so far; False if it is gone."""
    status = await conn.execute(
        "UPDATE uploads SET stored_bytes = $3, update_time = now()"
        " WHERE owner = $1 AND upload_id = $2",
        owner,
        upload_id,
        stored_bytes,
    )
    return status != "UPDATE 0"


async def attach_media(
    conn: asyncpg.Connection, owner: str, upload_id: str, media_id: uuid.UUID
) -> None:
    """Mark the upload complete: every byte stored, and the media it became."""
    await conn.execute(
        "UPDATE uploads SET media_id = $3, stored_bytes = size_bytes,"
        " update_time = now() WHERE owner = $1 AND upload_id = $2",
        owner,
        upload_id,
        media_id,
    )


async def stale_uploads(
    conn: asyncpg.Connection, idle_s: float, limit: int
) -> list[asyncpg.Record]:
    """Uploads in progress with no activity for `idle_s` seconds, oldest first."""
    return await conn.fetch(
        "SELECT owner, upload_id FROM uploads WHERE media_id IS NULL"
        " AND update_time < now() - make_interval(secs => $1)"
        " ORDER BY update_time LIMIT $2",
        idle_s,
        limit,
    )


async def delete_stale_upload(
    conn: asyncpg.Connection, owner: str, upload_id: str, idle_s: float
) -> bool:
    """Remove one upload if it is still in progress and idle for `idle_s` seconds."""
    deleted = await conn.fetchval(
        "DELETE FROM uploads WHERE owner = $1 AND upload_id = $2 AND media_id IS NULL"
        " AND update_time < now() - make_interval(secs => $3) RETURNING true",
        owner,
        upload_id,
        idle_s,
    )
    return bool(deleted)


async def is_stale(conn: asyncpg.Connection, row: asyncpg.Record, idle_s: float) -> bool:
    """Whether an upload row is in progress and idle for `idle_s` seconds (database clock)."""
    if row["media_id"] is not None:
        return False
    return bool(
        await conn.fetchval(
            "SELECT $1::timestamptz < now() - make_interval(secs => $2)",
            row["update_time"],
            idle_s,
        )
    )
