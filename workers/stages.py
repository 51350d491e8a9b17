"""The transcription stages: prepare → transcribe chunks (in parallel) → merge.

* `prepare` claims the job, decodes the audio to 16 kHz mono (kept as raw
  float32 in the job's scratch directory, with a hard ceiling on its length:
  `workers.decoding`), finds speech and silence, cuts the timeline into chunks
  at silences and enqueues one message per chunk.
* `transcribe_chunk` transcribes one chunk with long silences removed, maps
  the times back to the original timeline and stores the chunk's segments.
  The last chunk to finish enqueues the merge.
* `workers.merge` joins the chunks in order, flags doubtful segments, stores
  the transcript and ends the job (or hands it to `workers.insights`).

Every stage is idempotent (delete-then-insert inside a transaction), counts
its attempts in Postgres, and checks for cancellation between units of work.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from reelscribe import queue, speech
from reelscribe.db import chunks as chunks_db
from reelscribe.db import jobs as jobs_db
from reelscribe.errors import MediaError
from reelscribe.metrics import COST_USD
from reelscribe.options import JobOptions
from reelscribe.states import TERMINAL, JobState, Stage
from workers import decoding, ingest, runs, stageaudio, transcriber
from workers.context import (
    FINISHED,
    PARTIAL,
    STARTED,
    Cancelled,
    JobContext,
)
from workers.runtime import Runtime

log = structlog.get_logger(__name__)

_AUDIO_FILE = decoding.AUDIO_FILE


def open_job(rt: Runtime, job_id: uuid.UUID) -> tuple[JobContext, Any] | None:
    """The job if a stage should work on it; cancels it here if that was asked."""
    ctx = JobContext(rt, job_id)
    row = ctx.fetch_job()
    if row is None or row["state"] in TERMINAL:
        return None
    if row["cancel_requested"]:
        ctx.finish_cancelled(row["owner"])
        return None
    ctx.track(row)
    return ctx, row


# -- prepare -------------------------------------------------------------------------


#: Runs a job's only chunk, and what follows it, inside the prepare message
#: (`workers.inplace`); given the job once its plan and events are recorded.
InPlace = Callable[[JobContext], None]


def prepare(rt: Runtime, job_id: uuid.UUID, in_place: InPlace | None = None) -> None:
    """Claim, decode, detect speech, plan chunks and fan them out.

    With `in_place`, a job whose speech fits one chunk is not fanned out: the
    chunk and the merge run right here, without a queue round trip each.
    """
    opened = open_job(rt, job_id)
    if opened is None:
        return
    ctx, row = opened
    owner = row["owner"]
    if row["attempts"] >= ctx.settings.max_job_attempts:
        ctx.fail(
            owner,
            "TOO_MANY_ATTEMPTS",
            f"gave up after {row['attempts']} attempts that did not finish",
            stage=Stage(row["stage"]),
        )
        return
    if not ctx.claim(row, Stage.EXTRACT_AUDIO, "decoding audio"):
        ctx.finish_cancelled(owner)
        return
    try:
        here = _prepare(ctx, row, in_place is not None)
    except Cancelled:
        ctx.finish_cancelled(owner)
        return
    except MediaError as exc:
        ctx.fail(owner, exc.reason, exc.message)
        return
    except Exception as exc:
        ctx.give_up_or_retry(
            owner, Stage.EXTRACT_AUDIO, row["attempts"] + 1 >= ctx.settings.max_job_attempts, exc
        )
        return
    if here and in_place is not None:
        # Outside the handlers above: the chunk and the merge handle their own
        # errors, and what they re-raise retries this message (which resumes
        # from the stored plan).
        in_place(ctx)


def _prepare(ctx: JobContext, row: Any, in_place: bool) -> bool:
    """Decode, find speech and plan; True when the only chunk is to run here."""
    cpu_start = time.process_time()
    rt, settings, owner = ctx.rt, ctx.settings, row["owner"]
    workdir = ctx.workdir(owner)
    workdir.mkdir(parents=True, exist_ok=True)
    has_plan, pending, has_speech = rt.call(chunks_db.plan_status(rt.pool, ctx.job_id))
    if has_plan:
        # A re-run (the first was killed after planning): keep the plan and what
        # chunks already finished; only the audio and the unsent work are redone.
        _resume_prepare(ctx, row, workdir, pending, has_speech, cpu_start)
        return False
    if row["source_uri"]:
        path = ingest.url_source(ctx, row["source_uri"], workdir / "source")
    else:
        path = _uploaded_media(ctx, row)
    # Decoded to disk with a hard ceiling: the length is measured, never read
    # from the header, and claimed in the usage ledger (workers/decoding.py).
    duration_s = decoding.decode_job_audio(ctx, path, workdir)
    if row["source_uri"]:
        path.unlink(missing_ok=True)  # the decoded audio is all later stages need
    else:
        ctx.release_media(path)
    ctx.running_event(
        FINISHED,
        set_fields={**ctx.at(Stage.EXTRACT_AUDIO, 1.0), "media_duration_s": duration_s},
        stage_progress=1.0,
        message=f"decoded {duration_s:.1f} s of audio",
    )
    ctx.check_cancelled(force=True)

    ctx.running_event(STARTED, set_fields=ctx.at(Stage.DETECT_SPEECH), message="finding speech")
    # The VAD reads the decoded file a piece at a time, never all of it in memory.
    audio = decoding.AudioFile(workdir / _AUDIO_FILE)
    regions = speech.detect_regions(audio, threads=settings.vad_threads)
    plan = speech.plan_chunks(regions, duration_s, target_s=settings.chunk_target_s)
    speech_s = sum(r.duration_s for r in regions if r.is_speech)
    rt.call(chunks_db.replace_plan(rt.pool, ctx.job_id, regions, plan))
    ctx.running_event(
        FINISHED,
        set_fields=ctx.at(Stage.DETECT_SPEECH, 1.0),
        stage_progress=1.0,
        message=f"{speech_s:.0f} s of speech in {len(plan)} chunk(s)",
    )
    ctx.check_cancelled(force=True)
    ctx.record_cost(owner, Stage.EXTRACT_AUDIO, time.process_time() - cpu_start)
    if speech_s == 0:
        # Nothing was said: an empty transcript, without waking the model.
        enqueue_merge(ctx)
        return False
    ctx.running_event(
        STARTED,
        set_fields=ctx.at(Stage.TRANSCRIBE),
        chunk_count=len(plan),
        message=f"transcribing {len(plan)} chunk(s)",
    )
    if len(plan) == 1 and in_place:
        return True
    stageaudio.share(ctx, owner)
    enqueue_chunks(ctx, range(len(plan)))
    _clear_pending(ctx)
    return False


def _resume_prepare(
    ctx: JobContext,
    row: Any,
    workdir: Path,
    pending: list[int],
    has_speech: bool,
    cpu_start: float,
) -> None:
    settings = ctx.settings
    if not has_speech:
        _price_resumed_prepare(ctx, row, cpu_start)
        enqueue_merge(ctx)
        return
    if pending and not stageaudio.is_shared(ctx, row["owner"]):
        path = (
            ingest.url_source(ctx, row["source_uri"], workdir / "source")
            if row["source_uri"]
            else _uploaded_media(ctx, row)
        )
        measured_s = row["media_duration_s"] or settings.max_media_duration_s
        decoding.redecode_job_audio(ctx, path, workdir, float(measured_s))
        if row["source_uri"]:
            path.unlink(missing_ok=True)
        else:
            ctx.release_media(path)
        if pending:
            stageaudio.share(ctx, row["owner"])
    _price_resumed_prepare(ctx, row, cpu_start)
    # The job's progress stays where the first run left it (it never decreases).
    ctx.running_event(
        STARTED,
        set_fields=ctx.at(Stage.TRANSCRIBE),
        message=f"resuming: {len(pending)} chunk(s) left",
    )
    if pending:
        enqueue_chunks(ctx, pending)
    else:
        enqueue_merge(ctx)
    _clear_pending(ctx)


def _price_resumed_prepare(ctx: JobContext, row: Any, cpu_start: float) -> None:
    # The killed run may have died between planning and pricing its work; the
    # re-run's CPU adds to whatever it did record, so the stage is never missing.
    cpu_s = time.process_time() - cpu_start
    ctx.record_cost(row["owner"], Stage.EXTRACT_AUDIO, cpu_s, add=True)


def _clear_pending(ctx: JobContext) -> None:
    # The chunk messages now carry the job; the prepare message is done.
    ctx.db(jobs_db.set_pending_message, ctx.job_id, None)


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


# -- transcribe one chunk -------------------------------------------------------------------


def transcribe_chunk(
    rt: Runtime,
    job_id: uuid.UUID,
    idx: int,
    then: Callable[[JobContext], None] | None = None,
    *,
    in_place: bool = False,
) -> None:
    """Transcribe chunk `idx` of the job; the last chunk to finish calls `then`
    (default: enqueue the merge). `in_place`: run by the prepare stage that
    decoded the audio on this machine (`workers.inplace`)."""
    opened = open_job(rt, job_id)
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
            stage=Stage.TRANSCRIBE,
        )
        return
    try:
        _transcribe_chunk(ctx, row, chunk, then or enqueue_merge, in_place=in_place)
    except Cancelled:
        ctx.finish_cancelled(owner)
    except MediaError as exc:
        ctx.fail(owner, exc.reason, exc.message, stage=Stage.TRANSCRIBE)
    except Exception as exc:
        ctx.give_up_or_retry(
            owner, Stage.TRANSCRIBE, chunk["attempts"] >= ctx.settings.max_job_attempts, exc
        )


def _transcribe_chunk(
    ctx: JobContext,
    row: Any,
    chunk: Any,
    then: Callable[[JobContext], None],
    *,
    in_place: bool,
) -> None:
    cpu_start = time.process_time()
    rt, settings = ctx.rt, ctx.settings
    path = stageaudio.chunk_file(ctx, row["owner"], chunk, in_place)
    try:
        stored = _decode_chunk(ctx, row, chunk, path)
    finally:
        if path.name != _AUDIO_FILE:
            path.unlink(missing_ok=True)  # this chunk's own fetched range
    language, probability = runs.chunk_language(stored)
    ctx.check_cancelled(force=True)
    # Chunks add up; counted before completion so the merge never runs ahead of it.
    ctx.record_cost(row["owner"], Stage.TRANSCRIBE, time.process_time() - cpu_start, add=True)
    done = rt.call(
        chunks_db.complete(rt.pool, ctx.job_id, chunk["idx"], stored, language, probability)
    )
    if not done.newly:
        return
    # The chunk's span is now in the usage ledger; the metric prices it once too.
    span_min = (chunk["end_s"] - chunk["start_s"]) / 60
    COST_USD.labels(Stage.TRANSCRIBE).inc(span_min * settings.price_per_audio_minute_usd)
    # Chunks finish in any order: the message counts them, and progress is the
    # share of the audio done (chunks differ in length).
    recorded = ctx.event(
        PARTIAL,
        set_fields=ctx.at(Stage.TRANSCRIBE, done.fraction),
        require_states=(JobState.RUNNING,),
        require_not_cancel_requested=True,
        stage_progress=done.fraction,
        chunk_index=chunk["idx"],
        chunk_count=done.total,
        message=f"{done.done} of {done.total} chunks done",
    )
    if recorded is None:
        raise Cancelled()
    if done.done == done.total:
        then(ctx)


def _decode_chunk(ctx: JobContext, row: Any, chunk: Any, path: Path) -> list[dict[str, Any]]:
    """The chunk's segments, each with its language, from the audio at `path`."""
    rt, settings = ctx.rt, ctx.settings
    audio = np.memmap(path, dtype=np.float32, mode="r")
    regions = rt.call(chunks_db.load_regions(rt.pool, ctx.job_id))
    options = JobOptions.from_json(row["options"])
    model = transcriber.load_model(
        settings.speech_model_dir(options.model),
        settings.whisper_compute_type,
        settings.whisper_cpu_threads,
    )
    start_s, end_s = chunk["start_s"], chunk["end_s"]
    stored: list[dict[str, Any]] = []
    # Decoded one run of same-language speech at a time (workers.languages):
    # with a requested language or an English-only model, the chunk is one run.
    if not options.language and transcriber.is_multilingual(model):
        stored = runs.decode_detected(ctx, model, audio, regions, start_s, end_s, options)
    else:
        for run in runs.language_runs(model, audio, regions, start_s, end_s, options):
            stored.extend(runs.decode_run(ctx, model, audio, regions, run, options))
    del audio
    if not options.language and not transcriber.is_multilingual(model):
        runs.flag_other_languages(ctx, path, stored)
    return stored


def send_job_message(ctx: JobContext, actor_name: str) -> None:
    """Send the job's next single message (prepare, merge or derive) and record its id."""
    jq = queue.JobQueue(ctx.rt.broker, ctx.settings.queue_name)
    broker_id = jq.enqueue_sync(jq.message(actor_name, ctx.job_id))
    ctx.db(jobs_db.set_pending_message, ctx.job_id, broker_id)


def enqueue_merge(ctx: JobContext) -> None:
    """Send the merge message."""
    send_job_message(ctx, queue.MERGE_JOB)
