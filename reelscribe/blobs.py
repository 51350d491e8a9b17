"""Blob storage: the interface, and the local-filesystem store under the data directory.

`open_blob_store(settings)` picks the backend: this module's `BlobStore`
(files under `<data_dir>/blobs`, the embedded default) or
`reelscribe.s3store.S3BlobStore` (any S3-compatible store), both behind the
`Blobs` protocol. Uploads, clips and, with S3, the audio a job's stages hand
each other go through it; scratch files stay on each machine.

Keys always start with a hash of the owner, so one user's blobs can never be
addressed through another user's key. Writes go to a temporary file that is
renamed into place on commit, so a reader never sees a partial blob.

A full disk (or an exhausted quota) is not an internal error: writes that hit
it remove what they wrote and raise `ResourceExhausted` with the reason
`STORAGE_FULL`, which callers see as RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from reelscribe.errors import QuotaViolation, ResourceExhausted

if TYPE_CHECKING:
    from reelscribe.config import Settings

#: Bytes read at a time when hashing a file.
_HASH_BLOCK_BYTES = 8 * 1024 * 1024


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's contents (hex), read a block at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


#: Errors that mean "no space left", for the disk or for the user's quota on it.
_STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_storage_full(exc: BaseException) -> bool:
    """Whether `exc` is a write failing for lack of space (ENOSPC, EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in _STORAGE_FULL_ERRNOS


def storage_full() -> ResourceExhausted:
    """The error callers get when the blob storage is full."""
    return ResourceExhausted(
        "the server's storage is full; nothing was stored, try again later",
        reason="STORAGE_FULL",
        quota_violations=[
            QuotaViolation("storage", "no space is left in the server's blob storage")
        ],
    )


def owner_prefix(owner: str) -> str:
    """A filesystem-safe, fixed-length directory name for an owner."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


class BlobWriter:
    """An open, uncommitted blob; `commit` publishes it, `abort` removes it."""

    def __init__(self, final_path: Path) -> None:
        self._final = final_path
        self._tmp = final_path.with_name(f".{final_path.name}.{uuid.uuid4().hex}.part")
        self._final.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        self._sha = hashlib.sha256()
        self.size_bytes = 0

    async def write(self, data: bytes) -> None:
        """Append `data`; file I/O runs off the event loop.

        On a full disk the partial blob is removed and `ResourceExhausted` raised.
        """
        try:
            await asyncio.to_thread(self._file.write, data)
        except OSError as exc:
            if not is_storage_full(exc):
                raise
            self.abort()
            raise storage_full() from exc
        self._sha.update(data)
        self.size_bytes += len(data)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything written so far."""
        return self._sha.hexdigest()

    async def commit(self) -> None:
        """Flush, fsync and rename the blob into place."""

        def _finish() -> None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self._final)

        try:
            await asyncio.to_thread(_finish)
        except OSError as exc:
            if not is_storage_full(exc):
                raise
            self.abort()
            raise storage_full() from exc

    def abort(self) -> None:
        """Drop the partial blob."""
        # Closing flushes the buffer, which fails again on a full disk.
        with contextlib.suppress(OSError):
            self._file.close()
        self._tmp.unlink(missing_ok=True)


class Blobs(Protocol):
    """What every blob store does (keys are the same in every backend)."""

    #: True when blobs are files on this machine (`path` works).
    is_local: bool

    def media_key(self, owner: str, media_id: uuid.UUID) -> str:
        """Key of an uploaded media file."""
        ...

    def put_file(self, key: str, src: Path) -> None:
        """Move the file at `src` into the store under `key`."""
        ...

    def media_source(self, key: str) -> Path | str:
        """Where FFmpeg can read the blob in place: a path, or a presigned URL."""
        ...

    def size(self, key: str) -> int | None:
        """The blob's size in bytes, or None when there is no such blob."""
        ...

    def download(self, key: str, dest: Path, *, start: int = 0, length: int | None = None) -> int:
        """Copy bytes [start, start + length) of the blob into `dest` at the same offset."""
        ...

    def stream(self, key: str, *, start: int = 0) -> Generator[bytes, None, None]:
        """The blob's bytes from `start`, a block at a time (FileNotFoundError if gone)."""
        ...

    def delete(self, key: str) -> None:
        """Remove a blob if present."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob under `prefix`; returns how many."""
        ...

    def check(self) -> None:
        """Raise if the store cannot be used with this configuration."""
        ...


def open_blob_store(settings: Settings, *, outage_wait_s: float = 0.0) -> Blobs:
    """The configured blob store (`blob_backend`). `outage_wait_s`: how long an
    operation waits for an unreachable S3 store to come back (workers), instead
    of failing at once (servers)."""
    if settings.blob_backend == "s3":
        from reelscribe.s3store import S3BlobStore

        return S3BlobStore(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key.get_secret_value(),
            outage_wait_s=outage_wait_s,
        )
    return BlobStore(settings.blob_dir)


#: Bytes per read of a streamed local blob.
_STREAM_BLOCK_BYTES = 1024 * 1024


class BlobStore:
    """Blobs as files below `root`."""

    is_local = True

    def __init__(self, root: Path) -> None:
        self.root = root

    def media_key(self, owner: str, media_id: uuid.UUID) -> str:
        """Key of an uploaded media file."""
        return f"{owner_prefix(owner)}/media/{media_id}"

    def path(self, key: str) -> Path:
        """Filesystem path of a key; refuses keys that escape the root."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def open_writer(self, key: str) -> BlobWriter:
        """Start writing a new blob at `key`."""
        return BlobWriter(self.path(key))

    def delete(self, key: str) -> None:
        """Remove a blob if present."""
        self.path(key).unlink(missing_ok=True)

    def media_source(self, key: str) -> Path:
        """The blob's file."""
        return self.path(key)

    def put_file(self, key: str, src: Path) -> None:
        """Move the file at `src` into place under `key` (a rename on one disk)."""
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, final)

    def size(self, key: str) -> int | None:
        """The blob's size in bytes, or None when there is no such blob."""
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def download(self, key: str, dest: Path, *, start: int = 0, length: int | None = None) -> int:
        """Copy bytes [start, start + length) of the blob into `dest` at the same offset."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with self.path(key).open("rb") as src, dest.open("r+b" if dest.exists() else "wb") as out:
            src.seek(start)
            out.seek(start)
            left = length
            while left is None or left > 0:
                block = src.read(
                    _STREAM_BLOCK_BYTES if left is None else min(left, _STREAM_BLOCK_BYTES)
                )
                if not block:
                    break
                out.write(block)
                written += len(block)
                if left is not None:
                    left -= len(block)
        return written

    def stream(self, key: str, *, start: int = 0) -> Generator[bytes, None, None]:
        """The blob's bytes from `start`, a block at a time."""
        with self.path(key).open("rb") as src:
            src.seek(start)
            while block := src.read(_STREAM_BLOCK_BYTES):
                yield block

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob whose key starts with `prefix` (a directory prefix)."""
        import shutil

        target = self.path(prefix.rstrip("/"))
        if not target.exists():
            return 0
        count = sum(1 for p in target.rglob("*") if p.is_file()) if target.is_dir() else 1
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
        return count

    def check(self) -> None:
        """The root exists and is writable (created if missing)."""
        self.root.mkdir(parents=True, exist_ok=True)
