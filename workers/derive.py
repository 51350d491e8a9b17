"""Stages after transcription: analysis, highlights, clips, translation, romanization.

They run in the job that transcribed (when its options ask for them), or in a
child job created with `parent`, which copies the parent's transcript and
never transcribes again. Each stage stores its results in its own tables, so
a failure (a provider answering nonsense, say) ends the job FAILED at that
stage while the transcript stays intact and readable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from reelscribe import analysis, blobs, cantonese, clips, derived, events, fetch, states
from reelscribe import highlights as highlights_mod
from reelscribe.analysis import Analysis, ProviderError, Seg, Usage
from reelscribe.costs import CpuMeter
from reelscribe.db import analyses as analyses_db
from reelscribe.db import chunks as chunks_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import MediaError
from reelscribe.metrics import PROVIDER_TOKENS
from workers.context import FINISHED, STARTED, STATE, Cancelled, JobContext
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


class StageFailed(Exception):
    """A stage cannot produce its result; the job fails with this reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _Transcript:
    """What the stages read: segments (with words) and the language."""

    def __init__(self, row: Any, segments: Sequence[Any], words: Sequence[Any]) -> None:
        self.language: str = row["language"]
        self.duration_s: float = float(row["duration_s"])
        self.segments = [Seg(s["idx"], s["start_s"], s["end_s"], s["text"]) for s in segments]
        self.words: dict[int, list[str]] = {}
        for w in words:
            self.words.setdefault(w["segment_idx"], []).append(w["text"])


def derive(rt: Runtime, job_id: uuid.UUID, retries: int) -> None:
    """Run the job's post-transcription stages and finish it."""
    ctx = JobContext(rt, job_id)
    row = ctx.fetch_job()
    if row is None or row["state"] in states.TERMINAL:
        return
    owner = row["owner"]
    if row["cancel_requested"]:
        ctx.finish_cancelled(owner)
        return
    stage = "ANALYZE"
    try:
        if row["state"] == states.QUEUED and not ctx.claim(
            row, "ANALYZE", "deriving from the existing transcript"
        ):
            ctx.finish_cancelled(owner)
            return
        transcript = _ensure_transcript(ctx, row)
        todo = derived.for_transcript(row["options"] or {}, transcript.language)
        state = _DeriveState(ctx, row, transcript)
        for n, stage in enumerate(todo):
            ctx.running_event(
                STARTED,
                set_fields={"stage": stage, "progress": n / max(1, len(todo))},
                message=_STARTED_MESSAGES[stage],
            )
            with CpuMeter() as cpu:
                usage = _RUNNERS[stage](state)
            ctx.record_cost(owner, stage, cpu.seconds, tokens=usage.total)
            ctx.running_event(FINISHED, stage_progress=1.0, message=f"{stage.lower()} done")
        recorded = ctx.event(
            STATE,
            set_fields={
                "state": states.SUCCEEDED,
                "stage": "FINALIZE",
                "progress": 1.0,
                "end_time": events.NOW,
            },
            require_states=(states.RUNNING,),
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
    "ANALYZE": "writing summaries and chapters",
    "HIGHLIGHTS": "choosing highlights",
    "RENDER_CLIPS": "rendering clips",
    "TRANSLATE": "translating",
    "ROMANIZE": "romanizing",
}


def _ensure_transcript(ctx: JobContext, row: Any) -> _Transcript:
    """The job's transcript; a child job copies its parent's first (once)."""
    rt, job_id = ctx.rt, ctx.job_id

    async def _load() -> _Transcript | None:
        async with rt.pool.acquire() as conn:
            found = await transcripts_db.get_transcript(conn, job_id, with_words=True)
            if found is None and row["parent_id"] is not None:
                async with conn.transaction():
                    await transcripts_db.copy_transcript(conn, row["parent_id"], job_id)
                found = await transcripts_db.get_transcript(conn, job_id, with_words=True)
            return None if found is None else _Transcript(*found)

    transcript = rt.call(_load())
    if transcript is None:
        raise StageFailed("TRANSCRIPT_NOT_FOUND", "the parent job has no transcript any more")
    return transcript


class _DeriveState:
    """Results handed from one stage to the next within a run."""

    def __init__(self, ctx: JobContext, row: Any, transcript: _Transcript) -> None:
        self.ctx = ctx
        self.row = row
        self.options: dict[str, Any] = dict(row["options"] or {})
        self.transcript = transcript
        self.analysis: Analysis | None = None

    def store(self, kind: str, provider: str, payload: dict[str, Any], tokens: int = 0) -> None:
        """Keep a stage's result with the job (no expiry)."""
        self.ctx.db(
            analyses_db.put,
            self.ctx.job_id,
            kind,
            provider,
            payload,
            tokens=tokens,
            ttl_s=None,
        )


def _analyze(st: _DeriveState) -> Usage:
    settings = st.ctx.settings
    provider = analysis.get_provider(settings)
    result = provider.analyze(st.transcript.segments)
    st.ctx.check_cancelled(force=True)

    st.store(
        analyses_db.ANALYSIS,
        provider.name,
        analyses_db.analysis_to_json(result),
        tokens=result.usage.total,
    )
    st.analysis = result
    if result.usage.total:
        PROVIDER_TOKENS.labels(provider.name).inc(result.usage.total)
    return result.usage


def _highlights(st: _DeriveState) -> Usage:
    settings = st.ctx.settings
    assert st.analysis is not None  # ANALYZE runs first
    regions = st.ctx.rt.call(chunks_db.load_regions(st.ctx.rt.pool, st.ctx.job_id))
    plans = highlights_mod.choose(
        st.transcript.segments,
        st.analysis.importance,
        regions,
        count=int(st.options.get("highlight_count") or settings.default_highlight_count),
        min_s=settings.highlight_min_s,
        max_s=settings.highlight_max_s,
        duration_s=st.transcript.duration_s,
    )

    st.ctx.db(analyses_db.replace_highlights, st.ctx.job_id, plans)
    return Usage()


def _render_clips(st: _DeriveState) -> Usage:
    ctx, owner = st.ctx, st.row["owner"]
    workdir = ctx.workdir(owner)
    workdir.mkdir(parents=True, exist_ok=True)
    source = _media_file(st, workdir)
    store = blobs.BlobStore(ctx.settings.blob_dir)
    cues = [(s.start_s, s.end_s, s.text) for s in st.transcript.segments]

    rows = ctx.db(analyses_db.list_highlights, ctx.job_id)
    for n, h in enumerate(rows):
        ctx.check_cancelled()
        plan = clips.ClipPlan(
            h["start_s"],
            h["end_s"],
            burn_captions=bool(st.options.get("clip_burn_captions")),
            vertical=bool(st.options.get("clip_vertical")),
        )
        rendered = clips.render_clip(source, plan, cues, workdir, f"clip-{h['idx']}")
        key = f"{blobs.owner_prefix(owner)}/clips/{ctx.job_id}/{h['idx']}{rendered.path.suffix}"
        target = store.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(rendered.path, target)

        ctx.db(
            analyses_db.set_clip,
            ctx.job_id,
            h["idx"],
            blob_key=key,
            size_bytes=rendered.size_bytes,
            mime_type=rendered.mime_type,
            captions_srt=rendered.captions_srt,
            start_s=rendered.start_s,
            end_s=rendered.start_s + rendered.duration_s,
        )
        ctx.progress("RENDER_CLIPS", (n + 1) / len(rows), f"clip {n + 1} of {len(rows)} rendered")
    return Usage()


def _media_file(st: _DeriveState, workdir: Path) -> Path:
    """The original media: the uploaded blob, or the URL downloaded again."""
    ctx, row = st.ctx, st.row
    if row["media_id"] is not None:
        return ctx.uploaded_media(row)[0]
    # A child job carries its parent's source, so a URL job's media is fetched again.
    if not row["source_uri"]:
        raise StageFailed("MEDIA_MISSING", "the job has no media to cut clips from")
    dest = workdir / "source"
    if not dest.exists():
        fetch.download(row["source_uri"], dest, ctx.download_limits())
    return dest


def _translate(st: _DeriveState) -> Usage:
    language = str(st.options.get("translate_to") or "")
    provider = analysis.get_provider(st.ctx.settings)
    kind = analyses_db.translation_kind(language)
    ttl = st.ctx.settings.analysis_cache_ttl_s

    payload = st.ctx.db(analyses_db.find_for_transcript, st.ctx.job_id, kind, provider.name, ttl)
    usage = Usage()
    if payload is None:
        result = provider.translate(st.transcript.segments, language)
        payload = {"language": language, "texts": list(result.texts)}
        usage = result.usage
        if usage.total:
            PROVIDER_TOKENS.labels(provider.name).inc(usage.total)

    st.store(kind, provider.name, payload, tokens=usage.total)
    return usage


def _romanize(st: _DeriveState) -> Usage:
    segments = []
    for seg in st.transcript.segments:
        jyutping, yale = cantonese.romanize_text(seg.text)
        words = cantonese.romanize_words(st.transcript.words.get(seg.index, []))
        segments.append({"index": seg.index, "jyutping": jyutping, "yale": yale, "words": words})

    st.store(analyses_db.ROMANIZATION, "pycantonese", {"segments": segments})
    return Usage()


_RUNNERS = {
    "ANALYZE": _analyze,
    "HIGHLIGHTS": _highlights,
    "RENDER_CLIPS": _render_clips,
    "TRANSLATE": _translate,
    "ROMANIZE": _romanize,
}
