"""Uploaded media as a resource: ReadMedia and DeleteMedia.

ReadMedia streams the caller's own file back (to play or download it),
resumable from an offset; another user's media is NOT_FOUND.

Deleting media removes its row, the finished upload that made it and its file,
which frees the owner's storage quota. Jobs made from it stay, with their
transcripts and results, and keep naming it; a stage that needs the file again
(rendering clips in a child job) ends the job FAILED with `MEDIA_MISSING`.
While a queued or running job uses the media, deleting it is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog

from reelscribe import names
from reelscribe.auth import Principal
from reelscribe.db import media as media_db
from reelscribe.errors import FailedPrecondition, NotFound
from reelscribe.v1 import job_service_pb2
from server import blobread
from server.deps import Deps

log = structlog.get_logger(__name__)


class MediaRecords:
    """ReadMedia and DeleteMedia."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def read(
        self, principal: Principal, name: str, offset: int
    ) -> AsyncIterator[job_service_pb2.ReadMediaResponse]:
        """The caller's media file from `offset`, in pieces; another user's is NOT_FOUND."""
        media_id = names.parse_media_name(name, "name")
        async with self._deps.pool.acquire() as conn:
            row = await media_db.get_media(conn, media_id, owner=principal.subject)
        if row is None:
            raise NotFound(f"{name} not found", reason="MEDIA_NOT_FOUND")
        size = int(row["size_bytes"])
        blobread.check_offset(offset, size, "file")
        pieces = blobread.pieces(
            self._deps.blobs,
            row["blob_key"],
            size=size,
            offset=offset,
            gone=lambda why: NotFound(f"{name}: the file is {why}", reason="MEDIA_MISSING"),
        )
        async for at, data in pieces:
            yield job_service_pb2.ReadMediaResponse(
                offset_bytes=at, data=data, size_bytes=size, filename=row["filename"]
            )

    async def delete(self, principal: Principal, name: str) -> None:
        """Delete the caller's media object and its file; another user's is NOT_FOUND."""
        media_id = names.parse_media_name(name, "name")
        owner = principal.subject
        async with self._deps.pool.acquire() as conn, conn.transaction():
            if not await media_db.lock_media(conn, media_id, owner=owner):
                raise NotFound(f"{name} not found", reason="MEDIA_NOT_FOUND")
            active = await media_db.active_jobs_using(conn, media_id)
            if active:
                raise FailedPrecondition(
                    f"{name} is used by {active} queued or running job(s); cancel them or "
                    "wait until they finish",
                    reason="MEDIA_IN_USE",
                )
            row = await media_db.delete_media(conn, media_id, owner=owner)
        assert row is not None  # locked above, in the same transaction
        # After the commit: a failed commit must not lose the file of media that stays.
        await asyncio.to_thread(self._deps.blobs.delete, row["blob_key"])
        log.info("media deleted", media=name, size_bytes=row["size_bytes"])
