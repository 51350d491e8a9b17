"""The async client: deadlines on every call, retries where they are safe,
resumable uploads and watches that resume by sequence number.

Long on purpose: it is the one client class users read, one method per RPC
plus the upload and watch resumption they share; splitting the class across
modules would scatter the deadline and retry rules every method follows.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from reelscribe_client._errors import ReelscribeError, from_rpc_error
from reelscribe_client._proto.reelscribe import v1

T = TypeVar("T")

CHUNK_BYTES = 1024 * 1024
#: Codes worth retrying for calls that are safe to repeat.
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
_TERMINAL = (v1.JobState.SUCCEEDED, v1.JobState.FAILED, v1.JobState.CANCELLED)


def _route(service: str, method: str) -> str:
    return f"/reelscribe.v1.{service}/{method}"


class ReelscribeClient:
    """A connection to a Reelscribe server, acting as one user.

    Use as an async context manager::

        async with ReelscribeClient("127.0.0.1:50051", token) as client:
            media = await client.upload(Path("talk.mp4"))
            job = await client.create_job(media=media.name)
            async for event in client.watch(job.name):
                print(event.seq, event.job.progress)
    """

    def __init__(
        self,
        address: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 5,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._channel = channel or grpc.aio.insecure_channel(address)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts

    async def __aenter__(self) -> ReelscribeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(None)

    # -- plumbing ------------------------------------------------------------------

    async def _unary(
        self,
        service: str,
        method: str,
        request: Any,
        response_type: type[T],
        *,
        idempotent: bool,
        timeout_s: float | None = None,
    ) -> T:
        call = self._channel.unary_unary(
            _route(service, method),
            request_serializer=lambda m: bytes(m),
            response_deserializer=response_type.FromString,  # type: ignore[attr-defined]
        )
        return await self._retrying(
            lambda: call(request, metadata=self._metadata, timeout=timeout_s or self._timeout_s),
            idempotent=idempotent,
        )

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        for n in range(1, self._max_attempts + 1):
            try:
                return await attempt()
            except grpc.aio.AioRpcError as exc:
                error = from_rpc_error(exc)
                if not idempotent or exc.code() not in _RETRYABLE or n == self._max_attempts:
                    raise error from exc
                await asyncio.sleep(_backoff_s(n, error.retry_after_s))
        raise AssertionError("unreachable")

    # -- uploads ---------------------------------------------------------------------

    async def upload(
        self,
        path: str | os.PathLike[str],
        *,
        upload_id: str | None = None,
        timeout_s: float = 3600.0,
    ) -> v1.Media:
        """Upload a file (a `str` or `Path`) in 1 MiB chunks; a dropped stream
        resumes where it stopped."""
        path = Path(path)
        data_size = (await asyncio.to_thread(path.stat)).st_size
        digest = await asyncio.to_thread(_file_sha256, path)
        header = v1.UploadHeader(
            filename=path.name,
            size_bytes=data_size,
            sha256=digest,
            upload_id=upload_id or str(uuid.uuid4()),
        )
        call = self._channel.stream_unary(
            _route("JobService", "UploadMedia"),
            request_serializer=lambda m: bytes(m),
            response_deserializer=v1.UploadMediaResponse.FromString,
        )
        offset = 0
        for n in range(1, self._max_attempts + 1):
            header.offset_bytes = offset
            try:
                reply = await call(
                    _chunks(header, path, offset), metadata=self._metadata, timeout=timeout_s
                )
                assert reply.media is not None
                return reply.media
            except grpc.aio.AioRpcError as exc:
                error = from_rpc_error(exc)
                if exc.code() not in _RETRYABLE or n == self._max_attempts:
                    raise error from exc
                await asyncio.sleep(_backoff_s(n, error.retry_after_s))
                try:
                    status = await self.get_upload(header.upload_id)
                except ReelscribeError as missing:
                    if missing.code != grpc.StatusCode.NOT_FOUND:
                        raise
                    # Refused before anything was stored (a rate limit, a
                    # server that was away): start again from the beginning.
                    offset = 0
                    continue
                if status.media is not None:
                    return status.media
                offset = status.stored_bytes
        raise AssertionError("unreachable")

    async def get_upload(self, upload_id: str) -> v1.GetUploadResponse:
        """How much of an upload is stored."""
        return await self._unary(
            "JobService",
            "GetUpload",
            v1.GetUploadRequest(upload_id=upload_id),
            v1.GetUploadResponse,
            idempotent=True,
        )

    async def delete_media(self, name: str) -> None:
        """Delete uploaded media and its file (jobs made from it keep their results).

        Not retried: a repeat after a lost reply would be NOT_FOUND.
        """
        await self._unary(
            "JobService",
            "DeleteMedia",
            v1.DeleteMediaRequest(name=name),
            v1.DeleteMediaResponse,
            idempotent=False,
        )

    # -- jobs --------------------------------------------------------------------------

    async def create_job(
        self,
        *,
        media: str = "",
        source_uri: str = "",
        parent: str = "",
        options: v1.JobOptions | None = None,
        request_id: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> v1.Job:
        """Create a job for uploaded `media`, a `source_uri`, or a `parent` job whose
        transcript is reused (only `options.extra_stages` run). A request id makes
        it safe to retry, so it always has one; `labels` are stored with the job."""
        request = v1.CreateJobRequest(
            request_id=request_id or str(uuid.uuid4()),
            options=options or v1.JobOptions(),
            labels=dict(labels or {}),
        )
        if media:
            request.media = media
        elif parent:
            request.parent = parent
        else:
            request.source_uri = source_uri
        reply = await self._unary(
            "JobService", "CreateJob", request, v1.CreateJobResponse, idempotent=True
        )
        assert reply.job is not None
        return reply.job

    async def get_job(self, name: str) -> v1.Job:
        """One job."""
        reply = await self._unary(
            "JobService", "GetJob", v1.GetJobRequest(name=name), v1.GetJobResponse, idempotent=True
        )
        assert reply.job is not None
        return reply.job

    async def list_jobs(
        self, *, states: list[v1.JobState] | None = None, page_size: int = 100
    ) -> AsyncIterator[v1.Job]:
        """All the caller's jobs, newest first, across pages."""
        token = ""
        while True:
            page = await self._unary(
                "JobService",
                "ListJobs",
                v1.ListJobsRequest(page_size=page_size, page_token=token, states=states or []),
                v1.ListJobsResponse,
                idempotent=True,
            )
            for job in page.jobs:
                yield job
            token = page.next_page_token
            if not token:
                return

    async def cancel_job(self, name: str) -> v1.Job:
        """Cancel a job (repeating it is harmless)."""
        reply = await self._unary(
            "JobService",
            "CancelJob",
            v1.CancelJobRequest(name=name),
            v1.CancelJobResponse,
            idempotent=True,
        )
        assert reply.job is not None
        return reply.job

    async def delete_job(self, name: str) -> None:
        """Delete a finished job with its events, results and clips (FAILED_PRECONDITION
        while it is queued or running: cancel it first).

        Not retried: a repeat after a lost reply would be NOT_FOUND.
        """
        await self._unary(
            "JobService",
            "DeleteJob",
            v1.DeleteJobRequest(name=name),
            v1.DeleteJobResponse,
            idempotent=False,
        )

    async def watch(
        self, name: str, *, after_seq: int = 0, include_heartbeats: bool = False
    ) -> AsyncIterator[v1.JobEvent]:
        """A job's events until its terminal one, resuming after drops by sequence number.

        The first event is a snapshot (seq 0) on every (re)connection; logged
        events (seq >= 1) arrive exactly once and in order.
        """
        call = self._channel.unary_stream(
            _route("JobService", "WatchJob"),
            request_serializer=lambda m: bytes(m),
            response_deserializer=v1.WatchJobResponse.FromString,
        )
        last = after_seq
        failures = 0
        while True:
            stream = call(v1.WatchJobRequest(name=name, after_seq=last), metadata=self._metadata)
            try:
                async for reply in stream:
                    event = reply.event
                    if event is None:
                        continue
                    failures = 0
                    if event.seq:
                        if event.seq <= last:
                            continue  # already delivered before a reconnect
                        last = event.seq
                    elif event.kind == v1.JobEventKind.HEARTBEAT and not include_heartbeats:
                        continue
                    yield event
                    if (
                        event.seq
                        and event.kind == v1.JobEventKind.STATE_CHANGED
                        and event.job
                        and event.job.state in _TERMINAL
                    ):
                        return
                return
            except grpc.aio.AioRpcError as exc:
                failures += 1
                if exc.code() not in _RETRYABLE or failures >= self._max_attempts:
                    raise from_rpc_error(exc) from exc
                await asyncio.sleep(_backoff_s(failures, None))
            finally:
                stream.cancel()

    async def watch_jobs(
        self,
        *,
        states: list[v1.JobState] | None = None,
        after_cursor: str = "",
        include_heartbeats: bool = False,
    ) -> AsyncIterator[v1.WatchJobsResponse]:
        """Events of all the caller's jobs, each with the cursor to resume after it.

        Without `after_cursor` the stream starts with a snapshot of every
        unfinished job; after a drop it reconnects with the last cursor it
        delivered, so every logged event arrives exactly once. The stream does
        not end by itself: stop iterating (or cancel the task) when done.
        """
        call = self._channel.unary_stream(
            _route("JobService", "WatchJobs"),
            request_serializer=lambda m: bytes(m),
            response_deserializer=v1.WatchJobsResponse.FromString,
        )
        cursor = after_cursor
        failures = 0
        while True:
            request = v1.WatchJobsRequest(states=states or [], after_cursor=cursor)
            stream = call(request, metadata=self._metadata)
            try:
                async for reply in stream:
                    failures = 0
                    if reply.cursor:
                        cursor = reply.cursor
                    event = reply.event
                    if event is None:
                        continue
                    if event.kind == v1.JobEventKind.HEARTBEAT and not include_heartbeats:
                        continue
                    yield reply
                return
            except grpc.aio.AioRpcError as exc:
                failures += 1
                if exc.code() not in _RETRYABLE or failures >= self._max_attempts:
                    raise from_rpc_error(exc) from exc
                await asyncio.sleep(_backoff_s(failures, None))
            finally:
                stream.cancel()

    async def webhook_deliveries(
        self, name: str, *, page_size: int = 100
    ) -> AsyncIterator[v1.WebhookDelivery]:
        """Every attempt to POST a job's events to its callback URL, oldest first."""
        token = ""
        while True:
            page = await self._unary(
                "JobService",
                "ListWebhookDeliveries",
                v1.ListWebhookDeliveriesRequest(name=name, page_size=page_size, page_token=token),
                v1.ListWebhookDeliveriesResponse,
                idempotent=True,
            )
            for delivery in page.deliveries:
                yield delivery
            token = page.next_page_token
            if not token:
                return

    async def get_usage(self) -> v1.GetUsageResponse:
        """The caller's plan, stored jobs, audio minutes today and stored bytes, with
        the plan's limits (0: unlimited)."""
        return await self._unary(
            "JobService", "GetUsage", v1.GetUsageRequest(), v1.GetUsageResponse, idempotent=True
        )

    async def list_models(self) -> list[v1.SpeechModel]:
        """The server's installed speech models (`JobOptions.model` names one):
        languages, relative speed, and which is the default."""
        reply = await self._unary(
            "JobService",
            "ListModels",
            v1.ListModelsRequest(),
            v1.ListModelsResponse,
            idempotent=True,
        )
        return list(reply.models)

    # -- search -----------------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        mode: v1.SearchMode = v1.SearchMode.HYBRID,
        jobs: list[str] | None = None,
        page_size: int = 10,
        page_token: str = "",
    ) -> v1.SearchResponse:
        """Moments in the caller's library that match `query`."""
        return await self._unary(
            "SearchService",
            "Search",
            v1.SearchRequest(
                query=query, mode=mode, jobs=jobs or [], page_size=page_size, page_token=page_token
            ),
            v1.SearchResponse,
            idempotent=True,
        )

    # -- results ---------------------------------------------------------------------------

    async def transcript(self, name: str, *, omit_words: bool = False) -> v1.Transcript:
        """A finished job's transcript."""
        reply = await self._unary(
            "TranscriptService",
            "GetTranscript",
            v1.GetTranscriptRequest(name=name, omit_words=omit_words),
            v1.GetTranscriptResponse,
            idempotent=True,
            timeout_s=120,
        )
        assert reply.transcript is not None
        return reply.transcript

    async def export(
        self, name: str, fmt: v1.ExportFormat, captions: v1.CaptionOptions | None = None
    ) -> str:
        """A finished job's transcript as SRT, WebVTT, text or JSON."""
        reply = await self._unary(
            "TranscriptService",
            "ExportTranscript",
            v1.ExportTranscriptRequest(name=name, format=fmt, caption_options=captions),
            v1.ExportTranscriptResponse,
            idempotent=True,
            timeout_s=120,
        )
        return reply.content

    async def summary(
        self, name: str, fmt: v1.SummaryFormat = v1.SummaryFormat.SHORT
    ) -> v1.GetSummaryResponse:
        """A job's summary (computed on first use when the job did not analyze)."""
        return await self._unary(
            "TranscriptService",
            "GetSummary",
            v1.GetSummaryRequest(name=name, format=fmt),
            v1.GetSummaryResponse,
            idempotent=True,
            timeout_s=300,
        )

    async def chapters(self, name: str) -> list[v1.Chapter]:
        """A job's chapters in time order."""
        reply = await self._unary(
            "TranscriptService",
            "ListChapters",
            v1.ListChaptersRequest(name=name),
            v1.ListChaptersResponse,
            idempotent=True,
            timeout_s=300,
        )
        return list(reply.chapters)

    async def highlights(self, name: str) -> list[v1.Highlight]:
        """A job's highlights, best first."""
        reply = await self._unary(
            "TranscriptService",
            "ListHighlights",
            v1.ListHighlightsRequest(name=name),
            v1.ListHighlightsResponse,
            idempotent=True,
            timeout_s=300,
        )
        return list(reply.highlights)

    async def rename_speaker(self, name: str, display_name: str) -> v1.Speaker:
        """Name a speaker, `jobs/{job}/speakers/{n}` (empty restores `Speaker n`);
        transcripts, exports and results show the new name at once."""
        reply = await self._unary(
            "TranscriptService",
            "RenameSpeaker",
            v1.RenameSpeakerRequest(name=name, display_name=display_name),
            v1.RenameSpeakerResponse,
            idempotent=True,
        )
        assert reply.speaker is not None
        return reply.speaker

    async def download_clip(self, name: str, dest: str | os.PathLike[str]) -> int:
        """Write a highlight's clip to `dest` (a `str` or `Path`); a dropped stream
        resumes where it stopped. Returns the size in bytes."""
        call = self._channel.unary_stream(
            _route("TranscriptService", "ReadClip"),
            request_serializer=lambda m: bytes(m),
            response_deserializer=v1.ReadClipResponse.FromString,
        )
        with await asyncio.to_thread(Path(dest).open, "wb") as out:
            for n in range(1, self._max_attempts + 1):
                try:
                    stream = call(
                        v1.ReadClipRequest(name=name, offset_bytes=out.tell()),
                        metadata=self._metadata,
                        timeout=self._timeout_s,
                    )
                    size = 0
                    async for piece in stream:
                        size = piece.size_bytes
                        await asyncio.to_thread(out.write, piece.data)
                    return size
                except grpc.aio.AioRpcError as exc:
                    error = from_rpc_error(exc)
                    if exc.code() not in _RETRYABLE or n == self._max_attempts:
                        raise error from exc
                    await asyncio.sleep(_backoff_s(n, error.retry_after_s))
        raise AssertionError("unreachable")

    async def ask(self, question: str, *, job: str = "") -> v1.AskQuestionResponse:
        """An answer from one job (or the whole library) with timestamped citations."""
        return await self._unary(
            "TranscriptService",
            "AskQuestion",
            v1.AskQuestionRequest(question=question, name=job),
            v1.AskQuestionResponse,
            idempotent=True,
            timeout_s=300,
        )

    async def cost_report(
        self, *, start_date: str = "", end_date: str = ""
    ) -> v1.GetCostReportResponse:
        """Estimated cost per UTC day (`YYYY-MM-DD` bounds; default the last 30 days)."""
        return await self._unary(
            "JobService",
            "GetCostReport",
            v1.GetCostReportRequest(start_date=start_date, end_date=end_date),
            v1.GetCostReportResponse,
            idempotent=True,
        )


def _backoff_s(attempt: int, retry_after_s: float | None) -> float:
    if retry_after_s is not None:
        return retry_after_s
    return min(0.1 * 2 ** (attempt - 1), 5.0) * (0.5 + random.random())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


async def _chunks(
    header: v1.UploadHeader, path: Path, offset: int
) -> AsyncIterator[v1.UploadMediaRequest]:
    yield v1.UploadMediaRequest(header=header)
    with path.open("rb") as fh:
        fh.seek(offset)
        while block := await asyncio.to_thread(fh.read, CHUNK_BYTES):
            yield v1.UploadMediaRequest(chunk=block)


__all__ = ["ReelscribeClient", "ReelscribeError"]
