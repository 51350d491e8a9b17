"""TranscriptService: reading results of finished jobs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc

from reelscribe import convert, exports, names, states
from reelscribe.db import jobs as jobs_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from reelscribe.v1 import transcript_service_pb2 as tpb
from reelscribe.v1 import transcript_service_pb2_grpc
from server.context import current_principal
from server.deps import Deps


class TranscriptService(transcript_service_pb2_grpc.TranscriptServiceServicer):
    """Implements `reelscribe.v1.TranscriptService`."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _load_transcript(self, name: str, *, with_words: bool) -> tpb.Transcript:
        job_id: uuid.UUID = names.parse_transcript_name(name)
        principal = current_principal()
        async with self._deps.pool.acquire() as conn:
            job = await jobs_db.get_job(
                conn, job_id, owner=None if principal.is_admin else principal.subject
            )
            if job is None:
                raise NotFound(f"{name} not found", reason="JOB_NOT_FOUND")
            if job["state"] != states.SUCCEEDED:
                raise FailedPrecondition(
                    f"{names.job_name(job_id)} is {job['state']}; its transcript is available "
                    "once it SUCCEEDED",
                    reason="TRANSCRIPT_NOT_READY",
                )
            found = await _read(conn, job_id, with_words)
        if found is None:
            raise NotFound(f"{name} has no transcript", reason="TRANSCRIPT_NOT_FOUND")
        return found

    async def GetTranscript(
        self, request: tpb.GetTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> tpb.GetTranscriptResponse:
        transcript = await self._load_transcript(request.name, with_words=not request.omit_words)
        return tpb.GetTranscriptResponse(transcript=transcript)

    async def ExportTranscript(
        self, request: tpb.ExportTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> tpb.ExportTranscriptResponse:
        fmt = request.format
        if fmt in (tpb.EXPORT_FORMAT_SRT, tpb.EXPORT_FORMAT_VTT):
            raise Unimplemented(
                "ExportTranscript: SRT and WebVTT captions are not built yet; "
                "TXT and JSON are available"
            )
        if fmt not in (tpb.EXPORT_FORMAT_TXT, tpb.EXPORT_FORMAT_JSON):
            raise InvalidArgument.field("format", "choose SRT, VTT, TXT or JSON")
        transcript = await self._load_transcript(
            request.name, with_words=fmt == tpb.EXPORT_FORMAT_JSON
        )
        stem = transcript.name.split("/")[1]
        if fmt == tpb.EXPORT_FORMAT_TXT:
            return tpb.ExportTranscriptResponse(
                content=exports.to_text(transcript),
                mime_type="text/plain; charset=utf-8",
                filename=f"{stem}.txt",
            )
        return tpb.ExportTranscriptResponse(
            content=exports.to_json(transcript),
            mime_type="application/json",
            filename=f"{stem}.json",
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
