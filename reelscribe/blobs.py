"""Local-filesystem blob store under the data directory.

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
from pathlib import Path
from typing import BinaryIO

from reelscribe.errors import QuotaViolation, ResourceExhausted

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


class BlobStore:
    """Blobs as files below `root`."""

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
