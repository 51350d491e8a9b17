"""TranscriptService: reading results of finished jobs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import structlog

from reelscribe import cantonese, captions, convert, exports, library, names, validation
from reelscribe.db import insights as insights_db
from reelscribe.db import jobs as jobs_db
from reelscribe.db import search as search_db
from reelscribe.db import speakers as speakers_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from reelscribe.insights import Seg
from reelscribe.states import JobState
from reelscribe.v1 import search_service_pb2 as spb
from reelscribe.v1 import transcript_service_pb2 as tpb
from reelscribe.v1 import transcript_service_pb2_grpc
from server import blobread, cache, clip_urls
from server.context import current_principal
from server.deps import Deps
from server.insights import Insights, summary_of
from server.services.partial_transcript import get_partial_transcript
from server.services.search import SearchService

log = structlog.get_logger(__name__)


class TranscriptService(transcript_service_pb2_grpc.TranscriptServiceServicer):
    """Implements `reelscribe.v1.TranscriptService`."""

    def __init__(self, deps: Deps, search: SearchService) -> None:
        self._deps = deps
        self._search = search
        self._insights = Insights(deps)

    async def _load_transcript(
        self, name: str, *, with_words: bool, translation: str = ""
    ) -> tpb.Transcript:
        job_id: uuid.UUID = names.parse_transcript_name(name)
        async with self._deps.pool.acquire() as conn:
            job = await jobs_db.get_visible_job(conn, job_id, current_principal(), name)
            key = transcripts_db.redis_key(job["owner"], job_id)
            found = await cache.get_message(self._deps.redis, key, tpb.Transcript)
            if found is None:
                found = await _read(conn, job_id, with_words=True)
                if found is not None:
                    # Cached with its romanization: the ROMANIZE stage invalidates
                    # the cache when its job ends.
                    await _overlay_romanization(conn, job_id, found)
                    await cache.put_message(
                        self._deps.redis, key, found, transcripts_db.CACHE_TTL_S
                    )
            if found is None and job["state"] != JobState.SUCCEEDED:
                # A job that failed in a stage after transcription keeps its
                # transcript; before that there is nothing to read.
                raise FailedPrecondition(
                    f"{names.job_name(job_id)} is {job['state']}; its transcript is available "
                    "once it SUCCEEDED",
                    reason="TRANSCRIPT_NOT_READY",
                )
            if found is not None and translation:
                await _overlay_translation(conn, job_id, translation, found)
        if found is None:
            raise NotFound(f"{name} has no transcript", reason="TRANSCRIPT_NOT_FOUND")
        if not with_words or translation:
            for segment in found.segments:
                del segment.words[:]
        return found

    async def _job(self, name: str, field: str = "name") -> asyncpg.Record:
        job_id = names.parse_job_name(name, field)
        async with self._deps.pool.acquire() as conn:
            return await jobs_db.get_visible_job(conn, job_id, current_principal(), name)

    async def GetTranscript(
        self, request: tpb.GetTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> tpb.GetTranscriptResponse:
        validation.check(validation.language(request.translation_language, "translation_language"))
        transcript = await self._load_transcript(
            request.name,
            with_words=not request.omit_words,
            translation=request.translation_language,
        )
        return tpb.GetTranscriptResponse(transcript=transcript)

    async def GetPartialTranscript(
        self, request: tpb.GetPartialTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> tpb.GetPartialTranscriptResponse:
        return await get_partial_transcript(self._deps, request)

    async def ExportTranscript(
        self, request: tpb.ExportTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> tpb.ExportTranscriptResponse:
        fmt = request.format
        if fmt == tpb.EXPORT_FORMAT_UNSPECIFIED or fmt not in tpb.ExportFormat.values():
            raise InvalidArgument.field("format", "choose SRT, VTT, TXT or JSON")
        opts = request.caption_options
        violations = [
            FieldViolation(f"caption_options.{name}", "must not be negative")
            for name, value in (
                ("max_chars_per_line", opts.max_chars_per_line),
                ("max_lines", opts.max_lines),
                ("max_duration_seconds", opts.max_duration_seconds),
            )
            if value < 0
        ]
        if 0 < opts.max_chars_per_line < 10:
            violations.append(FieldViolation("caption_options.max_chars_per_line", "at least 10"))
        violations += validation.language(request.translation_language, "translation_language")
        validation.check(violations)
        transcript = await self._load_transcript(
            request.name,
            with_words=fmt != tpb.EXPORT_FORMAT_TXT,
            translation=request.translation_language,
        )
        stem = transcript.name.split("/")[1]
        if fmt == tpb.EXPORT_FORMAT_TXT:
            content, mime, ext = exports.to_text(transcript), "text/plain; charset=utf-8", "txt"
        elif fmt == tpb.EXPORT_FORMAT_JSON:
            content, mime, ext = exports.to_json(transcript), "application/json", "json"
        else:
            lay = captions.CaptionLayout.from_pb(opts)
            if opts.romanization_line:
                # A Jyutping line under each Chinese line; pycantonese is slow to load.
                caps = await asyncio.to_thread(cantonese.romanized_layout, transcript.segments, lay)
            else:
                caps = captions.layout(
                    transcript.segments, lay, speaker_prefix=fmt == tpb.EXPORT_FORMAT_SRT
                )
            if fmt == tpb.EXPORT_FORMAT_SRT:
                content, mime, ext = captions.to_srt(caps), "application/x-subrip", "srt"
            else:
                content, mime, ext = captions.to_vtt(caps), "text/vtt", "vtt"
        return tpb.ExportTranscriptResponse(
            content=content, mime_type=mime, filename=f"{stem}.{ext}"
        )

    async def GetSummary(
        self, request: tpb.GetSummaryRequest, context: grpc.aio.ServicerContext
    ) -> tpb.GetSummaryResponse:
        if request.format not in tpb.SummaryFormat.values():
            raise InvalidArgument.field("format", "choose SHORT, BULLETS or DETAILED")
        fmt = _SUMMARY_FORMATS.get(request.format, "short")
        provider, result = await self._insights.analysis(await self._job(request.name))
        summary = summary_of(result, fmt)
        return tpb.GetSummaryResponse(
            text=summary.text, bullets=list(summary.bullets), provider=provider
        )

    async def ListChapters(
        self, request: tpb.ListChaptersRequest, context: grpc.aio.ServicerContext
    ) -> tpb.ListChaptersResponse:
        _, result = await self._insights.analysis(await self._job(request.name))
        return tpb.ListChaptersResponse(
            chapters=[
                tpb.Chapter(title=c.title, start_seconds=c.start_s, end_seconds=c.end_s)
                for c in sorted(result.chapters, key=lambda c: c.start_s)
            ]
        )

    async def ListHighlights(
        self, request: tpb.ListHighlightsRequest, context: grpc.aio.ServicerContext
    ) -> tpb.ListHighlightsResponse:
        job = await self._job(request.name)
        rows = await self._insights.highlights(job)
        highlights = [convert.highlight_to_pb(r) for r in rows]
        async with self._deps.pool.acquire() as conn:
            speakers = await speakers_db.dominant_names(
                conn, [(job["id"], r["start_s"], r["end_s"]) for r in rows]
            )
        for highlight, speaker in zip(highlights, speakers, strict=True):
            highlight.speaker = speaker
        await clip_urls.add(self._deps, rows, highlights)
        return tpb.ListHighlightsResponse(highlights=highlights)

    async def RenameSpeaker(
        self, request: tpb.RenameSpeakerRequest, context: grpc.aio.ServicerContext
    ) -> tpb.RenameSpeakerResponse:
        job_id, idx = names.parse_speaker_name(request.name)
        display_name = request.display_name.strip()
        if len(display_name) > MAX_SPEAKER_NAME_CHARS:
            raise InvalidArgument.field(
                "display_name",
                f"1-{MAX_SPEAKER_NAME_CHARS} characters (empty restores the default)",
            )
        if any(not c.isprintable() for c in display_name):
            raise InvalidArgument.field("display_name", "must not contain control characters")
        principal = current_principal()
        async with self._deps.pool.acquire() as conn:
            # Only the owner names speakers; another user's job does not exist for them.
            job = await jobs_db.get_job(conn, job_id, owner=principal.subject)
            if job is None:
                raise NotFound(f"{request.name} not found", reason="JOB_NOT_FOUND")
            row = await speakers_db.rename(conn, job_id, idx, display_name)
        if row is None:
            raise NotFound(f"{request.name} not found", reason="SPEAKER_NOT_FOUND")
        # The cached transcript carries names: the next read builds it again.
        await transcripts_db.invalidate_cache(self._deps.redis, job["owner"], job_id)
        return tpb.RenameSpeakerResponse(
            speaker=tpb.Speaker(
                name=names.speaker_name(job_id, row.idx),
                display_name=row.display_name,
                speaking_seconds=row.speaking_s,
            )
        )

    async def ReadClip(
        self, request: tpb.ReadClipRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tpb.ReadClipResponse]:
        job_id, idx = names.parse_highlight_name(request.name)
        if request.offset_bytes < 0:
            raise InvalidArgument.field("offset_bytes", "must not be negative")
        async with self._deps.pool.acquire() as conn:
            await jobs_db.get_visible_job(conn, job_id, current_principal(), request.name)
            row = await insights_db.get_highlight(conn, job_id, idx)
        if row is None:
            raise NotFound(f"{request.name} not found", reason="HIGHLIGHT_NOT_FOUND")
        if not row["clip_blob_key"]:
            raise FailedPrecondition(
                f"{request.name} has no rendered clip; create a job with "
                "STAGE_RENDER_CLIPS in options.extra_stages",
                reason="CLIP_NOT_RENDERED",
            )
        size = int(row["clip_size_bytes"])
        blobread.check_offset(request.offset_bytes, size, "clip")
        pieces = blobread.pieces(
            self._deps.blobs,
            row["clip_blob_key"],
            size=size,
            offset=request.offset_bytes,
            gone=lambda why: NotFound(
                f"{request.name}: the clip file is {why}", reason="CLIP_MISSING"
            ),
        )
        async for offset, data in pieces:
            yield tpb.ReadClipResponse(offset_bytes=offset, data=data, size_bytes=size)

    async def AskQuestion(
        self, request: tpb.AskQuestionRequest, context: grpc.aio.ServicerContext
    ) -> tpb.AskQuestionResponse:
        question = request.question.strip()
        limit = self._deps.settings.max_query_chars
        if not question:
            raise InvalidArgument.field("question", "must not be empty")
        if len(question) > limit:
            raise InvalidArgument.field("question", f"at most {limit} characters")
        owner = current_principal().subject
        job_id = None
        if request.name:
            job_id = (await self._job(request.name))["id"]
        key = await self._answer_key(owner, question, job_id)
        cached = (
            await cache.get_message(self._deps.redis, key, tpb.AskQuestionResponse) if key else None
        )
        if cached is not None:
            return await self._with_speakers(cached)
        filters = search_db.Filters(owner=owner, job_ids=[job_id] if job_id else [])
        async with self._deps.pool.acquire() as conn:
            hits = await self._search.retrieve(
                conn, question, filters, spb.SEARCH_MODE_HYBRID, ANSWER_PASSAGES
            )
        hits = hits[:ANSWER_PASSAGES]
        passages = [Seg(i, h.start_s, h.end_s, h.text) for i, h in enumerate(hits)]
        provider, answer = await self._insights.answer(question, passages)
        reply = tpb.AskQuestionResponse(
            answer=answer.text,
            provider=provider,
            citations=[
                tpb.Citation(
                    job=names.job_name(hits[i].job_id),
                    start_seconds=hits[i].start_s,
                    end_seconds=hits[i].end_s,
                    text=hits[i].text,
                )
                for i in answer.cited
                if 0 <= i < len(hits)
            ],
        )
        if key:
            await cache.put_message(
                self._deps.redis, key, reply, self._deps.settings.answer_cache_ttl_s
            )
        return await self._with_speakers(reply)

    async def _with_speakers(self, reply: tpb.AskQuestionResponse) -> tpb.AskQuestionResponse:
        """The citations with their speakers' current names (never cached: a
        rename shows at once)."""
        spans = [
            (names.parse_job_name(c.job, "job"), c.start_seconds, c.end_seconds)
            for c in reply.citations
        ]
        async with self._deps.pool.acquire() as conn:
            speakers = await speakers_db.dominant_names(conn, spans)
        for citation, speaker in zip(reply.citations, speakers, strict=True):
            citation.speaker = speaker
        return reply

    async def _answer_key(self, owner: str, question: str, job_id: uuid.UUID | None) -> str:
        """The answer's cache key; "" (no caching) when the library generation is unknown."""
        try:
            generation = await library.generation(self._deps.redis, owner)
        except Exception as exc:
            log.warning("cache unavailable", key_kind="library-generation", error=repr(exc))
            return ""
        return self._insights.answer_cache_key(owner, question, job_id, generation)


_SUMMARY_FORMATS = {
    tpb.SUMMARY_FORMAT_UNSPECIFIED: "short",
    tpb.SUMMARY_FORMAT_SHORT: "short",
    tpb.SUMMARY_FORMAT_BULLETS: "bullets",
    tpb.SUMMARY_FORMAT_DETAILED: "detailed",
}
#: Passages an answer is drawn from.
ANSWER_PASSAGES = 5
#: Longest speaker name.
MAX_SPEAKER_NAME_CHARS = 100


async def _overlay_romanization(
    conn: asyncpg.Connection, job_id: uuid.UUID, transcript: tpb.Transcript
) -> None:
    stored = await insights_db.get_any(conn, job_id, insights_db.ROMANIZATION)
    if stored is None:
        return
    by_index = {s["index"]: s for s in stored[1]["segments"]}
    for segment in transcript.segments:
        found = by_index.get(segment.index)
        if found is None:
            continue
        segment.jyutping, segment.yale = found["jyutping"], found["yale"]
        for word, jyutping in zip(segment.words, found["words"], strict=False):
            word.jyutping = jyutping
        # Romanizations stored before words had Yale have none.
        for word, yale in zip(segment.words, found.get("words_yale", ()), strict=False):
            word.yale = yale


async def _overlay_translation(
    conn: asyncpg.Connection, job_id: uuid.UUID, language: str, transcript: tpb.Transcript
) -> None:
    stored = await insights_db.get_any(conn, job_id, insights_db.translation_kind(language))
    if stored is None:
        raise FailedPrecondition(
            f"{names.job_name(job_id)} has no translation into {language!r}; create a job "
            f"with parent={names.job_name(job_id)} and options.translate_to={language!r}",
            reason="TRANSLATION_NOT_FOUND",
        )
    texts = stored[1]["texts"]
    for segment, text in zip(transcript.segments, texts, strict=False):
        segment.text = text
    transcript.text = " ".join(t.strip() for t in texts)
    transcript.language = language


async def _read(
    conn: asyncpg.Connection, job_id: uuid.UUID, with_words: bool
) -> tpb.Transcript | None:
    found = await transcripts_db.get_transcript(conn, job_id, with_words=with_words)
    if found is None:
        return None
    row, segments, words = found
    speakers = await speakers_db.list_speakers(conn, job_id)
    return convert.transcript_to_pb(row, segments, words, speakers)
