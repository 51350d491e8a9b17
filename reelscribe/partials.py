"""Where the bytes of an upload in progress are kept until it completes.

Two keepers behind one protocol, `Partials`, chosen with the blob store
(`open_partials`):

- `LocalPartials` (the local blob store): a partial file under the owner's
  prefix in this machine's data directory; its size is the resume offset, so a
  resume must reach the same machine (or one sharing the directory).
- `reelscribe.s3partials.S3Partials` (the S3 store): the bytes in the bucket and
  the upload's state in Postgres, so any server resumes any upload.

Either way the upload's row in `uploads` names it, and the caller
(`server.uploads`) holds the upload's Redis lock while it writes.
"""

from __future__ import annotations

import asyncio
import errno
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

import asyncpg
import structlog

from reelscribe import blobs
from reelscribe.blobs import Blobs, BlobStore, file_sha256
from reelscribe.db import uploads as uploads_db
from reelscribe.errors import InvalidArgument, NotFound

log = structlog.get_logger(__name__)

#: While a stream writes, its progress is recorded (and the upload shown to be
#: alive, and still there) at least this often.
TOUCH_S = 15.0


class Partials(Protocol):
    """Keeps the bytes of uploads in progress."""

    async def stored(self, row: asyncpg.Record) -> int:
        """Bytes of the upload stored durably: where the next bytes must start."""
        ...

    async def write(self, row: asyncpg.Record, stored: int, chunks: AsyncIterator[bytes]) -> int:
        """Append `chunks` after the `stored` bytes; returns the bytes stored durably
        (as much as arrived, also when `chunks` fails midway)."""
        ...

    async def complete(self, row: asyncpg.Record) -> tuple[uuid.UUID, str]:
        """Make the whole file a blob: its media id and key. A file whose SHA-256
        is not the row's is removed (the upload starts again from 0) and refused
        with SHA256_MISMATCH."""
        ...

    async def unclaimed(self, row: asyncpg.Record, key: str) -> None:
        """The blob `complete` made could not be recorded as media."""
        ...

    async def discard(self, owner: str, upload_id: str) -> None:
        """Remove the stored bytes; the upload starts again from 0."""
        ...

    async def removed(self, row: asyncpg.Record) -> None:
        """Remove the bytes of an upload whose row was just deleted."""
        ...


def open_partials(
    pool: asyncpg.Pool, store: Blobs, blob_dir: Path, *, idle_s: float = 0.0
) -> Partials:
    """The keeper that goes with `store`: in the bucket for S3, else on this disk.
    `idle_s` (the upload expiry) is only for error messages."""
    if not store.is_local:
        from reelscribe.s3partials import S3Partials
        from reelscribe.s3store import S3BlobStore

        assert isinstance(store, S3BlobStore)
        return S3Partials(pool, store, idle_s=idle_s)
    return LocalPartials(pool, BlobStore(blob_dir), store, idle_s=idle_s)


def expired(upload_id: str, idle_s: float) -> NotFound:
    """An upload that was removed for inactivity."""
    return NotFound(
        f"upload {upload_id} expired: it was not completed within {idle_s:g} s of its last "
        "activity, and its bytes were removed; upload the file again",
        reason="UPLOAD_EXPIRED",
    )


def sha256_mismatch() -> InvalidArgument:
    """The error for a complete file whose SHA-256 is not the declared one."""
    return InvalidArgument.field(
        "header.sha256", "content does not match the sha256", reason="SHA256_MISMATCH"
    )


def part_path(store: BlobStore, owner: str, upload_id: str) -> Path:
    """The partial file of an upload in progress kept on this disk."""
    return store.path(f"{blobs.owner_prefix(owner)}/uploads/{upload_id}.part")


class LocalPartials:
    """Uploads in progress as partial files on this machine's disk.

    When the disk fills up mid-upload the partial file is removed (it would
    only keep the disk full), the stored size goes back to 0 and the caller gets
    RESOURCE_EXHAUSTED with the reason `STORAGE_FULL`.
    """

    def __init__(
        self, pool: asyncpg.Pool, parts: BlobStore, store: Blobs, *, idle_s: float = 0.0
    ) -> None:
        self._pool = pool
        self._parts = parts
        self._store = store
        self._idle_s = idle_s

    async def stored(self, row: asyncpg.Record) -> int:
        """The partial file's size."""
        part = part_path(self._parts, row["owner"], row["upload_id"])
        return part.stat().st_size if part.exists() else 0

    async def write(self, row: asyncpg.Record, stored: int, chunks: AsyncIterator[bytes]) -> int:
        """Append to the partial file, written through chunk by chunk."""
        owner, upload_id = row["owner"], row["upload_id"]
        part = part_path(self._parts, owner, upload_id)
        try:
            await asyncio.to_thread(part.parent.mkdir, parents=True, exist_ok=True)
            return await self._write(row, part, stored, chunks)
        except OSError as exc:
            if not blobs.is_storage_full(exc):
                raise
            await self._discard_full(owner, upload_id, part)
            raise blobs.storage_full() from exc

    async def _write(
        self, row: asyncpg.Record, part: Path, stored: int, chunks: AsyncIterator[bytes]
    ) -> int:
        owner, upload_id, size = row["owner"], row["upload_id"], row["size_bytes"]
        touched = time.monotonic()
        # Unbuffered: a failed write leaves nothing pending that closing would retry.
        with part.open("ab", buffering=0) as fh:
            try:
                async for data in chunks:
                    if stored + len(data) > size:
                        raise InvalidArgument.field(
                            "chunk", f"more data than the declared {size} bytes"
                        )
                    # Written through per chunk: the file size is the resume
                    # offset even if this stream breaks right after.
                    await asyncio.to_thread(_append, fh, data)
                    stored += len(data)
                    if time.monotonic() - touched >= TOUCH_S:
                        touched = time.monotonic()
                        if not await self._record(owner, upload_id, stored):
                            raise expired(upload_id, self._idle_s)
            finally:
                await self._record(owner, upload_id, stored)
        return stored

    async def _record(self, owner: str, upload_id: str, stored: int) -> bool:
        async with self._pool.acquire() as conn:
            return await uploads_db.set_stored_bytes(conn, owner, upload_id, stored)

    async def _discard_full(self, owner: str, upload_id: str, part: Path) -> None:
        await asyncio.to_thread(part.unlink, missing_ok=True)
        await self._record(owner, upload_id, 0)
        log.warning("upload discarded: storage full", upload_id=upload_id)

    async def complete(self, row: asyncpg.Record) -> tuple[uuid.UUID, str]:
        """Hash the partial file, then move it into the blob store."""
        owner, upload_id = row["owner"], row["upload_id"]
        part = part_path(self._parts, owner, upload_id)
        digest = await asyncio.to_thread(file_sha256, part)
        if digest != row["sha256"]:
            await self.discard(owner, upload_id)
            raise sha256_mismatch()
        media_id = uuid.uuid4()
        key = self._store.media_key(owner, media_id)
        try:
            # A rename on the local disk; a (multipart) upload to S3.
            await asyncio.to_thread(self._store.put_file, key, part)
        except OSError as exc:
            if not blobs.is_storage_full(exc):
                raise
            await self._discard_full(owner, upload_id, part)
            raise blobs.storage_full() from exc
        return media_id, key

    async def unclaimed(self, row: asyncpg.Record, key: str) -> None:
        """Remove the blob (the partial file it was is gone: the upload restarts from 0)."""
        await asyncio.to_thread(self._store.delete, key)

    async def discard(self, owner: str, upload_id: str) -> None:
        """Remove the partial file."""
        await asyncio.to_thread(part_path(self._parts, owner, upload_id).unlink, missing_ok=True)
        await self._record(owner, upload_id, 0)

    async def removed(self, row: asyncpg.Record) -> None:
        """Remove the partial file of a deleted upload."""
        part = part_path(self._parts, row["owner"], row["upload_id"])
        await asyncio.to_thread(part.unlink, missing_ok=True)


def _append(fh: BinaryIO, data: bytes) -> None:
    """Write all of `data` to an unbuffered file (which may take short writes)."""
    view = memoryview(data)
    while view:
        written = fh.write(view)
        if not written:
            raise OSError(errno.EIO, "the file accepted no bytes")
        view = view[written:]
