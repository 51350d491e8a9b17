"""JobService: uploads, job lifecycle and progress streams."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import dramatiq
import grpc
import structlog

from reelscribe import analysis, convert, derived, events, fetch, media, names, queue, states
from reelscribe.db import analyses as analyses_db
from reelscribe.db import jobs as jobs_db
from reelscribe.db import media as media_db
from reelscribe.db import search as search_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MediaError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    Unavailable,
)
from reelscribe.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from server import pagination
from server.context import current_principal
from server.deps import Deps
from server.quotas import Quotas
from server.services import validation
from server.streams import Entry, follow
from server.uploads import Uploads

log = structlog.get_logger(__name__)

_MAX_FILENAME = 255
#: Most highlights one job may ask for.
MAX_HIGHLIGHTS = 20
#: Longest period one cost report covers.
MAX_REPORT_DAYS = 366


class JobService(job_service_pb2_grpc.JobServiceServicer):
    """Implements `reelscribe.v1.JobService`."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._uploads = Uploads(deps.settings, deps.pool, deps.redis, deps.blobs)
        self._quotas = Quotas(deps.settings)

    # -- uploads -----------------------------------------------------------

    async def UploadMedia(
        self,
        request_iterator: AsyncIterator[job_service_pb2.UploadMediaRequest],
        context: grpc.aio.ServicerContext,
    ) -> job_service_pb2.UploadMediaResponse:
        try:
            first = await anext(request_iterator)
        except StopAsyncIteration:
            raise InvalidArgument.field(
                "header", "the stream is empty; send a header first"
            ) from None
        if first.WhichOneof("data") != "header":
            raise InvalidArgument.field("header", "the first message must carry the header")
        row = await self._uploads.receive(
            current_principal().subject, first.header, request_iterator
        )
        return job_service_pb2.UploadMediaResponse(media=convert.media_to_pb(row))

    async def GetUpload(
        self, request: job_service_pb2.GetUploadRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetUploadResponse:
        return await self._uploads.status(current_principal().subject, request.upload_id)

    # -- jobs ----------------------------------------------------------------

    async def CreateJob(
        self, request: job_service_pb2.CreateJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.CreateJobResponse:
        owner = current_principal().subject
        settings = self._deps.settings
        violations = validation.request_id(request.request_id, "request_id")
        violations += validation.language(request.options.language, "options.language")
        violations += validation.labels(dict(request.labels), "labels")
        model = request.options.model or settings.whisper_model_name
        if model != settings.whisper_model_name:
            violations.append(
                FieldViolation(
                    "options.model",
                    f"unknown model {model[:40]!r}; available: {settings.whisper_model_name}",
                )
            )
        elif model.endswith(".en") and request.options.language not in ("", "en"):
            violations.append(
                FieldViolation("options.language", f"model {model} transcribes English only")
            )
        violations += self._derive_option_violations(request.options)
        validation.check(violations)
        if request.options.translate_to and analysis.provider_name(settings) == "local":
            raise FailedPrecondition(
                "translation needs a model provider: the local provider cannot translate "
                "(set GEMINI_API_KEY on the workers and servers)",
                reason="TRANSLATION_UNAVAILABLE",
            )

        source = request.WhichOneof("source")
        media_id: uuid.UUID | None = None
        if source == "media":
            media_id = names.parse_media_name(request.media, "media")
        elif source == "source_uri":
            await self._check_url(request.source_uri, "source_uri")
        elif source == "parent":
            return await self._create_child(request)
        else:
            raise InvalidArgument.field(
                "source", "set `media` (from UploadMedia) or `source_uri` (an http(s) URL)"
            )

        request_hash = _request_hash(request)

        if request.options.callback_uri:
            await self._check_url(request.options.callback_uri, "options.callback_uri")
        options = {
            "language": request.options.language,
            "model": model,
            "disable_word_timestamps": request.options.disable_word_timestamps,
            "skip_cache": request.options.skip_cache,
            "callback_uri": request.options.callback_uri,
            "callback_stage_events": request.options.callback_stage_events,
            **self._derive_options(request.options),
        }
        stages_after = derived.requested(options)
        async with self._deps.pool.acquire() as conn:
            earlier = await self._earlier(conn, owner, request, request_hash)
            if earlier is not None:
                return earlier
            media_row = None
            if media_id is not None:
                media_row = await media_db.get_media(conn, media_id, owner=owner)
                if media_row is None:
                    raise NotFound(f"{request.media} not found", reason="MEDIA_NOT_FOUND")
        duration_s = await self._probe(media_row) if media_row is not None else None
        async with self._deps.pool.acquire() as conn:
            await self._quotas.check_new_job(conn, current_principal(), duration_s or 0.0)

        job_id = uuid.uuid4()
        message = self._deps.queue.message(queue.PREPARE_JOB, job_id)
        derive_message = self._deps.queue.message(queue.DERIVE_JOB, job_id)
        async with self._deps.pool.acquire() as conn:
            cached = None
            if media_row is not None and not request.options.skip_cache:
                key = transcripts_db.cache_key(owner, media_row["sha256"], options)
                cached = await transcripts_db.find_cached(conn, key)
            async with conn.transaction():
                created = await jobs_db.insert_job(
                    conn,
                    job_id=job_id,
                    owner=owner,
                    request_id=request.request_id or None,
                    request_hash=request_hash,
                    media_id=media_id,
                    source_uri=request.source_uri or None,
                    parent_id=None,
                    options=options,
                    labels=dict(request.labels),
                    pending_message_id=None,
                    media_duration_s=duration_s,
                )
                if created is None:  # a concurrent retry with the same request_id won
                    earlier = await self._earlier(conn, owner, request, request_hash)
                    assert earlier is not None
                    return earlier
                row, recorded = created
                published = [recorded]
                if cached is not None and stages_after:
                    # The transcript is reused; only the requested stages run.
                    await self._reuse_transcript(conn, job_id, cached["job_id"])
                    await conn.execute("UPDATE jobs SET cache_hit = true WHERE id = $1", job_id)
                    row = await jobs_db.get_job(conn, job_id, owner=owner)
                elif cached is not None:
                    hit = await self._complete_from_cache(conn, job_id, cached["job_id"])
                    published.append(hit)
                    row = await jobs_db.get_job(conn, job_id, owner=owner)
            if cached is not None and stages_after:
                await self._enqueue_or_undo(conn, job_id, derive_message)
            if cached is None:
                await self._enqueue_or_undo(conn, job_id, message)
        for event in published:
            await self._publish(event)
        log.info("job created", job=names.job_name(job_id), cache_hit=cached is not None)
        return job_service_pb2.CreateJobResponse(job=convert.job_to_pb(row))

    async def _enqueue_or_undo(
        self, conn: asyncpg.Connection, job_id: uuid.UUID, message: dramatiq.Message[None]
    ) -> None:
        try:
            broker_id = await asyncio.to_thread(self._deps.queue.enqueue_sync, message)
        except Exception as exc:
            # Without a queued message the job would never run: undo it so
            # a retry with the same request_id starts cleanly.
            await jobs_db.delete_job(conn, job_id)
            raise Unavailable("the work queue is unavailable; retry shortly") from exc
        # The reconciler looks this id up in the broker if the job stalls.
        await conn.execute(
            "UPDATE jobs SET queue = $3, pending_message_id = CASE WHEN state = 'QUEUED'"
            " THEN $2 ELSE pending_message_id END WHERE id = $1",
            job_id,
            broker_id,
            self._deps.settings.queue_name,
        )

    @staticmethod
    def _derive_option_violations(opts: job_pb2.JobOptions) -> list[FieldViolation]:
        out: list[FieldViolation] = []
        for stage in opts.extra_stages:
            name = job_pb2.Stage.Name(stage) if stage in job_pb2.Stage.values() else str(stage)
            if name.removeprefix("STAGE_") not in derived.ORDER:
                out.append(
                    FieldViolation(
                        "options.extra_stages",
                        f"{name} cannot be requested; choose from "
                        + ", ".join(f"STAGE_{s}" for s in derived.ORDER),
                    )
                )
        if not 0 <= opts.highlight_count <= MAX_HIGHLIGHTS:
            out.append(FieldViolation("options.highlight_count", f"0-{MAX_HIGHLIGHTS}"))
        out += validation.known_language(opts.translate_to, "options.translate_to")
        return out

    @staticmethod
    def _derive_options(opts: job_pb2.JobOptions) -> dict[str, Any]:
        """The stored form of the post-transcription options."""
        return {
            "extra_stages": sorted(
                {job_pb2.Stage.Name(s).removeprefix("STAGE_") for s in opts.extra_stages}
            ),
            "highlight_count": opts.highlight_count,
            "translate_to": opts.translate_to,
            "clip_burn_captions": opts.clip_burn_captions,
            "clip_vertical": opts.clip_vertical,
        }

    async def _create_child(
        self, request: job_service_pb2.CreateJobRequest
    ) -> job_service_pb2.CreateJobResponse:
        """A job that reuses its parent's transcript and runs only later stages."""
        owner = current_principal().subject
        parent_id = names.parse_job_name(request.parent, "parent")
        options = {
            "language": "",
            "model": "",
            "callback_uri": request.options.callback_uri,
            "callback_stage_events": request.options.callback_stage_events,
            **self._derive_options(request.options),
        }
        if not derived.requested(options):
            raise InvalidArgument.field(
                "options.extra_stages",
                "a job with a parent must ask for at least one stage (extra_stages, "
                "highlight_count or translate_to)",
            )
        if request.options.callback_uri:
            await self._check_url(request.options.callback_uri, "options.callback_uri")
        request_hash = _request_hash(request)
        job_id = uuid.uuid4()
        message = self._deps.queue.message(queue.DERIVE_JOB, job_id)
        async with self._deps.pool.acquire() as conn:
            earlier = await self._earlier(conn, owner, request, request_hash)
            if earlier is not None:
                return earlier
            parent = await jobs_db.get_visible_job(
                conn, parent_id, current_principal(), request.parent
            )
            has_transcript = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM transcripts WHERE job_id = $1)", parent_id
            )
            if parent["state"] != states.SUCCEEDED or not has_transcript:
                raise FailedPrecondition(
                    f"{request.parent} is {parent['state']}; a child job needs a parent "
                    "whose transcript is ready",
                    reason="PARENT_NOT_READY",
                )
            await self._quotas.check_new_job(conn, current_principal(), 0.0)
            async with conn.transaction():
                created = await jobs_db.insert_job(
                    conn,
                    job_id=job_id,
                    owner=owner,
                    request_id=request.request_id or None,
                    request_hash=request_hash,
                    media_id=parent["media_id"],
                    source_uri=parent["source_uri"],
                    parent_id=parent_id,
                    options=options,
                    labels=dict(request.labels),
                    pending_message_id=None,
                    media_duration_s=parent["media_duration_s"],
                )
                if created is None:  # a concurrent retry with the same request_id won
                    earlier = await self._earlier(conn, owner, request, request_hash)
                    assert earlier is not None
                    return earlier
                row, recorded = created
            await self._enqueue_or_undo(conn, job_id, message)
        await self._publish(recorded)
        log.info("child job created", job=names.job_name(job_id), parent=request.parent)
        return job_service_pb2.CreateJobResponse(job=convert.job_to_pb(row))

    @staticmethod
    async def _reuse_transcript(
        conn: asyncpg.Connection, job_id: uuid.UUID, source_id: uuid.UUID
    ) -> None:
        await transcripts_db.copy_transcript(conn, source_id, job_id)
        await search_db.copy_index(conn, source_id, job_id)

    async def _check_url(self, url: str, field: str) -> None:
        """Refuse URLs that are malformed or lead to non-public addresses, early.

        The worker checks again at download time (and on every redirect); this
        only gives the caller a clear error instead of a FAILED job.
        """
        try:
            allowed = fetch.parse_networks(self._deps.settings.url_allowed_networks)
            await asyncio.to_thread(fetch.check_url, url, allowed)
        except MediaError as exc:
            raise InvalidArgument(
                exc.message,
                reason=exc.reason,
                violations=[FieldViolation(field, exc.message)],
            ) from exc

    async def _probe(self, media_row: asyncpg.Record) -> float:
        """Refuse media that cannot be transcribed before any work is queued."""
        path = self._deps.blobs.path(media_row["blob_key"])
        try:
            info = await asyncio.to_thread(media.probe, path)
        except MediaError as exc:
            raise InvalidArgument(
                f"{names.media_name(media_row['id'])}: {exc.message}",
                reason=exc.reason,
                violations=[FieldViolation("media", exc.message)],
            ) from exc
        limit_s = self._deps.settings.max_media_duration_s
        if info.duration_s > limit_s:
            raise InvalidArgument(
                f"media lasts {info.duration_s / 3600:.1f} h; the limit is {limit_s / 3600:.1f} h",
                reason="MEDIA_TOO_LONG",
                violations=[FieldViolation("media", "longer than the configured maximum")],
            )
        return info.duration_s

    @staticmethod
    async def _complete_from_cache(
        conn: asyncpg.Connection, job_id: uuid.UUID, source_id: uuid.UUID
    ) -> events.RecordedEvent:
        await JobService._reuse_transcript(conn, job_id, source_id)
        duration = await conn.fetchval("SELECT media_duration_s FROM jobs WHERE id = $1", source_id)
        recorded = await events.append_event(
            conn,
            job_id,
            kind=job_pb2.JOB_EVENT_KIND_STATE_CHANGED,
            set_fields={
                "state": states.SUCCEEDED,
                "stage": "FINALIZE",
                "progress": 1.0,
                "cache_hit": True,
                "media_duration_s": duration,
                "start_time": events.NOW,
                "end_time": events.NOW,
            },
            message=f"cache hit: reused the transcript of {names.job_name(source_id)}",
        )
        assert recorded is not None
        return recorded

    @staticmethod
    async def _earlier(
        conn: asyncpg.Connection,
        owner: str,
        request: job_service_pb2.CreateJobRequest,
        request_hash: str,
    ) -> job_service_pb2.CreateJobResponse | None:
        """The answer to an earlier call with this request_id, if there was one
        (ALREADY_EXISTS if that call asked for something else)."""
        if not request.request_id:
            return None
        row = await jobs_db.find_by_request_id(conn, owner, request.request_id)
        if row is None:
            return None
        if row["request_hash"] != request_hash:
            raise AlreadyExists(
                "request_id was already used for a different request", reason="REQUEST_ID_REUSED"
            )
        return job_service_pb2.CreateJobResponse(job=convert.job_to_pb(row))

    async def _load(self, name: str) -> asyncpg.Record:
        job_id = names.parse_job_name(name)
        async with self._deps.pool.acquire() as conn:
            return await jobs_db.get_visible_job(conn, job_id, current_principal(), name)

    async def GetJob(
        self, request: job_service_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetJobResponse:
        row = await self._load(request.name)
        return job_service_pb2.GetJobResponse(job=convert.job_to_pb(row))

    async def ListJobs(
        self, request: job_service_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.ListJobsResponse:
        principal = current_principal()
        if request.all_users and not principal.is_admin:
            raise PermissionDenied("all_users needs the admin role", reason="ADMIN_ONLY")
        size = pagination.page_size(request.page_size)
        try:
            job_states = sorted({states.state_from_pb(s) for s in request.states})
        except ValueError as exc:
            raise InvalidArgument.field("states", "unknown or unspecified state") from exc
        query = f"{sorted(job_states)}|{request.all_users}"
        after = pagination.decode(request.page_token, query=query)
        async with self._deps.pool.acquire() as conn:
            rows = await jobs_db.list_jobs(
                conn,
                owner=None if request.all_users else principal.subject,
                job_states=job_states,
                limit=size + 1,
                after=after,
            )
        response = job_service_pb2.ListJobsResponse(
            jobs=[convert.job_to_pb(r) for r in rows[:size]]
        )
        if len(rows) > size:
            last = rows[size - 1]
            response.next_page_token = pagination.encode(
                last["create_time"], last["id"], query=query
            )
        return response

    async def CancelJob(
        self, request: job_service_pb2.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.CancelJobResponse:
        row = await self._load(request.name)
        job_id = row["id"]
        async with self._deps.pool.acquire() as conn:
            # The job ends now; the state guard makes this and a worker's
            # "succeeded" mutually exclusive. Workers see the state at their
            # next checkpoint (at most about a second later), stop, and remove
            # partial results and scratch files.
            recorded = await events.cancel(conn, job_id)
            current = await jobs_db.get_job(conn, job_id, owner=None)
        assert current is not None
        if recorded is not None:
            await self._publish(recorded)
        elif current["state"] in (states.SUCCEEDED, states.FAILED):
            raise FailedPrecondition(
                f"{request.name} already finished ({current['state']})", reason="JOB_FINISHED"
            )
        return job_service_pb2.CancelJobResponse(job=convert.job_to_pb(current))

    async def DeleteJob(
        self, request: job_service_pb2.DeleteJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.DeleteJobResponse:
        row = await self._load(request.name)
        if row["state"] not in states.TERMINAL:
            raise FailedPrecondition(
                "only finished jobs can be deleted; cancel it first", reason="JOB_ACTIVE"
            )
        async with self._deps.pool.acquire() as conn:
            # Child jobs go with their parent (the foreign key cascades); so do their clips.
            clip_keys = await conn.fetch(
                "WITH RECURSIVE tree AS (SELECT id FROM jobs WHERE id = $1"
                " UNION SELECT j.id FROM jobs j JOIN tree t ON j.parent_id = t.id)"
                " SELECT clip_blob_key FROM highlights WHERE job_id IN (SELECT id FROM tree)"
                " AND clip_blob_key IS NOT NULL",
                row["id"],
            )
            await jobs_db.delete_job(conn, row["id"])
        for key in clip_keys:
            await asyncio.to_thread(self._deps.blobs.delete, key["clip_blob_key"])
        await transcripts_db.invalidate_cache(self._deps.redis, row["owner"], row["id"])
        return job_service_pb2.DeleteJobResponse()

    # -- progress --------------------------------------------------------------

    async def WatchJob(
        self, request: job_service_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        if request.after_seq < 0:
            raise InvalidArgument.field("after_seq", "must not be negative")
        row = await self._load(request.name)
        job_id = row["id"]
        if request.after_seq > row["last_event_seq"]:
            raise OutOfRange(
                f"after_seq {request.after_seq} is beyond the last event "
                f"({row['last_event_seq']}); watch again with after_seq=0 "
                "to re-read the snapshot",
                reason="AFTER_SEQ_BEYOND_END",
            )
        async with self._deps.hub.subscribe(events.job_channel(job_id)) as sub:
            snapshot = _snapshot(row)
            yield job_service_pb2.WatchJobResponse(event=snapshot)
            if row["state"] in states.TERMINAL and request.after_seq >= row["last_event_seq"]:
                return

            async def read_after(last: int) -> list[Entry[job_service_pb2.WatchJobResponse]]:
                async with self._deps.pool.acquire() as conn:
                    logged = await events.read_events(conn, job_id, after_seq=last)
                return [
                    Entry(e.seq, job_service_pb2.WatchJobResponse(event=e), terminal)
                    for e, terminal in logged
                ]

            async for message in follow(
                sub,
                after=request.after_seq,
                read_after=read_after,
                parse_live=_parse_job_live,
                heartbeat=lambda _: job_service_pb2.WatchJobResponse(event=_heartbeat()),
                heartbeat_s=self._deps.settings.watch_heartbeat_s,
            ):
                yield message

    async def WatchJobs(
        self, request: job_service_pb2.WatchJobsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.WatchJobsResponse]:
        owner = current_principal().subject
        try:
            wanted = {int(states.state_to_pb(states.state_from_pb(s))) for s in request.states}
        except ValueError as exc:
            raise InvalidArgument.field("states", "unknown or unspecified state") from exc
        async with self._deps.pool.acquire() as conn:
            head = await events.last_owner_seq(conn, owner)
            active = (
                []
                if request.after_cursor
                else await jobs_db.list_jobs(
                    conn, owner=owner, job_states=states.ACTIVE, limit=1000, after=None
                )
            )
        if request.after_cursor:
            if not request.after_cursor.isdigit():
                raise InvalidArgument.field("after_cursor", "not a cursor from this stream")
            after = int(request.after_cursor)
            if after > head:
                raise OutOfRange(
                    "after_cursor is beyond the last event; watch again without a cursor "
                    "to re-read the snapshot",
                    reason="CURSOR_BEYOND_END",
                )
        else:
            after = head

        def keep(event: job_pb2.JobEvent) -> bool:
            return not wanted or event.job.state in wanted

        def message(position: int, event: job_pb2.JobEvent) -> job_service_pb2.WatchJobsResponse:
            return job_service_pb2.WatchJobsResponse(event=event, cursor=str(position))

        async with self._deps.hub.subscribe(events.owner_channel(owner)) as sub:
            # Without a cursor: where every unfinished job stands, then live.
            for row in reversed(active):
                snapshot = _snapshot(row)
                if keep(snapshot):
                    yield message(after, snapshot)

            async def read_after(last: int) -> list[Entry[job_service_pb2.WatchJobsResponse]]:
                async with self._deps.pool.acquire() as conn:
                    logged = await events.read_owner_events(conn, owner, after=last)
                return [Entry(pos, message(pos, e)) for pos, e in logged]

            async for reply in follow(
                sub,
                after=after,
                read_after=read_after,
                parse_live=_parse_owner_live,
                heartbeat=lambda last: message(last, _heartbeat()),
                heartbeat_s=self._deps.settings.watch_heartbeat_s,
            ):
                if reply.event.kind == job_pb2.JOB_EVENT_KIND_HEARTBEAT or keep(reply.event):
                    yield reply

    # -- not built yet -----------------------------------------------------------

    async def GetUsage(
        self, request: job_service_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetUsageResponse:
        async with self._deps.pool.acquire() as conn:
            return await self._quotas.usage(conn, current_principal())

    async def ListWebhookDeliveries(
        self,
        request: job_service_pb2.ListWebhookDeliveriesRequest,
        context: grpc.aio.ServicerContext,
    ) -> job_service_pb2.ListWebhookDeliveriesResponse:
        row = await self._load(request.name)
        size = pagination.page_size(request.page_size, default=100)
        after = (0, 0)
        if request.page_token:
            try:
                seq, attempt = (int(x) for x in request.page_token.split(":"))
                after = (seq, attempt)
            except ValueError as exc:
                raise InvalidArgument.field("page_token", "malformed page token") from exc
        async with self._deps.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT d.event_seq, a.attempt, a.time, a.http_status, a.delivered, a.error"
                " FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
                " WHERE d.job_id = $1 AND (d.event_seq, a.attempt) > ($2, $3)"
                " ORDER BY d.event_seq, a.attempt LIMIT $4",
                row["id"],
                after[0],
                after[1],
                size + 1,
            )
        reply = job_service_pb2.ListWebhookDeliveriesResponse()
        for r in rows[:size]:
            delivery = job_service_pb2.WebhookDelivery(
                event_seq=r["event_seq"],
                attempt=r["attempt"],
                http_status=r["http_status"],
                delivered=r["delivered"],
                error=r["error"],
            )
            delivery.time.FromDatetime(r["time"])
            reply.deliveries.append(delivery)
        if len(rows) > size:
            last = rows[size - 1]
            reply.next_page_token = f"{last['event_seq']}:{last['attempt']}"
        return reply

    async def GetCostReport(
        self, request: job_service_pb2.GetCostReportRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetCostReportResponse:
        today = datetime.now(UTC).date()
        first = _parse_day(request.start_date, "start_date", today - timedelta(days=30))
        last = _parse_day(request.end_date, "end_date", today)
        if first > last:
            raise InvalidArgument.field("start_date", "must not be after end_date")
        if (last - first).days >= MAX_REPORT_DAYS:
            raise InvalidArgument.field("start_date", f"at most {MAX_REPORT_DAYS} days at once")
        async with self._deps.pool.acquire() as conn:
            rows = await analyses_db.daily_costs(conn, current_principal().subject, first, last)
        days = [
            job_service_pb2.DailyCost(
                date=r["day"].isoformat(),
                audio_minutes=float(r["audio_minutes"]),
                cpu_seconds=float(r["cpu_seconds"]),
                provider_tokens=int(r["tokens"]),
                cost_usd=float(r["cost_usd"]),
            )
            for r in rows
        ]
        return job_service_pb2.GetCostReportResponse(
            days=days, total_cost_usd=sum(d.cost_usd for d in days)
        )

    async def _publish(self, recorded: events.RecordedEvent) -> None:
        # Best effort: watchers re-read the Postgres log on heartbeats, so a
        # failed publish delays an event but never loses it.
        try:
            await events.publish(self._deps.redis, recorded)
        except Exception as exc:
            log.warning("event publish failed", error=repr(exc), seq=recorded.seq)


def _parse_job_live(payload: bytes) -> Entry[job_service_pb2.WatchJobResponse]:
    # Module-level on purpose: the hub caches decodes per function object, so
    # all watchers of a job share one decode of each message.
    event = job_pb2.JobEvent.FromString(payload)
    return Entry(event.seq, job_service_pb2.WatchJobResponse(event=event), _is_terminal(event))


def _parse_owner_live(payload: bytes) -> Entry[job_service_pb2.WatchJobsResponse]:
    reply = job_service_pb2.WatchJobsResponse.FromString(payload)
    return Entry(int(reply.cursor), reply)


def _snapshot(row: asyncpg.Record) -> job_pb2.JobEvent:
    """The job as it is now, as a (not logged) event."""
    event = job_pb2.JobEvent(
        seq=0,
        kind=job_pb2.JOB_EVENT_KIND_SNAPSHOT,
        job=convert.job_to_pb(row),
        stage=states.stage_to_pb(row["stage"]),
        message=row["message"],
    )
    event.time.GetCurrentTime()
    return event


def _heartbeat() -> job_pb2.JobEvent:
    event = job_pb2.JobEvent(seq=0, kind=job_pb2.JOB_EVENT_KIND_HEARTBEAT)
    event.time.GetCurrentTime()
    return event


def _is_terminal(event: job_pb2.JobEvent) -> bool:
    return event.kind == job_pb2.JOB_EVENT_KIND_STATE_CHANGED and event.job.state in (
        job_pb2.JOB_STATE_SUCCEEDED,
        job_pb2.JOB_STATE_FAILED,
        job_pb2.JOB_STATE_CANCELLED,
    )


def _parse_day(value: str, field: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidArgument.field(field, "a UTC day as YYYY-MM-DD") from exc


def _request_hash(request: job_service_pb2.CreateJobRequest) -> str:
    """The fingerprint of everything but the idempotency key: it decides whether a
    repeated request_id is a retry (same job) or a conflict."""
    copy = job_service_pb2.CreateJobRequest()
    copy.CopyFrom(request)
    copy.request_id = ""
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()
