"""Uploads in progress kept in S3, so that any server resumes any upload.

The file is assembled in an S3 multipart upload that completes at the media's
key (`uploads.pending_media_id` names the media from the start). S3 wants every
part but the last to be at least 5 MiB, so bytes arrive in two ways:

- a stream (`UploadMedia`) is buffered into parts of `MULTIPART_PART_BYTES` and
  each full buffer goes up as one part;
- smaller writes (an `AppendUpload` part, the rest of a broken stream) are
  *staged*: stored as small objects of their own under the upload's prefix,
  until enough bytes are staged to fold them (read back, joined with the new
  bytes) into one part. The last bytes of the file always make the last part.

Postgres holds the state (`uploads` and `upload_pieces`): the multipart id, the
parts and staged objects in file order, the durable byte count, and the
running SHA-256 state after those bytes (`reelscribe.sha256state`). Every write
locks the upload's row for its duration (`SELECT ... FOR UPDATE`) and checks
that the stored count is still the one it started from, so two servers can
never interleave; the stored count only moves after the bytes are in the
bucket, so it only ever counts durable bytes. At completion the saved hash is
compared with the declared SHA-256 before the parts are joined; an upload whose
hash state could not be carried over (a server of another byte order, or no
libcrypto) is verified by reading the joined object back.

Removing an upload (expiry, a failed one-shot upload, a wrong SHA-256) aborts
every multipart upload to its key and deletes its staged objects, including
any a crashed server wrote but never recorded. An unreachable bucket is
`Unavailable` (BLOB_STORE_UNAVAILABLE), as everywhere in `s3store`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog

from reelscribe import sha256state
from reelscribe.blobs import owner_prefix
from reelscribe.db import uploads as uploads_db
from reelscribe.errors import FailedPrecondition, InvalidArgument
from reelscribe.partials import TOUCH_S, expired, sha256_mismatch
from reelscribe.s3store import MULTIPART_PART_BYTES, S3BlobStore
from reelscribe.sha256state import ResumableSha256

log = structlog.get_logger(__name__)

#: S3's smallest part (every part but the last).
MIN_PART_BYTES = 5 * 1024 * 1024


def staged_prefix(owner: str, upload_id: str) -> str:
    """Where an upload's staged objects live."""
    return f"{owner_prefix(owner)}/uploads/{upload_id}/"


class S3Partials:
    """Uploads in progress as multipart uploads and staged objects in one bucket."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: S3BlobStore,
        *,
        idle_s: float = 0.0,
        buffer_bytes: int = MULTIPART_PART_BYTES,
    ) -> None:
        self._pool = pool
        self._store = store
        self._idle_s = idle_s
        self._buffer_bytes = max(buffer_bytes, MIN_PART_BYTES)

    async def stored(self, row: asyncpg.Record) -> int:
        """The durable bytes, as Postgres records them."""
        return int(row["stored_bytes"])

    async def write(self, row: asyncpg.Record, stored: int, chunks: AsyncIterator[bytes]) -> int:
        """Buffer `chunks` into parts; what is left at the end is staged.

        A full buffer goes up while the next one fills (one part in flight at
        a time, so the parts still land in order)."""
        owner, upload_id, size = row["owner"], row["upload_id"], row["size_bytes"]
        buffer = bytearray()
        # The part in flight: cleared only once it is stored, so a failed one
        # fails again when awaited again (and nothing is stored after it).
        # Shielded: a call cancelled meanwhile still lets it finish.
        pending: asyncio.Task[int] | None = None
        inflight = 0  # its bytes
        touched = time.monotonic()
        try:
            async for data in chunks:
                if stored + inflight + len(buffer) + len(data) > size:
                    raise InvalidArgument.field(
                        "chunk", f"more data than the declared {size} bytes"
                    )
                buffer += data
                if len(buffer) >= self._buffer_bytes:
                    if pending is not None:
                        stored = await asyncio.shield(pending)
                        pending, inflight = None, 0
                    pending = asyncio.create_task(self._flush(row, stored, bytes(buffer)))
                    inflight = len(buffer)
                    buffer.clear()
                    touched = time.monotonic()
                elif time.monotonic() - touched >= TOUCH_S:
                    touched = time.monotonic()
                    await self._touch(owner, upload_id)
            if pending is not None:
                stored = await asyncio.shield(pending)
                pending, inflight = None, 0
        except BaseException:
            # Keep what arrived before the stream broke, so a resume need not
            # send it again; if that fails too, the resume sends it.
            try:
                if pending is not None:
                    stored = await pending
                if buffer:
                    stored = await self._flush(row, stored, bytes(buffer))
            except Exception as exc:
                log.warning("upload tail not kept", upload_id=upload_id, error=str(exc))
            raise
        if buffer:
            stored = await self._flush(row, stored, bytes(buffer))
        return stored

    async def _touch(self, owner: str, upload_id: str) -> None:
        async with self._pool.acquire() as conn:
            if not await uploads_db.touch_upload(conn, owner, upload_id):
                raise expired(upload_id, self._idle_s)

    async def _flush(self, row: asyncpg.Record, stored: int, data: bytes) -> int:
        """Make `data` (the bytes from `stored` on) durable; returns the new stored count."""
        owner, upload_id, size = row["owner"], row["upload_id"], row["size_bytes"]
        folded: list[str] = []
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._locked(conn, owner, upload_id, stored)
            pieces = await uploads_db.pieces(conn, owner, upload_id)
            staged = [p for p in pieces if p["object_key"] is not None]
            staged_bytes = sum(p["size_bytes"] for p in staged)
            hasher = _hasher(current, stored)
            if stored + len(data) == size or staged_bytes + len(data) >= MIN_PART_BYTES:
                key = self._store.media_key(owner, current["pending_media_id"])
                multipart_id = current["multipart_id"]
                if multipart_id is None:
                    multipart_id = await asyncio.to_thread(self._store.create_multipart, key)
                    await uploads_db.set_multipart(conn, owner, upload_id, multipart_id)
                folded = [p["object_key"] for p in staged]
                number = len(pieces) - len(staged) + 1
                etag = await asyncio.to_thread(
                    self._upload_part, key, multipart_id, number, folded, data, hasher
                )
                await uploads_db.drop_staged(conn, owner, upload_id)
                await uploads_db.add_piece(
                    conn,
                    owner,
                    upload_id,
                    offset_bytes=stored - staged_bytes,
                    size_bytes=staged_bytes + len(data),
                    part_number=number,
                    etag=etag,
                )
            else:
                object_key = f"{staged_prefix(owner, upload_id)}{stored:015d}-{uuid.uuid4().hex}"
                await asyncio.to_thread(self._stage, object_key, data, hasher)
                await uploads_db.add_piece(
                    conn,
                    owner,
                    upload_id,
                    offset_bytes=stored,
                    size_bytes=len(data),
                    object_key=object_key,
                )
            await uploads_db.set_durable(
                conn, owner, upload_id, stored + len(data), hasher.save() if hasher else None
            )
        try:  # no longer needed; a leftover goes with the upload's prefix at the end
            await asyncio.to_thread(self._store.delete_keys, folded)
        except Exception as exc:
            log.warning("staged objects not removed", upload_id=upload_id, error=str(exc))
        return stored + len(data)

    async def _locked(
        self, conn: asyncpg.Connection, owner: str, upload_id: str, stored: int
    ) -> asyncpg.Record:
        """The upload's row, locked, if nobody wrote it since `stored` was read."""
        current = await uploads_db.lock_upload(conn, owner, upload_id)
        if current is None:
            raise expired(upload_id, self._idle_s)
        if current["media_id"] is not None or current["stored_bytes"] != stored:
            raise FailedPrecondition(
                f"upload {upload_id} was written by another call meanwhile; ask GetUpload "
                "where it stands and resume from there",
                reason="UPLOAD_IN_PROGRESS",
            )
        return current

    def _upload_part(
        self,
        key: str,
        multipart_id: str,
        number: int,
        folded: list[str],
        data: bytes,
        hasher: ResumableSha256 | None,
    ) -> str:
        body = b"".join([*(self._store.get_bytes(k) for k in folded), data]) if folded else data
        etag = self._store.upload_part(key, multipart_id, number, body)
        if hasher is not None:
            hasher.update(data)  # the staged bytes were hashed when they were staged
        return etag

    def _stage(self, object_key: str, data: bytes, hasher: ResumableSha256 | None) -> None:
        self._store.put_bytes(object_key, data)
        if hasher is not None:
            hasher.update(data)

    async def complete(self, row: asyncpg.Record) -> tuple[uuid.UUID, str]:
        """Check the SHA-256, then join the parts into the object at the media's key."""
        owner, upload_id = row["owner"], row["upload_id"]
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._locked(conn, owner, upload_id, row["size_bytes"])
            key = self._store.media_key(owner, current["pending_media_id"])
            parts = [
                (p["part_number"], p["etag"])
                for p in await uploads_db.pieces(conn, owner, upload_id)
            ]
            saved = current["hash_state"]
            hasher = ResumableSha256.restore(saved) if saved is not None else None
            matches = hasher is not None and hasher.hexdigest() == current["sha256"]
            if hasher is None or matches:
                await asyncio.to_thread(
                    self._store.complete_multipart, key, current["multipart_id"], parts
                )
            if hasher is None:
                # No hash state came along: read the joined object back.
                matches = await asyncio.to_thread(self._sha256_of, key) == current["sha256"]
        if not matches:
            await self.discard(owner, upload_id)
            raise sha256_mismatch()
        await asyncio.to_thread(self._store.delete_prefix, staged_prefix(owner, upload_id))
        return current["pending_media_id"], key

    def _sha256_of(self, key: str) -> str:
        digest = hashlib.sha256()
        for block in self._store.stream(key):
            digest.update(block)
        return digest.hexdigest()

    async def unclaimed(self, row: asyncpg.Record, key: str) -> None:
        """Kept: asked again, `complete` finds the joined object (expiry removes it otherwise)."""

    async def discard(self, owner: str, upload_id: str) -> None:
        """Remove every byte stored in the bucket; the upload starts again from 0."""
        async with self._pool.acquire() as conn, conn.transaction():
            current = await uploads_db.lock_upload(conn, owner, upload_id)
            if current is None or current["media_id"] is not None:
                return
            await asyncio.to_thread(self._remove, owner, upload_id, current["pending_media_id"])
            await uploads_db.reset_upload(conn, owner, upload_id)

    async def removed(self, row: asyncpg.Record) -> None:
        """Remove the objects of a deleted upload."""
        await asyncio.to_thread(
            self._remove, row["owner"], row["upload_id"], row["pending_media_id"]
        )

    def _remove(self, owner: str, upload_id: str, media_id: Any) -> None:
        key = self._store.media_key(owner, media_id)
        self._store.abort_multiparts(key)
        # Joined but never recorded as media (a crash in between): no media row
        # names this key, since the upload has none.
        self._store.delete(key)
        self._store.delete_prefix(staged_prefix(owner, upload_id))


def _hasher(row: asyncpg.Record, stored: int) -> ResumableSha256 | None:
    """The SHA-256 of the upload's first `stored` bytes, ready for more; None when
    the state cannot be carried on here (completion then reads the file back)."""
    if stored == 0:
        return ResumableSha256() if sha256state.available() else None
    saved = row["hash_state"]
    return ResumableSha256.restore(saved) if saved is not None else None
