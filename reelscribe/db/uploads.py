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


async def forget_upload(
    conn: asyncpg.Connection, owner: str, upload_id: str
) -> asyncpg.Record | None:
    """Remove an upload that never became media; the removed row, or None."""
    return await conn.fetchrow(
        "DELETE FROM uploads WHERE owner = $1 AND upload_id = $2 AND media_id IS NULL RETURNING *",
        owner,
        upload_id,
    )


async def touch_upload(conn: asyncpg.Connection, owner: str, upload_id: str) -> bool:
    """Show the upload to be alive (its idle time starts again); False if it is gone."""
    status = await conn.execute(
        "UPDATE uploads SET update_time = now() WHERE owner = $1 AND upload_id = $2",
        owner,
        upload_id,
    )
    return status != "UPDATE 0"


# -- uploads kept in S3 (reelscribe.s3partials) -------------------------------------------


async def lock_upload(
    conn: asyncpg.Connection, owner: str, upload_id: str
) -> asyncpg.Record | None:
    """The upload's row, locked until the transaction ends (one writer at a time,
    on any server)."""
    return await conn.fetchrow(
        "SELECT * FROM uploads WHERE owner = $1 AND upload_id = $2 FOR UPDATE", owner, upload_id
    )


async def pieces(conn: asyncpg.Connection, owner: str, upload_id: str) -> list[asyncpg.Record]:
    """The upload's durable pieces, in file order."""
    return await conn.fetch(
        "SELECT * FROM upload_pieces WHERE owner = $1 AND upload_id = $2 ORDER BY offset_bytes",
        owner,
        upload_id,
    )


async def add_piece(
    conn: asyncpg.Connection,
    owner: str,
    upload_id: str,
    *,
    offset_bytes: int,
    size_bytes: int,
    part_number: int | None = None,
    etag: str | None = None,
    object_key: str | None = None,
) -> None:
    """Record a durable piece: a multipart part (number, ETag) or a staged object."""
    await conn.execute(
        "INSERT INTO upload_pieces (owner, upload_id, offset_bytes, size_bytes, part_number,"
        " etag, object_key) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        owner,
        upload_id,
        offset_bytes,
        size_bytes,
        part_number,
        etag,
        object_key,
    )


async def drop_staged(conn: asyncpg.Connection, owner: str, upload_id: str) -> None:
    """Forget the staged pieces (folded into a part)."""
    await conn.execute(
        "DELETE FROM upload_pieces WHERE owner = $1 AND upload_id = $2 AND object_key IS NOT NULL",
        owner,
        upload_id,
    )


async def set_multipart(
    conn: asyncpg.Connection, owner: str, upload_id: str, multipart_id: str
) -> None:
    """Record the multipart upload the file is assembled in."""
    await conn.execute(
        "UPDATE uploads SET multipart_id = $3 WHERE owner = $1 AND upload_id = $2",
        owner,
        upload_id,
        multipart_id,
    )


async def set_durable(
    conn: asyncpg.Connection,
    owner: str,
    upload_id: str,
    stored_bytes: int,
    hash_state: bytes | None,
) -> None:
    """Record the durable bytes and the SHA-256 state after them."""
    await conn.execute(
        "UPDATE uploads SET stored_bytes = $3, hash_state = $4, update_time = now()"
        " WHERE owner = $1 AND upload_id = $2",
        owner,
        upload_id,
        stored_bytes,
        hash_state,
    )


async def reset_upload(conn: asyncpg.Connection, owner: str, upload_id: str) -> None:
    """Back to no bytes stored (its S3 objects removed by the caller)."""
    await conn.execute(
        "DELETE FROM upload_pieces WHERE owner = $1 AND upload_id = $2", owner, upload_id
    )
    await conn.execute(
        "UPDATE uploads SET stored_bytes = 0, hash_state = NULL, multipart_id = NULL,"
        " update_time = now() WHERE owner = $1 AND upload_id = $2 AND media_id IS NULL",
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
    """Mark the upload complete: every byte stored, and the media it became (the
    pieces it was assembled from are no longer needed)."""
    await conn.execute(
        "DELETE FROM upload_pieces WHERE owner = $1 AND upload_id = $2", owner, upload_id
    )
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
) -> asyncpg.Record | None:
    """Remove one upload if it is still in progress and idle for `idle_s` seconds;
    the removed row (its pieces go with it), or None."""
    return await conn.fetchrow(
        "DELETE FROM uploads WHERE owner = $1 AND upload_id = $2 AND media_id IS NULL"
        " AND update_time < now() - make_interval(secs => $3) RETURNING *",
        owner,
        upload_id,
        idle_s,
    )


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
