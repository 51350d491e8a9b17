"""The transcription pipeline for one job: decode → transcribe → store.

Every state change goes through `events.append_event` with a state guard, so
a job reaches exactly one terminal state even when a cancel races the worker
or the broker redelivers a message after a crash.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from reelscribe import events, media, states
from reelscribe.blobs import BlobStore
from reelscribe.db import jobs as jobs_db
from reelscribe.db import media as media_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import MediaError
from reelscribe.v1 import job_pb2
from workers import transcriber
from workers.runtime import Runtime

log = structlog.get_logger(__name__)

_STATE = job_pb2.JOB_EVENT_KIND_STATE_CHANGED
_STARTED = job_pb2.JOB_EVENT_KIND_STAGE_STARTED
_PROGRESS = job_pb2.JOB_EVENT_KIND_PROGRESS
_FINISHED = job_pb2.JOB_EVENT_KIND_STAGE_FINISHED

# Share of the overall progress bar each stage covers.
_DECODE_SHARE = 0.1
_TRANSCRIBE_SHARE = 0.85


class Cancelled(Exception):
    """The owner cancelled the job; stop at this checkpoint."""


class JobRun:
    """One attempt at one job, driven from a worker thread."""

    def __init__(self, rt: Runtime, job_id: uuid.UUID) -> None:
        self.rt = rt
        self.job_id = job_id
        self.settings = rt.settings
        self._last_progress_at = 0.0
        self._last_cancel_check_at = 0.0

    # -- event helpers -------------------------------------------------------

    def _event(self, kind: job_pb2.JobEventKind, **kwargs: Any) -> events.RecordedEvent | None:
        async def _do() -> events.RecordedEvent | None:
            async with self.rt.pool.acquire() as conn:
                return await events.append_event(conn, self.job_id, kind=kind, **kwargs)

        recorded = self.rt.call(_do())
        self.rt.publish(recorded)
        return recorded

    def _running_event(self, kind: job_pb2.JobEventKind, **kwargs: Any) -> None:
        """An event that only applies while the job is running and not cancelled."""
        recorded = self._event(
            kind, require_states=(states.RUNNING,), require_not_cancel_requested=True, **kwargs
        )
        if recorded is None:
            raise Cancelled()

    def progress(self, stage: str, stage_fraction: float, overall: float, message: str) -> None:
        """Report progress, coalesced to at most one event per configured interval."""
        now = time.monotonic()
        if now - self._last_progress_at < self.settings.progress_min_interval_s:
            return
        self._last_progress_at = now
        self._running_event(
            _PROGRESS,
            set_fields={"stage": stage, "progress": overall},
            stage_progress=stage_fraction,
            message=message,
        )

    def check_cancelled(self, *, force: bool = False) -> None:
        """Raise `Cancelled` if the owner asked to stop (polled at most twice a second)."""
        now = time.monotonic()
        if not force and now - self._last_cancel_check_at < 0.5:
            return
        self._last_cancel_check_at = now

        async def _flag() -> bool:
            async with self.rt.pool.acquire() as conn:
                return bool(
                    await conn.fetchval(
                        "SELECT cancel_requested OR state <> 'RUNNING' FROM jobs WHERE id = $1",
                        self.job_id,
                    )
                )

        if self.rt.call(_flag()):
            raise Cancelled()

    # -- the run ---------------------------------------------------------------

    def run(self) -> None:
        """Claim the job, process it and record exactly one outcome."""
        row = self.rt.call(self._fetch_job())
        if row is None or row["state"] in states.TERMINAL:
            log.info("job not runnable; message dropped", job_id=str(self.job_id))
            return
        if row["cancel_requested"]:
            self._finish_cancelled()
            return
        if row["attempts"] >= self.settings.max_job_attempts:
            self._fail(
                "TOO_MANY_ATTEMPTS",
                f"gave up after {row['attempts']} attempts that did not finish",
                stage=row["stage"],
            )
            return
        claimed = self._event(
            _STATE,
            set_fields={
                "state": states.RUNNING,
                "stage": "EXTRACT_AUDIO",
                "attempts": row["attempts"] + 1,
                "start_time": events.NOW,
                "progress": 0.0,
            },
            require_states=states.ACTIVE,
            require_not_cancel_requested=True,
            message="decoding audio",
        )
        if claimed is None:
            self._finish_cancelled()
            return
        try:
            self._process(row)
        except Cancelled:
            self._finish_cancelled()
        except MediaError as exc:
            self._fail(exc.reason, exc.message)
        except Exception as exc:
            if row["attempts"] + 1 >= self.settings.max_job_attempts:
                self._fail("INTERNAL_ERROR", f"processing failed: {type(exc).__name__}")
                log.exception("job failed for good", job_id=str(self.job_id))
                return
            raise  # Dramatiq retries with backoff; the next attempt resumes cleanly.

    def _process(self, row: asyncpg.Record) -> None:
        media_row = self.rt.call(self._fetch_media(row["media_id"], row["owner"]))
        if media_row is None:
            raise MediaError("MEDIA_MISSING", "the job's media no longer exists")
        path: Path = BlobStore(self.settings.blob_dir).path(media_row["blob_key"])

        info = media.probe(path)
        self.rt.call(self._set_duration(info.duration_s))
        audio = media.decode_audio(path)
        duration_s = len(audio) / media.SAMPLE_RATE_HZ
        self._running_event(
            _FINISHED,
            set_fields={"progress": _DECODE_SHARE},
            stage_progress=1.0,
            message=f"decoded {duration_s:.1f} s of audio",
        )
        self.check_cancelled(force=True)

        options = row["options"] or {}
        self._running_event(_STARTED, set_fields={"stage": "TRANSCRIBE"}, message="transcribing")
        model = transcriber.load_model(
            self.settings.resolved_whisper_model_dir(),
            self.settings.whisper_compute_type,
            self.settings.whisper_cpu_threads,
        )
        tinfo, segment_iter = transcriber.transcribe(
            model,
            audio,
            language=options.get("language") or None,
            word_timestamps=not options.get("disable_word_timestamps", False),
            beam_size=self.settings.whisper_beam_size,
        )
        segments: list[transcripts_db.SegmentData] = []
        for segment in segment_iter:
            segments.append(segment)
            fraction = min(1.0, segment.end_s / duration_s) if duration_s else 1.0
            self.check_cancelled()
            self.progress(
                "TRANSCRIBE",
                fraction,
                _DECODE_SHARE + _TRANSCRIBE_SHARE * fraction,
                f"transcribed {segment.end_s:.0f} of {duration_s:.0f} s",
            )
        self.check_cancelled(force=True)
        self._running_event(
            _FINISHED,
            set_fields={"progress": _DECODE_SHARE + _TRANSCRIBE_SHARE},
            stage_progress=1.0,
            message=f"{len(segments)} segments",
        )

        data = transcripts_db.TranscriptData(
            language=tinfo.language,
            language_probability=tinfo.language_probability,
            duration_s=duration_s,
            model=options.get("model") or self.settings.whisper_model_name,
            segments=segments,
        )
        recorded = self.rt.call(self._store_and_succeed(data))
        if recorded is None:
            raise Cancelled()
        self.rt.publish(recorded)
        log.info("job succeeded", job_id=str(self.job_id), segments=len(segments))

    # -- outcomes --------------------------------------------------------------

    def _finish_cancelled(self) -> None:
        async def _do() -> events.RecordedEvent | None:
            async with self.rt.pool.acquire() as conn, conn.transaction():
                # No partial transcript may stay visible after a cancel.
                await transcripts_db.delete_transcript(conn, self.job_id)
                return await events.append_event(
                    conn,
                    self.job_id,
                    kind=_STATE,
                    set_fields={
                        "state": states.CANCELLED,
                        "end_time": events.NOW,
                        "error_reason": "CANCELLED",
                        "error_message": "cancelled by owner",
                    },
                    require_states=states.ACTIVE,
                    message="cancelled",
                )

        self.rt.publish(self.rt.call(_do()))
        log.info("job cancelled", job_id=str(self.job_id))

    def _fail(self, reason: str, message: str, *, stage: str | None = None) -> None:
        fields: dict[str, Any] = {
            "state": states.FAILED,
            "end_time": events.NOW,
            "error_reason": reason,
            "error_message": message,
        }
        if stage is not None:
            fields["error_stage"] = stage
        self._event(
            _STATE, set_fields=fields, require_states=states.ACTIVE, message=f"failed: {message}"
        )
        log.info("job failed", job_id=str(self.job_id), reason=reason, error=message)

    # -- database steps --------------------------------------------------------------

    async def _fetch_job(self) -> asyncpg.Record | None:
        async with self.rt.pool.acquire() as conn:
            return await jobs_db.get_job(conn, self.job_id, owner=None)

    async def _fetch_media(self, media_id: uuid.UUID, owner: str) -> asyncpg.Record | None:
        async with self.rt.pool.acquire() as conn:
            return await media_db.get_media(conn, media_id, owner=owner)

    async def _set_duration(self, duration_s: float) -> None:
        async with self.rt.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET media_duration_s = $2 WHERE id = $1", self.job_id, duration_s
            )

    async def _store_and_succeed(
        self, data: transcripts_db.TranscriptData
    ) -> events.RecordedEvent | None:
        async with self.rt.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await transcripts_db.store_transcript(conn, self.job_id, data)
                    recorded = await events.append_event(
                        conn,
                        self.job_id,
                        kind=_STATE,
                        set_fields={
                            "state": states.SUCCEEDED,
                            "stage": "FINALIZE",
                            "progress": 1.0,
                            "end_time": events.NOW,
                        },
                        require_states=(states.RUNNING,),
                        require_not_cancel_requested=True,
                        message="transcript ready",
                    )
                    if recorded is None:
                        raise _Rollback()
                    return recorded
            except _Rollback:
                return None


class _Rollback(Exception):
    """Undo the transcript insert: the job was cancelled meanwhile."""
