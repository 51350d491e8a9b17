"""Resumable uploads into the blob store: `UploadMedia` streams and `AppendUpload` parts.

Every upload has an id (client-chosen to make it resumable, random
otherwise) and a row in `uploads`. A stream and a unary part are the same
operation here (`Uploads.receive`): bytes at the header's offset, which must
equal the bytes stored; only a stream must bring the upload to its end, so
parts and streams of one upload id can be mixed. The bytes go, as they
arrive, to where uploads in progress are kept (`reelscribe.partials`): a
partial file on this server's disk with the local store, the bucket with S3
(where any server resumes the upload). The server never holds a whole file in
memory. When the last byte arrives the size and SHA-256 are verified, the file
becomes a blob and exactly one `media` row is created; asking again with the
same id returns that media object.

The header must carry the file's SHA-256. A new upload reserves its declared
size against the owner's storage quota (checked under a per-owner lock, so
concurrent uploads cannot overshoot it); the stream can never write past that
size, and it stops with `UPLOAD_EXPIRED` if the upload was swept meanwhile.
An upload left idle for `upload_expiry_s` is removed by a worker
(`reelscribe.uploads.sweep`), or here when its id is used again.

When the local disk fills up mid-upload the partial file is removed (it would
only keep the disk full), the upload's stored size goes back to 0 and the
caller gets RESOURCE_EXHAUSTED with the reason `STORAGE_FULL`; once space is
freed the same upload id starts again from offset 0.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis
import structlog

from reelscribe import convert, names
from reelscribe import uploads as upload_store
from reelscribe.auth import Principal
from reelscribe.blobs import Blobs
from reelscribe.config import Settings
from reelscribe.db import media as media_db
from reelscribe.db import uploads as uploads_db
from reelscribe.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from reelscribe.partials import open_partials
from reelscribe.v1 import job_service_pb2
from server import upload_checks
from server.quotas import Quotas

log = structlog.get_logger(__name__)


class Uploads:
    """The upload protocol behind `UploadMedia` and `GetUpload`."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        store: Blobs,
        quotas: Quotas,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._redis = redis
        self._store = store
        # Where the bytes of uploads in progress wait: this server's disk, or
        # (with S3) the bucket, so that any server resumes them.
        self._partials = open_partials(
            pool, store, settings.blob_dir, idle_s=settings.upload_expiry_s
        )
        self._quotas = quotas

    async def receive_stream(
        self, principal: Principal, stream: AsyncIterator[job_service_pb2.UploadMediaRequest]
    ) -> job_service_pb2.UploadMediaResponse:
        """One `UploadMedia` stream: a header, then chunks; the media once complete."""
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            raise InvalidArgument.field(
                "header", "the stream is empty; send a header first"
            ) from None
        if first.WhichOneof("data") != "header":
            raise InvalidArgument.field("header", "the first message must carry the header")
        _, media = await self.receive(
            principal,
            first.header,
            upload_checks.stream_chunks(stream, self._settings.max_chunk_bytes),
        )
        assert media is not None  # a stream that ends short is refused in `receive`
        return job_service_pb2.UploadMediaResponse(media=convert.media_to_pb(media))

    async def append(
        self, principal: Principal, request: job_service_pb2.AppendUploadRequest
    ) -> job_service_pb2.AppendUploadResponse:
        """One `AppendUpload` part: stored at the header's offset; the media once complete."""
        header, data = request.header, request.data
        if not header.upload_id:
            raise InvalidArgument.field(
                "header.upload_id",
                "required: parts of one upload are joined by their upload id (a UUID is ideal)",
            )
        max_chunk = self._settings.max_chunk_bytes
        if len(data) > max_chunk:
            raise InvalidArgument.field("data", f"parts are at most {max_chunk} bytes")

        async def one_part() -> AsyncIterator[bytes]:
            if data:
                yield data

        stored, media = await self.receive(principal, header, one_part(), partial=True)
        reply = job_service_pb2.AppendUploadResponse(stored_bytes=stored)
        if media is not None:
            reply.media.CopyFrom(convert.media_to_pb(media))
        return reply

    async def receive(
        self,
        principal: Principal,
        header: job_service_pb2.UploadHeader,
        chunks: AsyncIterator[bytes],
        *,
        partial: bool = False,
    ) -> tuple[int, asyncpg.Record | None]:
        """Store `chunks` at the header's offset: the bytes stored, and the media
        row once the last byte is in. With `partial` an upload may stay
        incomplete (one `AppendUpload` part); otherwise (a stream) ending short
        is an error that says where to resume."""
        upload_checks.validate(header, self._settings.max_upload_bytes)
        owner = principal.subject
        upload_id = header.upload_id or uuid.uuid4().hex
        lock = upload_store.lock_key(owner, upload_id)
        if not await self._redis.set(lock, "1", nx=True, px=upload_store.LOCK_TTL_MS):
            raise FailedPrecondition(
                "another call is writing this upload right now; ask GetUpload where it "
                "stands and resume from there",
                reason="UPLOAD_IN_PROGRESS",
            )
        try:
            stored, media = await self._receive(principal, upload_id, header, chunks)
            if media is None and not partial:
                raise InvalidArgument.field(
                    "header.size_bytes",
                    f"stream ended after {stored} of {header.size_bytes} bytes; resume with "
                    f"upload_id and offset_bytes={stored}"
                    if header.upload_id
                    else f"received {stored} bytes, header declared {header.size_bytes}",
                    reason="SIZE_MISMATCH",
                )
            return stored, media
        except BaseException:
            if not header.upload_id:
                # Not resumable: nothing may be left behind.
                await self._forget(owner, upload_id)
            raise
        finally:
            await self._redis.delete(lock)

    async def _forget(self, owner: str, upload_id: str) -> None:
        """Remove a one-shot upload that failed: its bytes, then its row. If the
        store fails meanwhile the row stays, for the expiry sweep to remove both."""
        try:
            await self._partials.discard(owner, upload_id)
        except Exception as exc:
            log.warning("failed upload left for the sweep", upload_id=upload_id, error=str(exc))
            return
        async with self._pool.acquire() as conn:
            await uploads_db.forget_upload(conn, owner, upload_id)

    async def _open(
        self, principal: Principal, upload_id: str, header: job_service_pb2.UploadHeader
    ) -> asyncpg.Record:
        """The upload's row: an idle one is expired first, a new one reserves its size."""
        owner, idle_s = principal.subject, self._settings.upload_expiry_s
        async with self._pool.acquire() as conn:
            found = await uploads_db.get_upload(conn, owner, upload_id)
            stale = found is not None and await uploads_db.is_stale(conn, found, idle_s)
        if stale:
            # As if the sweeper had come first (this stream holds the lock it takes).
            await upload_store.expire(
                self._pool, self._redis, self._partials, owner, upload_id, idle_s
            )
        async with self._pool.acquire() as conn, conn.transaction():
            if found is None or stale:
                await self._quotas.check_storage(conn, principal, upload_id, header.size_bytes)
            return await uploads_db.open_upload(
                conn,
                owner=owner,
                upload_id=upload_id,
                filename=header.filename,
                size_bytes=header.size_bytes,
                sha256=header.sha256,
            )

    async def _receive(
        self,
        principal: Principal,
        upload_id: str,
        header: job_service_pb2.UploadHeader,
        chunks: AsyncIterator[bytes],
    ) -> tuple[int, asyncpg.Record | None]:
        owner = principal.subject
        row = await self._open(principal, upload_id, header)
        if (row["filename"], row["size_bytes"], row["sha256"]) != (
            header.filename,
            header.size_bytes,
            header.sha256,
        ):
            raise AlreadyExists(
                "upload_id belongs to an upload of a different file", reason="UPLOAD_ID_REUSED"
            )
        if row["media_id"] is not None:
            media = await self._media(owner, row["media_id"])
            if media is not None:
                return row["size_bytes"], media
        stored = await self._partials.stored(row)
        if header.offset_bytes != stored:
            raise upload_checks.offset_mismatch(upload_id, stored)
        stored = await self._partials.write(row, stored, chunks)
        if stored != header.size_bytes:
            return stored, None
        return stored, await self._complete(row)

    async def _complete(self, row: asyncpg.Record) -> asyncpg.Record:
        """The whole file becomes a blob and exactly one media row."""
        owner, upload_id = row["owner"], row["upload_id"]
        media_id, key = await self._partials.complete(row)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                media = await media_db.insert_media(
                    conn,
                    media_id=media_id,
                    owner=owner,
                    filename=row["filename"],
                    size_bytes=row["size_bytes"],
                    sha256=row["sha256"],
                    blob_key=key,
                )
                await uploads_db.attach_media(conn, owner, upload_id, media_id)
        except BaseException:
            await self._partials.unclaimed(row, key)
            raise
        log.info("media uploaded", media=names.media_name(media_id), size_bytes=row["size_bytes"])
        return media

    async def _media(self, owner: str, media_id: uuid.UUID) -> asyncpg.Record | None:
        async with self._pool.acquire() as conn:
            return await media_db.get_media(conn, media_id, owner=owner)

    async def status(self, owner: str, upload_id: str) -> job_service_pb2.GetUploadResponse:
        """Where an upload stands: bytes stored, and its media once complete."""
        if not upload_checks.UPLOAD_ID.match(upload_id):
            raise InvalidArgument.field("upload_id", "8-128 characters from [A-Za-z0-9._-]")
        idle_s = self._settings.upload_expiry_s
        async with self._pool.acquire() as conn:
            row = await uploads_db.get_upload(conn, owner, upload_id)
            stale = row is not None and await uploads_db.is_stale(conn, row, idle_s)
        if stale or (row is None and await upload_store.was_expired(self._redis, owner, upload_id)):
            raise upload_checks.expired(upload_id, idle_s)
        if row is None:
            raise NotFound(f"upload {upload_id} not found", reason="UPLOAD_NOT_FOUND")
        reply = job_service_pb2.GetUploadResponse(upload_id=upload_id, size_bytes=row["size_bytes"])
        if row["media_id"] is not None:
            media = await self._media(owner, row["media_id"])
            if media is not None:
                reply.stored_bytes = row["size_bytes"]
                reply.media.CopyFrom(convert.media_to_pb(media))
                return reply
        reply.stored_bytes = await self._partials.stored(row)
        return reply
