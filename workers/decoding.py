"""Decoding a job's audio with a hard ceiling, and claiming the length decoded.

What a file's header says about its length decides nothing here: the audio is
decoded to disk one frame at a time (`media.decode_to_file`) and stops at a
ceiling, the smaller of `max_media_duration_s` and what the owner's daily
allowance still holds for this job (the allowance less every other job's
minutes of that day). Audio left over fails the job — `MEDIA_TOO_LONG` or
`QUOTA_EXCEEDED`, whichever limit was the smaller — before anything is
transcribed, so it costs nothing. Otherwise the decoded length becomes the
job's reservation in the usage ledger, claimed under the owner's lock, so two
jobs decoding at once cannot both spend the same minutes.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt

from reelscribe import media
from reelscribe.db import usage as usage_db
from reelscribe.errors import MediaError
from workers.context import JobContext

#: The decoded audio in the job's scratch directory: raw mono float32 at 16 kHz.
AUDIO_FILE = "audio.f32"


class AudioFile:
    """The job's decoded audio, read a slice at a time from its file.

    For a pass over the whole recording (the voice detector): a memory map
    would leave every page it read mapped, and counted in the process's RSS,
    until the pass ends (the whole file: 38 MB for 10 minutes, 230 MB an
    hour); each slice read here is an array of its own, freed when used.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._length = path.stat().st_size // np.dtype(np.float32).itemsize

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, key: slice, /) -> npt.NDArray[np.float32]:
        start, stop, step = key.indices(self._length)
        if step != 1:
            raise ValueError("only contiguous slices are read")
        count = max(0, stop - start)
        offset = start * np.dtype(np.float32).itemsize
        return np.fromfile(self._path, dtype=np.float32, count=count, offset=offset)


def span(seconds: float) -> str:
    """A length as people read it: seconds, minutes or hours."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _decode(source: Path, workdir: Path, ceiling_s: float) -> media.Decoded:
    """Decode `source` into the job's audio file (whole, or not at all)."""
    tmp = workdir / f".{AUDIO_FILE}.{uuid.uuid4().hex}"
    try:
        decoded = media.decode_to_file(source, tmp, max_duration_s=ceiling_s)
        if decoded.complete:
            os.replace(tmp, workdir / AUDIO_FILE)
        return decoded
    finally:
        tmp.unlink(missing_ok=True)


def decode_job_audio(ctx: JobContext, source: Path, workdir: Path) -> float:
    """Decode the job's media into `workdir` and claim its length; the seconds decoded.

    Raises MediaError (`MEDIA_TOO_LONG`, `QUOTA_EXCEEDED`, or the decoder's own
    reasons) when the job must fail.
    """
    limit_s = ctx.settings.max_media_duration_s
    left_s = ctx.db(usage_db.seconds_left, ctx.job_id)
    ceiling_s = limit_s if left_s is None else min(limit_s, left_s)
    decoded = _decode(source, workdir, ceiling_s)
    if not decoded.complete:
        if left_s is not None and left_s < limit_s:
            raise MediaError(
                "QUOTA_EXCEEDED",
                f"the media lasts more than {span(ceiling_s)}; only {span(left_s)} of "
                "today's audio allowance were left for it",
            )
        raise MediaError(
            "MEDIA_TOO_LONG",
            f"the media lasts more than {span(ceiling_s)}; the limit is {span(limit_s)}",
        )
    claim = ctx.db(usage_db.claim, ctx.job_id, decoded.duration_s)
    if not claim.granted:
        # Other jobs of the owner reserved minutes while this one decoded.
        (workdir / AUDIO_FILE).unlink(missing_ok=True)
        raise MediaError(
            "QUOTA_EXCEEDED",
            f"the media lasts {span(decoded.duration_s)}; only {span(claim.left_s or 0.0)} "
            "of today's audio allowance are left",
        )
    return decoded.duration_s


def redecode_job_audio(ctx: JobContext, source: Path, workdir: Path, duration_s: float) -> None:
    """Decode again audio already measured and claimed (a resumed job whose
    scratch file is gone), bounded by what was measured."""
    decoded = _decode(source, workdir, min(duration_s + 1.0, ctx.settings.max_media_duration_s))
    if not decoded.complete:
        raise MediaError("MEDIA_CHANGED", "the media no longer decodes to the length measured")
