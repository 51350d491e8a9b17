"""TranscriptService: reading results of finished jobs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import structlog

from reelscribe import captions, convert, exports, names, states
from reelscribe.db import jobs as jobs_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unimplemented,
)
from reelscribe.v1 import transcript_service_pb2 as tpb
from reelscribe.v1 import transcript_service_pb2_grpc
from server.context import current_principal
from server.deps import Deps
from server.services import validation

log = structlog.get_logger(__name__)


class TranscriptService(transcript_service_pb2_grpc.TranscriptServiceServicer):
    """Implements `reelscribe.v1.TranscriptService`."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _load_transcript(self, name: str, *, with_words: bool) -> tpb.Transcript:
        job_id: uuid.UUID = names.parse_transcript_name(name)
        async with self._deps.pool.acquire() as conn:
            job = await jobs_db.get_visible_job(conn, job_id, current_principal(), name)
            if job["state"] != states.SUCCEEDED:
                raise FailedPrecondition(
                    f"{names.job_name(job_id)} is {job['state']}; its transcript is available "
                    "once it SUCCEEDED",
                    reason="TRANSCRIPT_NOT_READY",
                )
            key = transcripts_db.redis_key(job["owner"], job_id)
            found = await self._cached(key)
            if found is None:
                found = await _read(conn, job_id, with_words=True)
                if found is not None:
                    await self._remember(key, found)
        if found is None:
            raise NotFound(f"{name} has no transcript", reason="TRANSCRIPT_NOT_FOUND")
        if not with_words:
            for segment in found.segments:
                del segment.words[:]
        return found

    async def _cached(self, key: str) -> tpb.Transcript | None:
        # The cache only saves time: when Redis is away, read Postgres.
        try:
            raw = await self._deps.redis.get(key)
        except Exception as exc:
            log.warning("transcript cache unavailable", error=repr(exc))
            return None
        if not raw:
            return None
        return tpb.Transcript.FromString(raw if isinstance(raw, bytes) else raw.encode())

    async def _remember(self, key: str, transcript: tpb.Transcript) -> None:
        try:
            await self._deps.redis.set(
                key, transcript.SerializeToString(), ex=transcripts_db.CACHE_TTL_S
            )
        except Exception as exc:
            log.warning("transcript cache unavailable", error=repr(exc))

    async def GetTranscript(
        self, request: tpb.GetTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> tpb.GetTranscriptResponse:
        transcript = await self._load_transcript(request.name, with_words=not request.omit_words)
        return tpb.GetTranscriptResponse(transcript=transcript)

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
        validation.check(violations)
        transcript = await self._load_transcript(
            request.name, with_words=fmt != tpb.EXPORT_FORMAT_TXT
        )
        stem = transcript.name.split("/")[1]
        if fmt == tpb.EXPORT_FORMAT_TXT:
            content, mime, ext = exports.to_text(transcript), "text/plain; charset=utf-8", "txt"
        elif fmt == tpb.EXPORT_FORMAT_JSON:
            content, mime, ext = exports.to_json(transcript), "application/json", "json"
        else:
            caps = captions.layout(transcript.segments, captions.CaptionLayout.from_pb(opts))
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
        raise Unimplemented("GetSummary: the analysis stage (summaries) is not built yet")

    async def ListChapters(
        self, request: tpb.ListChaptersRequest, context: grpc.aio.ServicerContext
    ) -> tpb.ListChaptersResponse:
        raise Unimplemented("ListChapters: the analysis stage (chapters) is not built yet")

    async def ListHighlights(
        self, request: tpb.ListHighlightsRequest, context: grpc.aio.ServicerContext
    ) -> tpb.ListHighlightsResponse:
        raise Unimplemented("ListHighlights: the highlights stage is not built yet")

    async def ReadClip(
        self, request: tpb.ReadClipRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tpb.ReadClipResponse]:
        raise Unimplemented("ReadClip: clip rendering is not built yet")
        yield  # pragma: no cover - makes this an async generator

    async def AskQuestion(
        self, request: tpb.AskQuestionRequest, context: grpc.aio.ServicerContext
    ) -> tpb.AskQuestionResponse:
        raise Unimplemented("AskQuestion: question answering is not built yet")


async def _read(
    conn: asyncpg.Connection, job_id: uuid.UUID, with_words: bool
) -> tpb.Transcript | None:
    found = await transcripts_db.get_transcript(conn, job_id, with_words=with_words)
    if found is None:
        return None
    row, segments, words = found
    return convert.transcript_to_pb(row, segments, words)
