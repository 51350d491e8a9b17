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

from reelscribe import embeddings, library, quality, queue, speech
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
            embedder = embeddings.get_embedder(ctx.settings.embedding_model_dir)
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
        rt.publish(recorded)
        rt.call(transcripts_db.invalidate_cache(rt.redis, owner, job_id))
        # Newly searchable: answers cached before may now be incomplete.
        rt.call(library.changed(rt.redis, owner, remember_s=ctx.settings.answer_cache_ttl_s))
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
    # Language: the one detected over the most chunk time.
    votes: dict[str, float] = {}
    for c in chunk_rows:
        if c["language"]:
            votes[c["language"]] = votes.get(c["language"], 0.0) + c["end_s"] - c["start_s"]
    options = JobOptions.from_json(row["options"])
    language = options.language or (max(votes, key=votes.__getitem__) if votes else "en")
    probabilities = [c["language_probability"] for c in chunk_rows if c["language"] == language]
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
            )
        )
        texts.append(s["text"])
    return transcripts_db.TranscriptData(
        language=language,
        language_probability=max(probabilities) if probabilities else 0.0,
        duration_s=duration_s,
        model=options.model or ctx.settings.whisper_model_name,
        segments=segments,
    )
