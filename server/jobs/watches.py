"""Progress streams: WatchJob (one job) and WatchJobs (all of the caller's jobs).

Both start from a snapshot (or resume after a position the client saw), then
follow the job's Redis channel, filling any gap from the Postgres event log
(`server.streams.follow`), with heartbeats while nothing happens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

from reelscribe import convert, events, validation
from reelscribe.auth import Principal
from reelscribe.db import events as events_db
from reelscribe.db import jobs as jobs_db
from reelscribe.errors import InvalidArgument, OutOfRange
from reelscribe.states import ACTIVE, TERMINAL, JobState, Stage
from reelscribe.v1 import job_pb2, job_service_pb2
from server.deps import Deps
from server.jobs.records import visible_job
from server.streams import Entry, follow


class JobWatches:
    """The two server-streaming watch RPCs."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def watch_job(
        self, principal: Principal, request: job_service_pb2.WatchJobRequest
    ) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        """A snapshot of the job, then its events after `after_seq` until it ends."""
        if request.after_seq < 0:
            raise InvalidArgument.field("after_seq", "must not be negative")
        row = await visible_job(self._deps.pool, principal, request.name)
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
            if row["state"] in TERMINAL and request.after_seq >= row["last_event_seq"]:
                return

            async def read_after(last: int) -> list[Entry[job_service_pb2.WatchJobResponse]]:
                async with self._deps.pool.acquire() as conn:
                    logged = await events_db.read_events(conn, job_id, after_seq=last)
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

    async def watch_jobs(
        self, principal: Principal, request: job_service_pb2.WatchJobsRequest
    ) -> AsyncIterator[job_service_pb2.WatchJobsResponse]:
        """Snapshots of the caller's unfinished jobs (unless resuming after a
        cursor), then every event of any of their jobs, filtered by state."""
        owner = principal.subject
        try:
            wanted = {int(JobState.from_pb(s).to_pb()) for s in request.states}
        except ValueError as exc:
            raise InvalidArgument.field("states", "unknown or unspecified state") from exc
        cursor = (
            validation.ascii_int(request.after_cursor, "after_cursor")
            if request.after_cursor
            else None
        )
        async with self._deps.pool.acquire() as conn:
            head = await events_db.last_owner_seq(conn, owner)
            active = (
                []
                if request.after_cursor
                else await jobs_db.list_jobs(
                    conn, owner=owner, job_states=ACTIVE, limit=1000, after=None
                )
            )
        if cursor is not None:
            after = cursor
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
                    logged = await events_db.read_owner_events(conn, owner, after=last)
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
        stage=Stage(row["stage"]).to_pb(),
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
