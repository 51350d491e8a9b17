"""Jobs as resources: get, list, cancel, delete.

Also the two helpers every job module uses: `visible_job` (a job the caller
may see, or NOT_FOUND) and `publish` (fan a recorded event out, best effort).
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from reelscribe import convert, events, library, names
from reelscribe.auth import Principal
from reelscribe.db import events as events_db
from reelscribe.db import insights as insights_db
from reelscribe.db import jobs as jobs_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from reelscribe.states import TERMINAL, JobState
from reelscribe.v1 import job_pb2, job_service_pb2
from server import pagination
from server.deps import Deps

log = structlog.get_logger(__name__)


async def visible_job(pool: asyncpg.Pool, principal: Principal, name: str) -> asyncpg.Record:
    """The job named `name` if `principal` may see it; NOT_FOUND otherwise."""
    job_id = names.parse_job_name(name)
    async with pool.acquire() as conn:
        return await jobs_db.get_visible_job(conn, job_id, principal, name)


async def publish(deps: Deps, recorded: events.RecordedEvent) -> None:
    """Fan a committed event out to live watchers, best effort.

    Watchers re-read the Postgres log on heartbeats, so a failed publish
    delays an event but never loses it.
    """
    try:
        await events.publish(deps.redis, recorded)
    except Exception as exc:
        log.warning("event publish failed", error=repr(exc), seq=recorded.seq)


class JobRecords:
    """GetJob, ListJobs, CancelJob and DeleteJob."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def get(self, principal: Principal, name: str) -> job_pb2.Job:
        """The job, as the caller may see it."""
        return convert.job_to_pb(await visible_job(self._deps.pool, principal, name))

    async def list_jobs(
        self, principal: Principal, request: job_service_pb2.ListJobsRequest
    ) -> job_service_pb2.ListJobsResponse:
        """A page of the caller's jobs (everyone's for an admin asking `all_users`)."""
        if request.all_users and not principal.is_admin:
            raise PermissionDenied("all_users needs the admin role", reason="ADMIN_ONLY")
        size = pagination.page_size(request.page_size)
        try:
            job_states = sorted({JobState.from_pb(s).value for s in request.states})
        except ValueError as exc:
            raise InvalidArgument.field("states", "unknown or unspecified state") from exc
        query = f"{job_states}|{request.all_users}"
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

    async def cancel(self, principal: Principal, name: str) -> job_pb2.Job:
        """End a queued or running job CANCELLED; FAILED_PRECONDITION if it finished."""
        row = await visible_job(self._deps.pool, principal, name)
        job_id = row["id"]
        async with self._deps.pool.acquire() as conn:
            # The job ends now; the state guard makes this and a worker's
            # "succeeded" mutually exclusive. Workers see the state at their
            # next checkpoint (at most about a second later), stop, and remove
            # partial results and scratch files.
            recorded = await events_db.cancel(conn, job_id)
            current = await jobs_db.get_job(conn, job_id, owner=None)
        assert current is not None
        if recorded is not None:
            await publish(self._deps, recorded)
        elif current["state"] in (JobState.SUCCEEDED, JobState.FAILED):
            raise FailedPrecondition(
                f"{name} already finished ({current['state']})", reason="JOB_FINISHED"
            )
        return convert.job_to_pb(current)

    async def delete(self, principal: Principal, name: str) -> None:
        """Delete a finished job with its children, results and clips."""
        row = await visible_job(self._deps.pool, principal, name)
        if row["state"] not in TERMINAL:
            raise FailedPrecondition(
                "only finished jobs can be deleted; cancel it first", reason="JOB_ACTIVE"
            )
        # Cached answers must never quote a deleted job: the library generation
        # changes before the delete (if Redis cannot record that, nothing is
        # deleted) and again after it (an answer computed in between, from rows
        # about to go, was cached under a generation no one reads any more).
        remember_s = self._deps.settings.answer_cache_ttl_s
        await library.changed(self._deps.redis, row["owner"], remember_s=remember_s)
        async with self._deps.pool.acquire() as conn:
            # Child jobs go with their parent (the foreign key cascades); so do their clips.
            clip_keys = await insights_db.clip_keys_with_children(conn, row["id"])
            await jobs_db.delete_job(conn, row["id"])
        for key in clip_keys:
            await asyncio.to_thread(self._deps.blobs.delete, key)
        await library.changed(self._deps.redis, row["owner"], remember_s=remember_s)
        await transcripts_db.invalidate_cache(self._deps.redis, row["owner"], row["id"])
