"""Streaming a stored file to a caller in bounded pieces, from an offset.

ReadClip and ReadMedia both resume an interrupted read from a byte offset and
send messages of at most `PIECE_BYTES`, whatever block size the blob store
reads in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from reelscribe.blobs import Blobs
from reelscribe.errors import InvalidArgument, NotFound, OutOfRange

#: Largest `data` of one streamed message.
PIECE_BYTES = 512 * 1024


def check_offset(offset: int, size: int, what: str) -> None:
    """INVALID_ARGUMENT for a negative offset, OUT_OF_RANGE for one past the end."""
    if offset < 0:
        raise InvalidArgument.field("offset_bytes", "must not be negative")
    if offset > size:
        raise OutOfRange(
            f"offset {offset} is beyond the {what}'s {size} bytes", reason="OFFSET_BEYOND_END"
        )


async def pieces(
    blobs: Blobs, key: str, *, size: int, offset: int, gone: Callable[[str], NotFound]
) -> AsyncIterator[tuple[int, bytes]]:
    """(offset, data) pieces of the blob `key` from `offset` to `size`.

    A read from the very end yields one empty piece, which tells the caller
    where the file ends. `gone("truncated" | "gone")` makes the error raised
    when the stored file is shorter than `size` or missing.
    """
    if offset == size:
        yield offset, b""
        return
    blocks = blobs.stream(key, start=offset)
    try:
        while offset < size:
            block = await asyncio.to_thread(next, blocks, b"")
            if not block:
                raise gone("truncated")
            for at in range(0, len(block), PIECE_BYTES):
                data = block[at : at + PIECE_BYTES]
                yield offset, data
                offset += len(data)
    except FileNotFoundError as exc:
        raise gone("gone") from exc
    finally:
        await asyncio.to_thread(blocks.close)
