"""The merge stage: the chunks' results become the job's transcript.

The chunks are joined in order, doubtful segments are flagged, the
transcript is stored and indexed for search in one transaction, and the job
either ends SUCCEEDED or, when its options ask for insights, goes on to
`workers.insights`. A duplicate or early merge message changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from reelscribe import embeddings, library, quality, queue, speech, speech_models
from reelscribe.costs import CpuMeter
from reelscribe.db import chunks as chunks_db
from reelscribe.db import media as media_db
from reelscribe.db import search as search_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.insights import plan
from reelscribe.options import JobOptions
from reelscribe.states import Stage
from workers.context import STARTED, Cancelled, JobContext
from workers.runtime import Runtime
from workers.stages import open_job, send_job_message

log = structlog.get_logger(__name__)


def merge(rt: Runtime, job_id: uuid.UUID, retries: int) -> None:
    """Join the chunks into the transcript and finish the job."""
    opened = open_job(rt, job_id)
    if opened is None:
        return
    ctx, row = opened
    owner = row["owner"]
    if ctx.db(transcripts_db.has_transcript, job_id):
        # A duplicate merge message (redelivery, reconciler): already merged.
        log.info("duplicate merge ignored", job_id=str(job_id))
        return
    if not rt.call(chunks_db.ready_to_merge(rt.pool, job_id)):
        # An early merge message (a re-sent chunk finished while others are
        # pending): the last chunk to finish sends the merge again.
        log.info("merge before every chunk finished ignored", job_id=str(job_id))
        return
    try:
        options = JobOptions.from_json(row["options"])
        with CpuMeter() as cpu:
            ctx.running_event(STARTED, set_fields=ctx.at(Stage.MERGE), message="merging chunks")
            data = _merged_transcript(ctx, row)
            # The language is known now, and with it every later stage.
            ctx.track(row, data.language)
            media_sha256 = ctx.db(media_db.sha256_of, row["media_id"])
            cache_key = transcripts_db.cache_key(owner, media_sha256, options)
            ctx.remove_workdir(owner)  # the merge needs only the database
            ctx.running_event(
                STARTED, set_fields=ctx.at(Stage.INDEX), message="indexing for search"
            )
            items = search_db.passages([(s.start_s, s.end_s, s.text) for s in data.segments])
            embedder = embeddings.get_embedder(ctx.settings)
            vectors = embedder.embed([p.text for p in items]) if items else None
        # Audio minutes are not a stage's cost: the usage ledger (reelscribe.db.usage)
        # counts them as chunks finish, and the cost report prices them from there.
        ctx.record_cost(owner, Stage.MERGE, cpu.seconds)

        async def index(conn: Any) -> None:
            if items and vectors is not None:
                await search_db.replace_index(
                    conn, job_id, owner, data.language, row["create_time"], items, vectors
                )

        more = plan.for_transcript(options, data.language)
        recorded = rt.call(
            transcripts_db.store_and_succeed(
                rt.pool,
                job_id,
                data,
                cache_key,
                index,
                succeed=not more,
                progress=ctx.at(Stage.INDEX, 1.0)["progress"],
            )
        )
        if isinstance(recorded, transcripts_db.AlreadyStored):
            log.info("duplicate merge ignored", job_id=str(job_id))
            return
        if recorded is None:
            raise Cancelled()
        rt.call(transcripts_db.invalidate_cache(rt.redis, owner, job_id))
        # Newly searchable: answers cached before may now be incomplete. Recorded
        # before the success is published, so a client that asks as soon as it
        # sees the job succeed never gets an answer cached without it.
        rt.call(library.changed(rt.redis, owner, remember_s=ctx.settings.answer_cache_ttl_s))
        rt.publish(recorded)
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
        ctx.give_up_or_retry(owner, Stage.MERGE, retries + 1 >= ctx.settings.max_job_attempts, exc)


def _merged_transcript(ctx: JobContext, row: Any) -> transcripts_db.TranscriptData:
    rt = ctx.rt
    chunk_rows, segment_rows = rt.call(chunks_db.load_results(rt.pool, ctx.job_id))
    regions = rt.call(chunks_db.load_regions(rt.pool, ctx.job_id))
    duration_s = float(row["media_duration_s"] or (regions[-1].end_s if regions else 0.0))
    options = JobOptions.from_json(row["options"])
    # Chunks transcribed before segments carried a language recorded it per chunk.
    chunk_language = {c["idx"]: c["language"] or "" for c in chunk_rows}
    segments: list[transcripts_db.SegmentData] = []
    texts: list[str] = []
    # Every word gets a real duration, taken from the silence or its neighbours.
    spans = iter(
        speech.lengthen_words(
            [(w["start_s"], w["end_s"]) for s in segment_rows for w in s["words"]],
            end_s=duration_s or None,
        )
    )
    for s in segment_rows:
        words = [
            transcripts_db.WordData(*next(spans), w["text"], w["probability"]) for w in s["words"]
        ]
        start_s, end_s = s["start_s"], s["end_s"]
        if words:
            # The segment spans its words.
            start_s, end_s = min(start_s, words[0].start_s), max(end_s, words[-1].end_s)
        conf = quality.confidence([w.probability for w in words], s["avg_logprob"])
        segments.append(
            transcripts_db.SegmentData(
                start_s=start_s,
                end_s=end_s,
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
                # Rows from before per-segment languages have "": the chunk's.
                language=s["language"] or chunk_language.get(s["chunk_idx"], ""),
                language_probability=s["language_probability"],
                other_language_suspected=s["other_language_suspected"],
            )
        )
        texts.append(s["text"])
    return _with_languages(
        segments, options, duration_s, options.model or ctx.settings.whisper_model_name
    )


def _with_languages(
    segments: list[transcripts_db.SegmentData],
    options: JobOptions,
    duration_s: float,
    model: str,
) -> transcripts_db.TranscriptData:
    """The transcript with its languages: the dominant one by speech time, with
    the model's probability averaged over that speech (time-weighted), and the
    share of each; assumed `en` (probability 0) for an English-only model."""
    time_by: dict[str, float] = {}
    weighted: dict[str, float] = {}
    for seg in segments:
        span = max(seg.end_s - seg.start_s, 0.0)
        time_by[seg.language] = time_by.get(seg.language, 0.0) + span
        weighted[seg.language] = weighted.get(seg.language, 0.0) + span * seg.language_probability
    total = sum(time_by.values())
    shares = sorted(
        ((lang, t / total) for lang, t in time_by.items() if lang and total > 0),
        key=lambda x: (-x[1], x[0]),
    )
    known = speech_models.get(model)
    assumed = not options.language and known is not None and not known.multilingual
    if options.language:
        language, probability = options.language, 0.0  # requested, not detected
    elif assumed:
        language, probability = "en", 0.0
    elif shares:
        language = shares[0][0]
        probability = weighted[language] / time_by[language] if time_by[language] else 0.0
    else:
        # Nothing was said: no language to detect. `und` is BCP-47's "undetermined".
        language, probability = "und", 0.0
    warnings: list[dict[str, str]] = []
    suspected = [s for s in segments if s.other_language_suspected]
    if suspected:
        seconds = sum(s.end_s - s.start_s for s in suspected)
        better = next((m.name for m in speech_models.installed() if m.multilingual), "base")
        warnings.append(
            {
                "code": "OTHER_LANGUAGE_SUSPECTED",
                "message": (
                    f"{len(suspected)} segment(s) ({seconds:.0f} s) were probably not English, "
                    f"but model {model} transcribes English only; run the job again with "
                    f"model {better!r} to detect and transcribe every language"
                ),
            }
        )
    return transcripts_db.TranscriptData(
        language=language,
        language_probability=probability,
        duration_s=duration_s,
        model=model,
        segments=segments,
        language_assumed=assumed,
        languages=shares,
        warnings=warnings,
    )
