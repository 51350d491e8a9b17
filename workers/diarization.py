"""The DIARIZE stage: label who speaks each segment and word.

The audio is decoded again from the job's media (the transcription's scratch
audio is gone by now, and a child or cache-hit job never had any), as mono
float32 in the job's scratch directory plus the energy of each stereo channel
per 10 ms, bounded by the length already measured. The speech regions are
the ones found for transcription. `reelscribe.speakers` finds the turns; the
labels and speakers are stored in one transaction, keeping names the owner
already gave.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from reelscribe import media
from reelscribe.db import chunks as chunks_db
from reelscribe.db import speakers as speakers_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import MediaError
from reelscribe.options import JobOptions
from reelscribe.speakers import diarize, encoder, labels
from reelscribe.states import Stage
from workers.context import JobContext

log = structlog.get_logger(__name__)

#: The re-decoded audio in the job's scratch directory.
AUDIO_FILE = "speakers.f32"


def diarize_job(
    ctx: JobContext, row: Any, options: JobOptions, source: Callable[[], Path], workdir: Path
) -> diarize.Diarization:
    """Find the speakers of the job's media (`source()` gives its file, fetched
    only when there is speech) and label its transcript."""
    regions = ctx.rt.call(chunks_db.load_regions(ctx.rt.pool, ctx.job_id))
    if not any(r.is_speech for r in regions):
        # Nothing was said: no speakers, and nothing to decode.
        result = diarize.Diarization((), "none")
    else:
        result = _find_turns(ctx, row, options, source, workdir, regions)
    ctx.check_cancelled(force=True)
    _store(ctx, result)
    log.info(
        "speakers labelled",
        job_id=str(ctx.job_id),
        speakers=result.speaker_count,
        method=result.method,
    )
    return result


def _find_turns(
    ctx: JobContext,
    row: Any,
    options: JobOptions,
    source: Callable[[], Path],
    workdir: Path,
    regions: list[Any],
) -> diarize.Diarization:
    measured_s = float(row["media_duration_s"] or regions[-1].end_s)
    ceiling_s = min(measured_s + 1.0, ctx.settings.max_media_duration_s)
    path = workdir / AUDIO_FILE
    try:
        decoded = media.decode_channels_to_file(source(), path, max_duration_s=ceiling_s)
        if not decoded.decoded.complete:
            raise MediaError("MEDIA_CHANGED", "the media no longer decodes to the length measured")
        ctx.check_cancelled(force=True)
        audio = np.memmap(path, dtype=np.float32, mode="r") if decoded.decoded.duration_s else None
        if audio is None:
            return diarize.Diarization((), "none")

        def progress(fraction: float, message: str) -> None:
            ctx.check_cancelled()
            ctx.progress(Stage.DIARIZE, fraction, message)

        return diarize.diarize(
            audio,
            regions,
            encoder.embed,
            channel_energy=decoded.energy,
            speaker_count=options.speaker_count,
            max_speakers=options.speaker_limit,
            progress=progress,
        )
    finally:
        path.unlink(missing_ok=True)


def _store(ctx: JobContext, result: diarize.Diarization) -> None:
    found = ctx.db(transcripts_db.get_transcript, ctx.job_id, with_words=True)
    if found is None:
        return
    _, segment_rows, word_rows = found
    by_segment: dict[int, list[Any]] = {}
    for w in word_rows:
        by_segment.setdefault(w["segment_idx"], []).append(w)
    segments: list[tuple[int, int | None]] = []
    words: list[tuple[int, int, int | None]] = []
    turns = result.turns
    for seg in segment_rows:
        ws = by_segment.get(seg["idx"], [])
        speaker, word_speakers = labels.label_segment(
            turns,
            labels.Timed(seg["start_s"], seg["end_s"]),
            [labels.Timed(w["start_s"], w["end_s"]) for w in ws],
        )
        segments.append((seg["idx"], _number(speaker)))
        words += [
            (w["segment_idx"], w["idx"], _number(s)) for w, s in zip(ws, word_speakers, strict=True)
        ]

    async def _write() -> None:
        async with ctx.rt.pool.acquire() as conn, conn.transaction():
            await speakers_db.replace_labels(conn, ctx.job_id, result.speaking_s(), segments, words)

    ctx.rt.call(_write())
    owner = ctx.fetch_job()
    if owner is not None:
        ctx.rt.call(transcripts_db.invalidate_cache(ctx.rt.redis, owner["owner"], ctx.job_id))


def _number(speaker: int | None) -> int | None:
    """Speaker numbers start at 1 (`Speaker 1`)."""
    return None if speaker is None else speaker + 1
