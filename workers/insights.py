"""The insight stages after transcription: speakers, analysis, highlights,
clips, translation, romanization (the engine is `reelscribe.insights`;
speakers are `workers.diarization`).

They run in the job that transcribed (when its options ask for them), or in a
child job created with `parent`, which copies the parent's transcript and
never transcribes again. Each stage stores its results in its own tables, so
a failure (a provider answering nonsense, say) ends the job FAILED at that
stage while the transcript stays intact and readable.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import structlog

from reelscribe import blobs, clips, convert, events, insights
from reelscribe.costs import CpuMeter
from reelscribe.db import chunks as chunks_db
from reelscribe.db import insights as insights_db
from reelscribe.db import speakers as speakers_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import MediaError
from reelscribe.insights import Analysis, ProviderError, Usage, engine, plan
from reelscribe.insights.engine import Transcript
from reelscribe.options import JobOptions
from reelscribe.states import TERMINAL, JobState, Stage
from workers import diarization, ingest, translation
from workers.context import FINISHED, STARTED, STATE, Cancelled, JobContext
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


class StageFailed(Exception):
    """A stage cannot produce its result; the job fails with this reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def run(rt: Runtime, job_id: uuid.UUID, retries: int) -> None:
    """Run the job's insight stages and finish it."""
    ctx = JobContext(rt, job_id)
    row = ctx.fetch_job()
    if row is None or row["state"] in TERMINAL:
        return
    owner = row["owner"]
    if row["cancel_requested"]:
        ctx.finish_cancelled(owner)
        return
    stage = Stage.ANALYZE
    try:
        if row["state"] == JobState.QUEUED and not ctx.claim(
            row, Stage.ANALYZE, "deriving from the existing transcript"
        ):
            ctx.finish_cancelled(owner)
            return
        transcript = _ensure_transcript(ctx, row)
        state = _RunState(ctx, row, transcript)
        todo = plan.for_transcript(state.options, transcript.language)
        # Progress goes on from where transcription left it (a child job, from 0).
        ctx.track(row, transcript.language)
        for stage in todo:
            ctx.running_event(STARTED, set_fields=ctx.at(stage), message=_STARTED_MESSAGES[stage])
            with CpuMeter() as cpu:
                usage = _RUNNERS[stage](state)
            ctx.record_cost(owner, stage, cpu.seconds, tokens=usage.total)
            ctx.running_event(
                FINISHED,
                set_fields=ctx.at(stage, 1.0),
                stage_progress=1.0,
                message=f"{stage.lower()} done",
            )
        recorded = ctx.event(
            STATE,
            set_fields={
                "state": JobState.SUCCEEDED,
                "stage": Stage.FINALIZE,
                "progress": 1.0,
                "end_time": events.NOW,
            },
            require_states=(JobState.RUNNING,),
            require_not_cancel_requested=True,
            message="results ready: " + (", ".join(s.lower() for s in todo) or "transcript"),
        )
        if recorded is None:
            raise Cancelled()
        ctx.remove_workdir(owner)
        rt.call(transcripts_db.invalidate_cache(rt.redis, owner, job_id))
        log.info("job succeeded", job_id=str(job_id), stages=todo)
    except Cancelled:
        ctx.finish_cancelled(owner)
    except ProviderError as exc:
        ctx.fail(owner, exc.reason, f"{stage.lower()}: {exc.message}", stage=stage)
    except StageFailed as exc:
        ctx.fail(owner, exc.reason, f"{stage.lower()}: {exc.message}", stage=stage)
    except clips.ClipError as exc:
        ctx.fail(owner, f"CLIP_{exc.reason}", f"render_clips: {exc.message}", stage=stage)
    except MediaError as exc:
        ctx.fail(owner, exc.reason, f"{stage.lower()}: {exc.message}", stage=stage)
    except Exception as exc:
        ctx.give_up_or_retry(owner, stage, retries + 1 >= ctx.settings.max_job_attempts, exc)


_STARTED_MESSAGES = {
    Stage.DIARIZE: "finding who speaks when",
    Stage.ANALYZE: "writing summaries and chapters",
    Stage.HIGHLIGHTS: "choosing highlights",
    Stage.RENDER_CLIPS: "rendering clips",
    Stage.TRANSLATE: "translating",
    Stage.ROMANIZE: "romanizing",
}


def _ensure_transcript(ctx: JobContext, row: Any) -> Transcript:
    """The job's transcript; a child job copies its parent's first (once)."""
    rt, job_id = ctx.rt, ctx.job_id

    async def _load() -> Transcript | None:
        async with rt.pool.acquire() as conn:
            found = await transcripts_db.get_transcript(conn, job_id, with_words=True)
            if found is None and row["parent_id"] is not None:
                async with conn.transaction():
                    await transcripts_db.copy_transcript(conn, row["parent_id"], job_id)
                    await speakers_db.copy_speakers(conn, row["parent_id"], job_id)
                found = await transcripts_db.get_transcript(conn, job_id, with_words=True)
            return None if found is None else Transcript.from_rows(*found)

    transcript = rt.call(_load())
    if transcript is None:
        raise StageFailed("TRANSCRIPT_NOT_FOUND", "the parent job has no transcript any more")
    return transcript


class _RunState:
    """Results handed from one stage to the next within a run."""

    def __init__(self, ctx: JobContext, row: Any, transcript: Transcript) -> None:
        self.ctx = ctx
        self.row = row
        self.options = JobOptions.from_json(row["options"])
        self.transcript = transcript
        self.analysis: Analysis | None = None

    def store(self, kind: str, provider: str, payload: dict[str, Any], tokens: int = 0) -> None:
        """Keep a stage's result with the job (no expiry)."""
        self.ctx.db(
            insights_db.put,
            self.ctx.job_id,
            kind,
            provider,
            payload,
            tokens=tokens,
            ttl_s=None,
        )


def _diarize(st: _RunState) -> Usage:
    workdir = st.ctx.workdir(st.row["owner"])
    workdir.mkdir(parents=True, exist_ok=True)
    diarization.diarize_job(st.ctx, st.row, st.options, lambda: _media_file(st, workdir), workdir)
    return Usage()


def _analyze(st: _RunState) -> Usage:
    provider = insights.get_provider(st.ctx.settings)
    result = engine.analyze(provider, st.transcript.segments)
    st.ctx.check_cancelled(force=True)

    st.store(
        insights_db.ANALYSIS,
        provider.name,
        insights_db.analysis_to_json(result),
        tokens=result.usage.total,
    )
    st.analysis = result
    return result.usage


def _highlights(st: _RunState) -> Usage:
    assert st.analysis is not None  # ANALYZE runs first
    regions = st.ctx.rt.call(chunks_db.load_regions(st.ctx.rt.pool, st.ctx.job_id))
    plans = engine.choose_highlights(
        st.transcript, st.analysis, regions, st.options, st.ctx.settings
    )

    st.ctx.db(insights_db.replace_highlights, st.ctx.job_id, plans)
    return Usage()


def _render_clips(st: _RunState) -> Usage:
    ctx, owner = st.ctx, st.row["owner"]
    workdir = ctx.workdir(owner)
    workdir.mkdir(parents=True, exist_ok=True)
    source = _media_file(st, workdir)
    store = ctx.rt.blobs
    # Clip captions are laid out from the words' own timings.
    found = ctx.db(transcripts_db.get_transcript, ctx.job_id, with_words=True)
    segments = convert.transcript_to_pb(*found).segments if found is not None else []

    rows = ctx.db(insights_db.list_highlights, ctx.job_id)
    for n, h in enumerate(rows):
        ctx.check_cancelled()
        plan = clips.ClipPlan(
            h["start_s"],
            h["end_s"],
            burn_captions=st.options.clip_burn_captions,
            vertical=st.options.clip_vertical,
        )
        rendered = clips.render_clip(source, plan, segments, workdir, f"clip-{h['idx']}")
        key = f"{blobs.owner_prefix(owner)}/clips/{ctx.job_id}/{h['idx']}{rendered.path.suffix}"
        store.put_file(key, rendered.path)

        ctx.db(
            insights_db.set_clip,
            ctx.job_id,
            h["idx"],
            blob_key=key,
            size_bytes=rendered.size_bytes,
            mime_type=rendered.mime_type,
            captions_srt=rendered.captions_srt,
            start_s=rendered.start_s,
            end_s=rendered.start_s + rendered.duration_s,
        )
        ctx.progress(
            Stage.RENDER_CLIPS, (n + 1) / len(rows), f"clip {n + 1} of {len(rows)} rendered"
        )
    return Usage()


def _media_file(st: _RunState, workdir: Path) -> Path:
    """The original media: the uploaded blob, or the URL downloaded again."""
    ctx, row = st.ctx, st.row
    if row["media_id"] is not None:
        return ctx.uploaded_media(row)[0]
    # A child job carries its parent's source, so a URL job's media is fetched again.
    if not row["source_uri"]:
        raise StageFailed("MEDIA_MISSING", "the job has no media to read again")
    return ingest.media_again(ctx, row["source_uri"], workdir / "source")


def _translate(st: _RunState) -> Usage:
    language = st.options.translate_to
    kind = insights_db.translation_kind(language)
    if translation.offline(st.ctx.settings, language):
        # Speech to English with Whisper: no key, from the audio itself.
        workdir = st.ctx.workdir(st.row["owner"])
        workdir.mkdir(parents=True, exist_ok=True)
        audio = translation.job_audio(st.ctx, st.row, lambda: _media_file(st, workdir))
        spoken = translation.translate(
            st.ctx, audio, st.transcript.segments, language_assumed=st.transcript.language_assumed
        )
        st.store(kind, translation.PROVIDER, spoken)
        return Usage()
    provider = insights.get_provider(st.ctx.settings)
    ttl = st.ctx.settings.analysis_cache_ttl_s

    payload = st.ctx.db(insights_db.find_for_transcript, st.ctx.job_id, kind, provider.name, ttl)
    usage = Usage()
    if payload is None:
        payload, usage = engine.translate(provider, st.transcript.segments, language)

    st.store(kind, provider.name, payload, tokens=usage.total)
    return usage


def _romanize(st: _RunState) -> Usage:
    st.store(insights_db.ROMANIZATION, "pycantonese", engine.romanize(st.transcript))
    return Usage()


_RUNNERS = {
    Stage.DIARIZE: _diarize,
    Stage.ANALYZE: _analyze,
    Stage.HIGHLIGHTS: _highlights,
    Stage.RENDER_CLIPS: _render_clips,
    Stage.TRANSLATE: _translate,
    Stage.ROMANIZE: _romanize,
}
