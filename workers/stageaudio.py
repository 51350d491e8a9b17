"""Where a job's stages find its decoded audio.

The prepare stage decodes the media into the job's scratch directory
(`decoding.AUDIO_FILE`, raw mono float32 at 16 kHz). With the local blob
store that directory is on the disk every worker shares. With S3 the prepare
stage stores the file under the job's work prefix (`share`), and each chunk
stage fetches just its own byte range into a sparse file of the whole length
(`chunk_file`), so sample offsets stay those of the original timeline and a
chunk reads about its share of the audio, whichever machine it runs on.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from reelscribe import speech
from reelscribe.errors import MediaError
from workers import decoding
from workers.context import JobContext

_AUDIO_FILE = decoding.AUDIO_FILE
#: Bytes per sample of the decoded audio (float32).
_SAMPLE_BYTES = 4


def is_shared(ctx: JobContext, owner: str) -> bool:
    """Whether the job's decoded audio is where its chunk stages read it."""
    if ctx.rt.blobs.is_local:
        return (ctx.workdir(owner) / _AUDIO_FILE).exists()
    return ctx.rt.blobs.size(ctx.stage_audio_key(owner)) is not None


def share(ctx: JobContext, owner: str) -> None:
    """Hand the decoded audio to the chunk stages, which may run on other machines.

    The local store's scratch directory is on the disk every worker shares,
    so there is nothing to do; with S3 the audio is stored under the job's
    work prefix, and each chunk fetches only its own byte range.
    """
    if not ctx.rt.blobs.is_local:
        ctx.rt.blobs.put_file(ctx.stage_audio_key(owner), ctx.workdir(owner) / _AUDIO_FILE)


def chunk_file(ctx: JobContext, owner: str, chunk: Any, in_place: bool) -> Path:
    """A local file holding (at least) the chunk's audio, at its place on the timeline.

    The job's own decoded file when it is on this machine's disk (the local
    store, or the prepare stage running this chunk in place); otherwise the
    chunk's byte range of the shared audio, fetched into a sparse file of the
    whole audio's length, so sample offsets stay those of the original timeline.
    """
    workdir = ctx.workdir(owner)
    if ctx.rt.blobs.is_local or in_place:
        path = workdir / _AUDIO_FILE
        if not path.exists():
            raise MediaError("AUDIO_MISSING", "decoded audio is gone; the job must be resubmitted")
        return path
    key = ctx.stage_audio_key(owner)
    total = _shared_size(ctx, key)
    # Whole samples from the chunk's first to one past its last.
    first = int(chunk["start_s"] * speech.SAMPLE_RATE_HZ)
    last = math.ceil(chunk["end_s"] * speech.SAMPLE_RATE_HZ) + 1
    start, end = min(first * _SAMPLE_BYTES, total), min(last * _SAMPLE_BYTES, total)
    path = workdir / f"chunk-{chunk['idx']}.f32"
    path.unlink(missing_ok=True)
    ctx.rt.blobs.download(key, path, start=start, length=end - start)
    os.truncate(path, total)
    return path


#: How long a chunk waits for the shared audio to be readable. The prepare
#: stage stores it before sending any chunk, so a missing object is a store
#: that is still starting (SeaweedFS answers 404 until its volumes are up) or a
#: job that ended meanwhile (cancelled: the check below stops the wait).
_SHARED_WAIT_S = 60.0


def _shared_size(ctx: JobContext, key: str) -> int:
    deadline = time.monotonic() + _SHARED_WAIT_S
    while True:
        total = ctx.rt.blobs.size(key)
        if total is not None:
            return total
        ctx.check_cancelled(force=True)
        if time.monotonic() > deadline:
            raise MediaError("AUDIO_MISSING", "decoded audio is gone; the job must be resubmitted")
        time.sleep(1.0)
