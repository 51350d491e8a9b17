"""CreateJob: validate, admit, then one insert-and-enqueue path for every kind of job.

A job starts from uploaded media (`media`), a URL the workers download
(`source_uri`), or a finished parent job whose transcript it reuses
(`parent`). Whatever the source, creation goes:

1. validate the request (`JobOptions.violations` holds every option rule);
2. answer a retry: an earlier call with the same `request_id` gets the same
   job back (ALREADY_EXISTS if it asked for something else);
3. admit the job: the media exists and can be transcribed (probed here, so
   a bad file fails the call instead of the job), the parent's transcript is
   ready; uploaded media may hit the transcript cache;
4. under the owner's advisory lock, check the plan's quotas and insert the job,
   its first event and (for a job that transcribes) its row in the usage
   ledger in one transaction, then enqueue its first message (none when the
   cache already finished it), undoing the insert if the queue is down so a
   retry starts cleanly.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import asyncpg
import structlog

from reelscribe import (
    convert,
    events,
    fetch,
    insights,
    media,
    names,
    queue,
    speech_models,
    validation,
)
from reelscribe.auth import Principal
from reelscribe.config import Settings
from reelscribe.db import events as events_db
from reelscribe.db import jobs as jobs_db
from reelscribe.db import media as media_db
from reelscribe.db import search as search_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.db import usage as usage_db
from reelscribe.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MediaError,
    NotFound,
    Unavailable,
)
from reelscribe.insights import providers
from reelscribe.options import JobOptions
from reelscribe.states import JobState, Stage
from reelscribe.v1 import job_pb2, job_service_pb2
from server.deps import Deps
from server.jobs.records import publish
from server.quotas import Quotas

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Admitted:
    """A job ready to insert: where its media comes from and how it starts."""

    options: JobOptions
    media_id: uuid.UUID | None = None
    source_uri: str | None = None
    parent_id: uuid.UUID | None = None
    media_duration_s: float | None = None
    #: A finished job whose transcript (same owner, media and options) is reused.
    cached_from: uuid.UUID | None = None


def prepare_actor(source_uri: str | None, duration_s: float | None, chunk_target_s: float) -> str:
    """The short jobs' lane for uploaded media whose probed length fits one
    chunk, else the lane of new jobs. The length a header claims decides only
    the lane: the worker measures the real length, and a long file fans out
    as usual."""
    fits = duration_s is not None and duration_s <= chunk_target_s
    return queue.PREPARE_SHORT_JOB if source_uri is None and fits else queue.PREPARE_JOB


class JobCreation:
    """The CreateJob RPC."""

    def __init__(self, deps: Deps, quotas: Quotas) -> None:
        self._deps = deps
        self._quotas = quotas

    async def create(
        self, principal: Principal, request: job_service_pb2.CreateJobRequest
    ) -> job_service_pb2.CreateJobResponse:
        """Create (or, for a retried `request_id`, return) the job `request` asks for."""
        settings = self._deps.settings
        validation.check(
            validation.request_id(request.request_id, "request_id")
            + JobOptions.violations(request.options, default_model=settings.whisper_model_name)
            + validation.labels(dict(request.labels), "labels")
        )
        _check_translation(settings, request.options.translate_to)
        options = JobOptions.from_pb(request.options, default_model=settings.whisper_model_name)
        admit: Callable[[], Awaitable[_Admitted]]
        source = request.WhichOneof("source")
        if source == "media":
            media_id = names.parse_media_name(request.media, "media")
            admit = partial(self._admit_media, principal, request.media, media_id, options)
        elif source == "source_uri":
            await self._check_url(request.source_uri, "source_uri")
            admit = partial(self._admit_url, principal, request.source_uri, options)
        elif source == "parent":
            parent_id = names.parse_job_name(request.parent, "parent")
            # A child job never transcribes: it only runs the stages it asks for.
            options = options.for_child()
            if not options.requested_stages():
                raise InvalidArgument.field(
                    "options.extra_stages",
                    "a job with a parent must ask for at least one stage (extra_stages, "
                    "highlight_count or translate_to)",
                )
            admit = partial(self._admit_child, principal, request.parent, parent_id, options)
        else:
            raise InvalidArgument.field(
                "source", "set `media` (from UploadMedia) or `source_uri` (an http(s) URL)"
            )
        if options.callback_uri:
            await self._check_url(options.callback_uri, "options.callback_uri")

        request_hash = _request_hash(request)
        async with self._deps.pool.acquire() as conn:
            earlier = await _earlier(conn, principal.subject, request, request_hash)
        if earlier is not None:
            return earlier
        admitted = await admit()
        return await self._insert_and_enqueue(principal, request, request_hash, admitted)

    # -- admission, per source ----------------------------------------------------------------

    async def _admit_media(
        self, principal: Principal, name: str, media_id: uuid.UUID, options: JobOptions
    ) -> _Admitted:
        async with self._deps.pool.acquire() as conn:
            media_row = await media_db.get_media(conn, media_id, owner=principal.subject)
        if media_row is None:
            raise NotFound(f"{name} not found", reason="MEDIA_NOT_FOUND")
        duration_s = await self._probe(media_row)
        cached = None
        if not options.skip_cache:
            async with self._deps.pool.acquire() as conn:
                key = transcripts_db.cache_key(principal.subject, media_row["sha256"], options)
                cached = await transcripts_db.find_cached(conn, key)
        return _Admitted(
            options,
            media_id=media_id,
            media_duration_s=duration_s,
            cached_from=None if cached is None else cached["job_id"],
        )

    async def _admit_url(self, principal: Principal, url: str, options: JobOptions) -> _Admitted:
        # The length is unknown until a worker downloads and decodes the media:
        # the job reserves nothing now and is bounded by the quota at decode.
        return _Admitted(options, source_uri=url)

    async def _admit_child(
        self, principal: Principal, name: str, parent_id: uuid.UUID, options: JobOptions
    ) -> _Admitted:
        async with self._deps.pool.acquire() as conn:
            parent = await jobs_db.get_visible_job(conn, parent_id, principal, name)
            has_transcript = await transcripts_db.has_transcript(conn, parent_id)
            if parent["state"] != JobState.SUCCEEDED or not has_transcript:
                raise FailedPrecondition(
                    f"{name} is {parent['state']}; a child job needs a parent "
                    "whose transcript is ready",
                    reason="PARENT_NOT_READY",
                )
        # The child carries its parent's source, so clips can be cut from it.
        return _Admitted(
            options,
            media_id=parent["media_id"],
            source_uri=parent["source_uri"],
            parent_id=parent_id,
            media_duration_s=parent["media_duration_s"],
        )

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

    async def _probe(self, media_row: asyncpg.Record) -> float | None:
        """Refuse media that cannot be transcribed before any work is queued; the
        length it claims (None: unknown), which only reserves minutes: the
        worker measures the real length while decoding."""
        try:
            info = await asyncio.to_thread(
                media.probe_stored,
                self._deps.blobs,
                media_row["blob_key"],
                int(media_row["size_bytes"]),
            )
        except MediaError as exc:
            raise InvalidArgument(
                f"{names.media_name(media_row['id'])}: {exc.message}",
                reason=exc.reason,
                violations=[FieldViolation("media", exc.message)],
            ) from exc
        limit_s = self._deps.settings.max_media_duration_s
        if info.duration_s is not None and info.duration_s > limit_s:
            raise InvalidArgument(
                f"media lasts {info.duration_s / 3600:.1f} h; the limit is {limit_s / 3600:.1f} h",
                reason="MEDIA_TOO_LONG",
                violations=[FieldViolation("media", "longer than the configured maximum")],
            )
        return info.duration_s

    # -- the one insert-and-enqueue path ---------------------------------------------------------

    async def _insert_and_enqueue(
        self,
        principal: Principal,
        request: job_service_pb2.CreateJobRequest,
        request_hash: str,
        job: _Admitted,
    ) -> job_service_pb2.CreateJobResponse:
        owner = principal.subject
        job_id = uuid.uuid4()
        stages_after = job.options.requested_stages()
        # A child job, or a cache hit with stages to run, starts at the insight
        # stages; a cache hit without any is finished on the spot.
        first_actor: str | None = prepare_actor(
            job.source_uri, job.media_duration_s, self._deps.settings.chunk_target_s
        )
        if job.parent_id is not None or (job.cached_from is not None and stages_after):
            first_actor = queue.DERIVE_JOB
        elif job.cached_from is not None:
            first_actor = None
        # Only a job that transcribes spends audio minutes (not cache hits, not children).
        transcribes = first_actor in (queue.PREPARE_JOB, queue.PREPARE_SHORT_JOB)
        reserve_s = (job.media_duration_s or 0.0) if transcribes else None
        async with self._deps.pool.acquire() as conn:
            async with conn.transaction():
                # Under the owner's lock until commit: quota checks and the insert are one step.
                await self._quotas.admit(conn, principal, reserve_s=reserve_s)
                created = await jobs_db.insert_job(
                    conn,
                    job_id=job_id,
                    owner=owner,
                    request_id=request.request_id or None,
                    request_hash=request_hash,
                    media_id=job.media_id,
                    source_uri=job.source_uri,
                    parent_id=job.parent_id,
                    options=job.options,
                    labels=dict(request.labels),
                    pending_message_id=None,
                    media_duration_s=job.media_duration_s,
                )
                if created is None:  # a concurrent retry with the same request_id won
                    earlier = await _earlier(conn, owner, request, request_hash)
                    assert earlier is not None
                    return earlier
                row, recorded = created
                published = [recorded]
                if reserve_s is not None:
                    await self._quotas.reserve(conn, principal, job_id, reserve_s)
                if job.cached_from is not None:
                    await _reuse_transcript(conn, job_id, job.cached_from)
                    if stages_after:
                        # The transcript is reused; only the requested stages run.
                        await jobs_db.set_cache_hit(conn, job_id)
                    else:
                        published.append(await _complete_from_cache(conn, job_id, job.cached_from))
                    row = await jobs_db.get_job(conn, job_id, owner=owner)
            if first_actor is not None:
                await self._enqueue_or_undo(conn, job_id, first_actor)
        for event in published:
            await publish(self._deps, event)
        if job.parent_id is not None:
            log.info("child job created", job=names.job_name(job_id), parent=request.parent)
        else:
            log.info(
                "job created", job=names.job_name(job_id), cache_hit=job.cached_from is not None
            )
        return job_service_pb2.CreateJobResponse(job=convert.job_to_pb(row))

    async def _enqueue_or_undo(
        self, conn: asyncpg.Connection, job_id: uuid.UUID, actor_name: str
    ) -> None:
        message = self._deps.queue.message(actor_name, job_id)
        try:
            broker_id = await asyncio.to_thread(self._deps.queue.enqueue_sync, message)
        except Exception as exc:
            # Without a queued message the job would never run: undo it so
            # a retry with the same request_id starts cleanly.
            await jobs_db.delete_job(conn, job_id)
            await usage_db.discard(conn, job_id)
            raise Unavailable("the work queue is unavailable; retry shortly") from exc
        # The reconciler looks this id up in the broker if the job stalls.
        await jobs_db.record_enqueued(conn, job_id, broker_id, self._deps.settings.queue_name)


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


async def _reuse_transcript(
    conn: asyncpg.Connection, job_id: uuid.UUID, source_id: uuid.UUID
) -> None:
    await transcripts_db.copy_transcript(conn, source_id, job_id)
    await search_db.copy_index(conn, source_id, job_id)


async def _complete_from_cache(
    conn: asyncpg.Connection, job_id: uuid.UUID, source_id: uuid.UUID
) -> events.RecordedEvent:
    """End a job whose transcript was reused SUCCEEDED, as if it had run."""
    recorded = await events_db.append_event(
        conn,
        job_id,
        kind=job_pb2.JOB_EVENT_KIND_STATE_CHANGED,
        set_fields={
            "state": JobState.SUCCEEDED,
            "stage": Stage.FINALIZE,
            "progress": 1.0,
            "cache_hit": True,
            "media_duration_s": await jobs_db.media_duration_s(conn, source_id),
            # The same transcript, so the same things to know about it.
            "warnings": await jobs_db.warnings(conn, source_id),
            "start_time": events.NOW,
            "end_time": events.NOW,
        },
        message=f"cache hit: reused the transcript of {names.job_name(source_id)}",
    )
    assert recorded is not None
    return recorded


def _check_translation(settings: Settings, language: str) -> None:
    """FAILED_PRECONDITION unless something can translate into `language`: Whisper
    (offline, English only, needs the multilingual model) or the model provider."""
    if not language or insights.provider_name(settings) != "local":
        return
    if not providers.translates_speech(settings, language):
        raise FailedPrecondition(
            f"translation into {language!r} needs a model provider: offline, speech is "
            "translated into English ('en') only (set GEMINI_API_KEY on the workers and "
            "servers for other languages)",
            reason="TRANSLATION_UNAVAILABLE",
        )
    if not any(m.multilingual for m in speech_models.installed()):
        raise FailedPrecondition(
            "translation into 'en' needs the multilingual speech model, which is not "
            "installed (`make setup` installs it), or GEMINI_API_KEY",
            reason="TRANSLATION_UNAVAILABLE",
        )


def _request_hash(request: job_service_pb2.CreateJobRequest) -> str:
    """The fingerprint of everything but the idempotency key: it decides whether a
    repeated request_id is a retry (same job) or a conflict."""
    copy = job_service_pb2.CreateJobRequest()
    copy.CopyFrom(request)
    copy.request_id = ""
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()
