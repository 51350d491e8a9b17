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
