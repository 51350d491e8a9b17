"""Presigned URLs for rendered clips, handed out by ListHighlights.

With S3 storage and `clip_url_ttl_s` above 0, each rendered clip comes with a
URL the client downloads it from directly, for that long, instead of streaming
it through the server with ReadClip (which works either way). The URL names
the configured S3 endpoint, so clients must be able to reach it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from reelscribe.s3store import S3BlobStore
from reelscribe.v1 import transcript_service_pb2 as tpb
from server.deps import Deps


async def add(deps: Deps, rows: list[Any], highlights: list[tpb.Highlight]) -> None:
    """Fill `clip_url` and its expiry for each highlight whose clip is rendered."""
    ttl_s = int(deps.settings.clip_url_ttl_s)
    store = deps.blobs
    if ttl_s <= 0 or not isinstance(store, S3BlobStore):
        return
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s)
    for row, highlight in zip(rows, highlights, strict=True):
        if row["clip_blob_key"]:
            highlight.clip_url = await asyncio.to_thread(
                store.presigned_url, row["clip_blob_key"], ttl_s
            )
            highlight.clip_url_expire_time.FromDatetime(expires)
