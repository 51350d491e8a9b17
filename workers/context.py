"""What every stage does around its real work: events, checkpoints, outcomes.

Every state change goes through `events_db.append_event` with a state guard, so
a job reaches exactly one terminal state even when a cancel races a worker or
the broker redelivers a message after a crash.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import structlog

from reelscribe import blobs, costs, events, fetch, progress
from reelscribe.db import chunks as chunks_db
from reelscribe.db import events as events_db
from reelscribe.db import jobs as jobs_db
from reelscribe.db import media as media_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import MediaError
from reelscribe.options import JobOptions
from reelscribe.states import ACTIVE, JobState, Stage
from reelscribe.v1 import job_pb2
from workers.runtime import Runtime

log = structlog.get_logger(__name__)
T = TypeVar("T")

STATE = job_pb2.JOB_EVENT_KIND_STATE_CHANGED
STARTED = job_pb2.JOB_EVENT_KIND_STAGE_STARTED
PROGRESS = job_pb2.JOB_EVENT_KIND_PROGRESS
FINISHED = job_pb2.JOB_EVENT_KIND_STAGE_FINISHED
PARTIAL = job_pb2.JOB_EVENT_KIND_PARTIAL_RESULT


#: Name of the media's scratch copy fetched from an S3 store.
MEDIA_COPY = "media"


class Cancelled(Exception):
    """The owner cancelled the job (or it ended elsewhere); stop here."""


class JobContext:
    """One stage's handle on one job, used from a worker thread."""

    def __init__(self, rt: Runtime, job_id: uuid.UUID) -> None:
        self.rt = rt
        self.job_id = job_id
        self.settings = rt.settings
        self._last_progress_at = 0.0
        self._last_cancel_check_at = 0.0
        self._plan: progress.ProgressPlan | None = None

    # -- database access -------------------------------------------------------

    def db(self, query: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run `query(conn, *args, **kwargs)` on a pooled connection (from a worker thread)."""

        async def _do() -> T:
            async with self.rt.pool.acquire() as conn:
                return await query(conn, *args, **kwargs)

        return self.rt.call(_do())

    def fetch_job(self) -> asyncpg.Record | None:
        """The job row (any owner: workers act for the system)."""
        return self.db(jobs_db.get_job, self.job_id, owner=None)

    def uploaded_media(self, row: Any) -> tuple[Path, str]:
        """A local file of the job's uploaded media, and its SHA-256.

        With the local store it is the stored file itself; with S3 it is a copy
        fetched into the job's scratch directory, which the caller removes once
        read (`release_media`).
        """
        media_row = self.db(media_db.get_media, row["media_id"], owner=row["owner"])
        if media_row is None:
            raise MediaError("MEDIA_MISSING", "the job's media no longer exists")
        store = self.rt.blobs
        if isinstance(store, blobs.BlobStore):
            return store.path(media_row["blob_key"]), str(media_row["sha256"])
        dest = self.workdir(row["owner"]) / MEDIA_COPY
        if dest.exists() and dest.stat().st_size == media_row["size_bytes"]:
            return dest, str(media_row["sha256"])  # fetched earlier by this job's stage
        dest.unlink(missing_ok=True)
        try:
            store.download(media_row["blob_key"], dest)
        except FileNotFoundError as exc:
            raise MediaError("MEDIA_MISSING", "the job's media is not in the blob store") from exc
        return dest, str(media_row["sha256"])

    def download_limits(self) -> fetch.FetchLimits:
        """The configured caps on downloading a URL source."""
        return fetch.FetchLimits(
            max_bytes=self.settings.max_upload_bytes,
            timeout_s=self.settings.url_fetch_timeout_s,
            allowed_networks=fetch.parse_networks(self.settings.url_allowed_networks),
        )

    def workdir(self, owner: str) -> Path:
        """Scratch space of this job (decoded audio), under the owner's prefix."""
        return self.settings.data_dir / "work" / blobs.owner_prefix(owner) / str(self.job_id)

    def release_media(self, path: Path) -> None:
        """Remove a scratch copy of the media once read (the stored file stays)."""
        if not self.rt.blobs.is_local:
            path.unlink(missing_ok=True)

    def stage_audio_key(self, owner: str) -> str:
        """Blob key of the decoded audio a job's stages share through an S3 store."""
        return f"{blobs.owner_prefix(owner)}/work/{self.job_id}/audio.f32"

    # -- progress --------------------------------------------------------------

    def track(self, row: Any, language: str = "") -> None:
        """Weigh progress over the stages this job runs (`reelscribe.progress`):
        transcription unless it is a child job, then the insight stages for a
        transcript in `language` (once known)."""
        options = JobOptions.from_json(row["options"])
        self._plan = progress.plan_for(
            options, transcribes=row["parent_id"] is None, language=language
        )

    def at(self, stage: Stage, fraction: float = 0.0) -> dict[str, Any]:
        """Job fields for being `fraction` through `stage`: the stage and the
        job's overall progress."""
        if self._plan is None:
            row = self.fetch_job()
            if row is None:
                raise Cancelled()  # the job was deleted
            self.track(row)
        assert self._plan is not None
        return {"stage": stage, "progress": self._plan.overall(stage, fraction)}

    # -- events ----------------------------------------------------------------

    def event(self, kind: job_pb2.JobEventKind, **kwargs: Any) -> events.RecordedEvent | None:
        """Append (and publish) one event; None if its state guard did not match."""

        async def _do() -> events.RecordedEvent | None:
            async with self.rt.pool.acquire() as conn:
                return await events_db.append_event(conn, self.job_id, kind=kind, **kwargs)

        recorded = self.rt.call(_do())
        self.rt.publish(recorded)
        return recorded

    def running_event(self, kind: job_pb2.JobEventKind, **kwargs: Any) -> events.RecordedEvent:
        """An event that only applies while the job runs and is not being cancelled."""
        recorded = self.event(
            kind, require_states=(JobState.RUNNING,), require_not_cancel_requested=True, **kwargs
        )
        if recorded is None:
            raise Cancelled()
        return recorded

    def progress(self, stage: Stage, stage_fraction: float, message: str) -> None:
        """Report progress within a stage, coalesced to the configured spacing."""
        now = time.monotonic()
        if now - self._last_progress_at < self.settings.progress_min_interval_s:
            return
        self._last_progress_at = now
        self.running_event(
            PROGRESS,
            set_fields=self.at(stage, stage_fraction),
            stage_progress=stage_fraction,
            message=message,
        )

    def check_cancelled(self, *, force: bool = False) -> None:
        """Raise `Cancelled` if the owner asked to stop (polled at most 4 times a second)."""
        now = time.monotonic()
        if not force and now - self._last_cancel_check_at < 0.25:
            return
        self._last_cancel_check_at = now

        if self.db(jobs_db.is_stopping, self.job_id):
            raise Cancelled()

    def record_cost(
        self,
        owner: str,
        stage: Stage,
        cpu_seconds: float,
        *,
        tokens: int = 0,
        add: bool = False,
    ) -> None:
        """Price what a stage consumed (see `costs.charge`; audio minutes are the
        usage ledger's, not a stage's)."""
        self.db(
            costs.charge,
            self.settings,
            self.job_id,
            stage,
            owner,
            cpu_seconds=cpu_seconds,
            tokens=tokens,
            add=add,
        )

    def claim(self, row: Any, stage: Stage, message: str) -> bool:
        """QUEUED (or a RUNNING job being retried) → RUNNING at `stage`, counting the
        attempt; False if the job was cancelled or ended meanwhile."""
        recorded = self.event(
            STATE,
            set_fields={
                "state": JobState.RUNNING,
                "stage": stage,
                "attempts": row["attempts"] + 1,
                "start_time": events.NOW,
                # No progress here: a re-run keeps what the job had reached.
            },
            require_states=ACTIVE,
            require_not_cancel_requested=True,
            message=message,
        )
        return recorded is not None

    # -- outcomes --------------------------------------------------------------

    def give_up_or_retry(
        self, owner: str, stage: Stage, last_attempt: bool, exc: Exception
    ) -> None:
        """After an unexpected error: fail the job for good on the last attempt,
        otherwise re-raise so Dramatiq retries the message."""
        if not last_attempt:
            raise exc
        log.exception("stage failed for good", job_id=str(self.job_id), stage=stage)
        self.fail(
            owner, "INTERNAL_ERROR", f"{stage.lower()} failed: {type(exc).__name__}", stage=stage
        )

    def finish_cancelled(self, owner: str) -> None:
        """End the job CANCELLED (once), leaving no partial results or scratch files."""

        async def _do() -> events.RecordedEvent | None:
            async with self.rt.pool.acquire() as conn, conn.transaction():
                recorded = await events_db.cancel(conn, self.job_id)
                # The server may have ended the job already; either way a
                # cancelled job keeps no partial results (but a job that
                # finished first keeps its transcript).
                if await jobs_db.state_of(conn, self.job_id) == JobState.CANCELLED:
                    await transcripts_db.delete_transcript(conn, self.job_id)
                    await chunks_db.delete_chunks(conn, self.job_id)
                return recorded

        self.rt.publish(self.rt.call(_do()))
        self.remove_workdir(owner)
        log.info("job cancelled", job_id=str(self.job_id))

    def fail(self, owner: str, reason: str, message: str, *, stage: Stage | None = None) -> None:
        """End the job FAILED (once) with a reason the owner can read."""
        fields: dict[str, Any] = {
            "state": JobState.FAILED,
            "end_time": events.NOW,
            "error_reason": reason,
            "error_message": message,
        }
        if stage is not None:
            fields["error_stage"] = stage
        # Clean up first: whoever sees the terminal event may rely on no scratch
        # files being left.
        self.remove_workdir(owner)
        self.event(STATE, set_fields=fields, require_states=ACTIVE, message=f"failed: {message}")
        log.info("job failed", job_id=str(self.job_id), reason=reason, error=message)

    def remove_workdir(self, owner: str) -> None:
        """Delete the job's scratch files, and the audio its stages shared through S3."""
        shutil.rmtree(self.workdir(owner), ignore_errors=True)
        if not self.rt.blobs.is_local:
            self.rt.blobs.delete(self.stage_audio_key(owner))
