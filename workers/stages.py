"""The pipeline stages: prepare → transcribe chunks (in parallel) → merge.

* `prepare` claims the job, decodes the audio to 16 kHz mono (kept as raw
  float32 in the job's scratch directory), finds speech and silence, cuts the
  timeline into chunks at silences and enqueues one message per chunk.
* `transcribe_chunk` transcribes one chunk with long silences removed, maps
  the times back to the original timeline and stores the chunk's segments.
  The last chunk to finish enqueues the merge.
* `merge` joins the chunks in order, flags doubtful segments, stores the
  transcript and ends the job.

Every stage is idempotent (delete-then-insert inside a transaction), counts
its attempts in Postgres, and checks for cancellation between units of work.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from reelscribe import derived, embeddings, fetch, media, quality, queue, speech, states
from reelscribe.costs import CpuMeter
from reelscribe.db import chunks as chunks_db
from reelscribe.db import search as search_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import MediaError
from workers import transcriber
from workers.context import (
    FINISHED,
    PARTIAL,
    PREPARE_SHARE,
    STARTED,
    TRANSCRIBE_SHARE,
    Cancelled,
    JobContext,
)
from workers.runtime import Runtime

log = structlog.get_logger(__name__)

_AUDIO_FILE = "audio.f32"


def _open(rt: Runtime, job_id: uuid.UUID) -> tuple[JobContext, Any] | None:
    """The job if a stage should work on it; cancels it here if that was asked."""
    ctx = JobContext(rt, job_id)
    row = ctx.fetch_job()
    if row is None or row["state"] in states.TERMINAL:
        return None
    if row["cancel_requested"]:
        ctx.finish_cancelled(row["owner"])
        return None
    return ctx, row


# -- prepare -------------------------------------------------------------------------


def prepare(rt: Runtime, job_id: uuid.UUID) -> None:
    """Claim, decode, detect speech, plan chunks and fan them out."""
    opened = _open(rt, job_id)
    if opened is None:
        return
    ctx, row = opened
    owner = row["owner"]
    if row["attempts"] >= ctx.settings.max_job_attempts:
        ctx.fail(
            owner,
            "TOO_MANY_ATTEMPTS",
            f"gave up after {row['attempts']} attempts that did not finish",
            stage=row["stage"],
        )
        return
    if not ctx.claim(row, "EXTRACT_AUDIO", "decoding audio"):
        ctx.finish_cancelled(owner)
        return
    try:
        _prepare(ctx, row)
    except Cancelled:
        ctx.finish_cancelled(owner)
    except MediaError as exc:
        ctx.fail(owner, exc.reason, exc.message)
    except Exception as exc:
        ctx.give_up_or_retry(
            owner, "EXTRACT_AUDIO", row["attempts"] + 1 >= ctx.settings.max_job_attempts, exc
        )


def _prepare(ctx: JobContext, row: Any) -> None:
    cpu_start = time.process_time()
    rt, settings, owner = ctx.rt, ctx.settings, row["owner"]
    workdir = ctx.workdir(owner)
    workdir.mkdir(parents=True, exist_ok=True)
    has_plan, pending, has_speech = rt.call(chunks_db.plan_status(rt.pool, ctx.job_id))
    if has_plan:
        # A re-run (the first was killed after planning): keep the plan and what
        # chunks already finished; only the audio and the unsent work are redone.
        _resume_prepare(ctx, row, workdir, pending, has_speech)
        return
    if row["source_uri"]:
        path = _ingest_url(ctx, row["source_uri"], workdir / "source")
    else:
        path = _uploaded_media(ctx, row)
    audio = media.decode_audio(path)
    if row["source_uri"]:
        path.unlink(missing_ok=True)  # the decoded audio is all later stages need
    duration_s = len(audio) / media.SAMPLE_RATE_HZ
    tmp = workdir / f".{_AUDIO_FILE}.{uuid.uuid4().hex}"
    audio.tofile(tmp)
    os.replace(tmp, workdir / _AUDIO_FILE)
    ctx.running_event(
        FINISHED,
        set_fields={"progress": PREPARE_SHARE / 2, "media_duration_s": duration_s},
        stage_progress=1.0,
        message=f"decoded {duration_s:.1f} s of audio",
    )
    ctx.check_cancelled(force=True)

    ctx.running_event(STARTED, set_fields={"stage": "DETECT_SPEECH"}, message="finding speech")
    regions = speech.detect_regions(audio)
    plan = speech.plan_chunks(regions, duration_s, target_s=settings.chunk_target_s)
    speech_s = sum(r.duration_s for r in regions if r.is_speech)
    rt.call(chunks_db.replace_plan(rt.pool, ctx.job_id, regions, plan))
    ctx.running_event(
        FINISHED,
        set_fields={"progress": PREPARE_SHARE},
        stage_progress=1.0,
        message=f"{speech_s:.0f} s of speech in {len(plan)} chunk(s)",
    )
    ctx.check_cancelled(force=True)
    ctx.record_cost(owner, "EXTRACT_AUDIO", time.process_time() - cpu_start)
    if speech_s == 0:
        # Nothing was said: an empty transcript, without waking the model.
        enqueue_merge(ctx)
        return
    ctx.running_event(
        STARTED,
        set_fields={"stage": "TRANSCRIBE"},
        chunk_count=len(plan),
        message=f"transcribing {len(plan)} chunk(s)",
    )
    enqueue_chunks(ctx, range(len(plan)))
    rt.call(_clear_pending(ctx))


def _resume_prepare(
    ctx: JobContext, row: Any, workdir: Path, pending: list[int], has_speech: bool
) -> None:
    if not has_speech:
        enqueue_merge(ctx)
        return
    if pending and not (workdir / _AUDIO_FILE).exists():
        path = (
            _ingest_url(ctx, row["source_uri"], workdir / "source")
            if row["source_uri"]
            else _uploaded_media(ctx, row)
        )
        audio = media.decode_audio(path)
        tmp = workdir / f".{_AUDIO_FILE}.{uuid.uuid4().hex}"
        audio.tofile(tmp)
        os.replace(tmp, workdir / _AUDIO_FILE)
    ctx.running_event(
        STARTED,
        set_fields={"stage": "TRANSCRIBE"},
        message=f"resuming: {len(pending)} chunk(s) left",
    )
    if pending:
        enqueue_chunks(ctx, pending)
    else:
        enqueue_merge(ctx)
    ctx.rt.call(_clear_pending(ctx))


async def _clear_pending(ctx: JobContext) -> None:
    # The chunk messages now carry the job; the prepare message is done.
    async with ctx.rt.pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET pending_message_id = NULL WHERE id = $1", ctx.job_id)


def enqueue_chunks(ctx: JobContext, indexes: Iterable[int]) -> None:
    """Send one message per chunk, recording each message id first."""
    jq = queue.JobQueue(ctx.rt.broker, ctx.settings.queue_name)
    for idx in indexes:
        message = jq.message(queue.TRANSCRIBE_CHUNK, ctx.job_id, idx)
        # The broker's id exists only once sent; a crash in between leaves the
        # old id, and the reconciler (after its grace period) sends it again.
        broker_id = jq.enqueue_sync(message)
        ctx.rt.call(chunks_db.set_message_id(ctx.rt.pool, ctx.job_id, idx, broker_id))


def _uploaded_media(ctx: JobContext, row: Any) -> Path:
    path, sha256 = ctx.uploaded_media(row)
    kill_on = ctx.settings.fault_kill_on_sha256
    if kill_on and sha256 == kill_on:
        # Fault drill: behave like a decoder that takes the process down.
        os.kill(os.getpid(), signal.SIGKILL)
    return path


def _ingest_url(ctx: JobContext, url: str, dest: Path) -> Path:
    settings = ctx.settings
    ctx.running_event(STARTED, set_fields={"stage": "INGEST"}, message="downloading")
    size = fetch.download(url, dest, ctx.download_limits())
    ctx.check_cancelled(force=True)
    info = media.probe(dest)
    if info.duration_s > settings.max_media_duration_s:
        raise MediaError("MEDIA_TOO_LONG", f"the media lasts {info.duration_s / 3600:.1f} h")
    ctx.running_event(
        FINISHED,
        set_fields={"stage": "EXTRACT_AUDIO"},
        stage_progress=1.0,
        message=f"downloaded {size} bytes",
    )
    return dest


# -- transcribe one chunk -------------------------------------------------------------------


def transcribe_chunk(rt: Runtime, job_id: uuid.UUID, idx: int) -> None:
    """Transcribe chunk `idx` of the job; the last chunk enqueues the merge."""
    opened = _open(rt, job_id)
    if opened is None:
        return
    ctx, row = opened
    owner = row["owner"]
    chunk = rt.call(chunks_db.claim(rt.pool, job_id, idx))
    if chunk is None:  # already done (a redelivered duplicate) or replanned away
        return
    if chunk["attempts"] > ctx.settings.max_job_attempts:
        ctx.fail(
            owner,
            "TOO_MANY_ATTEMPTS",
            f"chunk {idx} was started {chunk['attempts'] - 1} times without finishing",
            stage="TRANSCRIBE",
        )
        return
    try:
        _transcribe_chunk(ctx, row, chunk)
    except Cancelled:
        ctx.finish_cancelled(owner)
    except MediaError as exc:
        ctx.fail(owner, exc.reason, exc.message, stage="TRANSCRIBE")
    except Exception as exc:
        ctx.give_up_or_retry(
            owner, "TRANSCRIBE", chunk["attempts"] >= ctx.settings.max_job_attempts, exc
        )


def _transcribe_chunk(ctx: JobContext, row: Any, chunk: Any) -> None:
    cpu_start = time.process_time()
    rt, settings = ctx.rt, ctx.settings
    path = ctx.workdir(row["owner"]) / _AUDIO_FILE
    if not path.exists():
        raise MediaError("AUDIO_MISSING", "decoded audio is gone; the job must be resubmitted")
    audio = np.memmap(path, dtype=np.float32, mode="r")
    regions = rt.call(chunks_db.load_regions(rt.pool, ctx.job_id))
    clip, time_map = speech.compact(
        audio, chunk["start_s"], chunk["end_s"], regions, keep_silence_s=settings.keep_silence_s
    )
    del audio
    options = row["options"] or {}
    model = transcriber.load_model(
        settings.resolved_whisper_model_dir(),
        settings.whisper_compute_type,
        settings.whisper_cpu_threads,
    )
    info, segments = transcriber.transcribe(
        model,
        clip,
        language=options.get("language") or None,
        word_timestamps=not options.get("disable_word_timestamps", False),
        beam_size=settings.whisper_beam_size,
    )
    stored: list[dict[str, Any]] = []
    for seg in segments:
        ctx.check_cancelled()
        start = time_map.to_original(seg.start_s)
        end = time_map.to_original(seg.end_s)
        words: list[dict[str, Any]] = []
        for w in seg.words:
            w_start = time_map.to_original(w.start_s)
            # A word ends where its speech ends, never inside the next silence.
            w_end = max(
                w_start,
                min(time_map.to_original(w.end_s), speech.speech_end_after(regions, w_start)),
            )
            words.append(
                {"start_s": w_start, "end_s": w_end, "text": w.text, "probability": w.probability}
            )
        if words:
            end = max(min(end, float(words[-1]["end_s"])), start)
        stored.append(
            {
                "start_s": start,
                "end_s": end,
                "text": seg.text,
                "avg_logprob": seg.avg_logprob,
                "no_speech_prob": seg.no_speech_prob,
                "compression_ratio": seg.compression_ratio,
                "words": words,
            }
        )
    ctx.check_cancelled(force=True)
    # Chunks add up; counted before completion so the merge never runs ahead of it.
    ctx.record_cost(row["owner"], "TRANSCRIBE", time.process_time() - cpu_start, add=True)
    done, total, newly = rt.call(
        chunks_db.complete(
            rt.pool, ctx.job_id, chunk["idx"], stored, info.language, info.language_probability
        )
    )
    if not newly:
        return
    recorded = ctx.event(
        PARTIAL,
        set_fields={"progress": PREPARE_SHARE + TRANSCRIBE_SHARE * done / total},
        require_states=(states.RUNNING,),
        require_not_cancel_requested=True,
        stage_progress=done / total,
        chunk_index=chunk["idx"],
        chunk_count=total,
        message=f"chunk {chunk['idx'] + 1} of {total} transcribed",
    )
    if recorded is None:
        raise Cancelled()
    if done == total:
        enqueue_merge(ctx)


def send_job_message(ctx: JobContext, actor_name: str) -> None:
    """Send the job's next single message (prepare, merge or derive) and record its id."""
    jq = queue.JobQueue(ctx.rt.broker, ctx.settings.queue_name)
    broker_id = jq.enqueue_sync(jq.message(actor_name, ctx.job_id))

    async def _record() -> None:
        async with ctx.rt.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET pending_message_id = $2 WHERE id = $1", ctx.job_id, broker_id
            )

    ctx.rt.call(_record())


def enqueue_merge(ctx: JobContext) -> None:
    """Send the merge message."""
    send_job_message(ctx, queue.MERGE_JOB)


# -- merge -----------------------------------------------------------------------------


def merge(rt: Runtime, job_id: uuid.UUID, retries: int) -> None:
    """Join the chunks into the transcript and finish the job."""
    opened = _open(rt, job_id)
    if opened is None:
        return
    ctx, row = opened
    owner = row["owner"]
    if rt.call(_has_transcript(ctx)):
        # A duplicate merge message (redelivery, reconciler): already merged.
        log.info("duplicate merge ignored", job_id=str(job_id))
        return
    if not rt.call(chunks_db.ready_to_merge(rt.pool, job_id)):
        # An early merge message (a re-sent chunk finished while others are
        # pending): the last chunk to finish sends the merge again.
        log.info("merge before every chunk finished ignored", job_id=str(job_id))
        return
    try:
        with CpuMeter() as cpu:
            ctx.running_event(STARTED, set_fields={"stage": "MERGE"}, message="merging chunks")
            data = _merged_transcript(ctx, row)
            cache_key = transcripts_db.cache_key(
                owner, rt.call(_media_sha(ctx, row)), row["options"]
            )
            ctx.remove_workdir(owner)  # the merge needs only the database
            ctx.running_event(STARTED, set_fields={"stage": "INDEX"}, message="indexing for search")
            items = search_db.passages([(s.start_s, s.end_s, s.text) for s in data.segments])
            embedder = embeddings.get_embedder(ctx.settings.embedding_model_dir)
            vectors = embedder.embed([p.text for p in items]) if items else None
        # Audio minutes are priced here, once per transcription.
        ctx.record_cost(owner, "MERGE", cpu.seconds, audio_minutes=data.duration_s / 60)

        async def index(conn: Any) -> None:
            if items and vectors is not None:
                await search_db.replace_index(
                    conn, job_id, owner, data.language, row["create_time"], items, vectors
                )

        more = derived.for_transcript(row["options"] or {}, data.language)
        recorded = rt.call(
            transcripts_db.store_and_succeed(
                rt.pool, job_id, data, cache_key, index, succeed=not more
            )
        )
        if isinstance(recorded, transcripts_db.AlreadyStored):
            log.info("duplicate merge ignored", job_id=str(job_id))
            return
        if recorded is None:
            raise Cancelled()
        rt.publish(recorded)
        rt.call(transcripts_db.invalidate_cache(rt.redis, owner, job_id))
        if more:
            send_job_message(ctx, queue.DERIVE_JOB)
            log.info("transcript stored", job_id=str(job_id), next_stages=more)
        else:
            log.info("job succeeded", job_id=str(job_id), segments=len(data.segments))
    except Cancelled:
        ctx.finish_cancelled(owner)
    except Exception as exc:
        # The merge reads only the database, so Dramatiq's own retry count
        # (not a Postgres counter) is enough to bound it.
        ctx.give_up_or_retry(owner, "MERGE", retries + 1 >= ctx.settings.max_job_attempts, exc)


async def _has_transcript(ctx: JobContext) -> bool:
    async with ctx.rt.pool.acquire() as conn:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM transcripts WHERE job_id = $1)", ctx.job_id
            )
        )


async def _media_sha(ctx: JobContext, row: Any) -> str:
    async with ctx.rt.pool.acquire() as conn:
        value = await conn.fetchval("SELECT sha256 FROM media WHERE id = $1", row["media_id"])
        return str(value or "")


def _merged_transcript(ctx: JobContext, row: Any) -> transcripts_db.TranscriptData:
    rt = ctx.rt
    chunk_rows, segment_rows = rt.call(chunks_db.load_results(rt.pool, ctx.job_id))
    regions = rt.call(chunks_db.load_regions(rt.pool, ctx.job_id))
    duration_s = float(row["media_duration_s"] or (regions[-1].end_s if regions else 0.0))
    # Language: the one detected over the most chunk time.
    votes: dict[str, float] = {}
    for c in chunk_rows:
        if c["language"]:
            votes[c["language"]] = votes.get(c["language"], 0.0) + c["end_s"] - c["start_s"]
    options = row["options"] or {}
    language = options.get("language") or (max(votes, key=votes.__getitem__) if votes else "en")
    probabilities = [c["language_probability"] for c in chunk_rows if c["language"] == language]
    segments: list[transcripts_db.SegmentData] = []
    texts: list[str] = []
    for s in segment_rows:
        words = [
            transcripts_db.WordData(w["start_s"], w["end_s"], w["text"], w["probability"])
            for w in s["words"]
        ]
        conf = quality.confidence([w.probability for w in words], s["avg_logprob"])
        segments.append(
            transcripts_db.SegmentData(
                start_s=s["start_s"],
                end_s=s["end_s"],
                text=s["text"],
                confidence=conf,
                avg_logprob=s["avg_logprob"],
                no_speech_prob=s["no_speech_prob"],
                low_confidence=conf < quality.LOW_CONFIDENCE,
                suspected_hallucination=quality.is_hallucination(
                    s["text"],
                    s["start_s"],
                    s["end_s"],
                    compression_ratio=s["compression_ratio"],
                    no_speech_prob=s["no_speech_prob"],
                    avg_logprob=s["avg_logprob"],
                    previous_texts=texts,
                    regions=regions,
                ),
                words=tuple(words),
            )
        )
        texts.append(s["text"])
    return transcripts_db.TranscriptData(
        language=language,
        language_probability=max(probabilities) if probabilities else 0.0,
        duration_s=duration_s,
        model=options.get("model") or ctx.settings.whisper_model_name,
        segments=segments,
    )
