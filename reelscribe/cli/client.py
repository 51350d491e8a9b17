"""A small synchronous client over the generated stubs, used by the CLI."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from reelscribe.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    transcript_service_pb2,
    transcript_service_pb2_grpc,
)

CHUNK_BYTES = 1024 * 1024
TERMINAL_STATES = (
    job_pb2.JOB_STATE_SUCCEEDED,
    job_pb2.JOB_STATE_FAILED,
    job_pb2.JOB_STATE_CANCELLED,
)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _upload_messages(
    header: job_service_pb2.UploadHeader, path: Path, offset: int
) -> Iterator[job_service_pb2.UploadMediaRequest]:
    yield job_service_pb2.UploadMediaRequest(header=header)
    with path.open("rb") as fh:
        fh.seek(offset)
        for block in iter(lambda: fh.read(CHUNK_BYTES), b""):
            yield job_service_pb2.UploadMediaRequest(chunk=block)


class Client:
    """Reelscribe over one channel with one bearer token."""

    def __init__(self, address: str, token: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self.jobs = job_service_pb2_grpc.JobServiceStub(self.channel)
        self.transcripts = transcript_service_pb2_grpc.TranscriptServiceStub(self.channel)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def upload(self, path: Path, *, timeout_s: float = 3600.0, retries: int = 5) -> job_pb2.Media:
        """Upload a file in 1 MiB chunks, resuming after dropped connections."""
        size = os.path.getsize(path)
        header = job_service_pb2.UploadHeader(
            filename=path.name,
            size_bytes=size,
            sha256=file_sha256(path),
            upload_id=str(uuid.uuid4()),
        )
        offset = 0
        for attempt in range(retries + 1):
            header.offset_bytes = offset
            try:
                reply = self.jobs.UploadMedia(
                    _upload_messages(header, path, offset),
                    metadata=self._metadata,
                    timeout=timeout_s,
                )
                return reply.media
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == retries:
                    raise
                time.sleep(min(2**attempt, 10))
                status = self.jobs.GetUpload(
                    job_service_pb2.GetUploadRequest(upload_id=header.upload_id),
                    metadata=self._metadata,
                    timeout=30,
                )
                if status.HasField("media"):
                    return status.media
                offset = status.stored_bytes
        raise AssertionError("unreachable")

    def create_job(self, media: str, *, language: str = "") -> job_pb2.Job:
        """Create a transcription job for uploaded media (idempotent per call)."""
        request = job_service_pb2.CreateJobRequest(
            request_id=str(uuid.uuid4()), media=media, options=job_pb2.JobOptions(language=language)
        )
        return self.jobs.CreateJob(request, metadata=self._metadata, timeout=30).job

    def get_job(self, name: str) -> job_pb2.Job:
        """One job."""
        return self.jobs.GetJob(
            job_service_pb2.GetJobRequest(name=name), metadata=self._metadata, timeout=30
        ).job

    def list_jobs(self, page_size: int = 50) -> Iterator[job_pb2.Job]:
        """All the caller's jobs, newest first, following page tokens."""
        token = ""
        while True:
            page = self.jobs.ListJobs(
                job_service_pb2.ListJobsRequest(page_size=page_size, page_token=token),
                metadata=self._metadata,
                timeout=30,
            )
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def watch(self, name: str, on_event: Callable[[job_pb2.JobEvent], None]) -> job_pb2.Job:
        """Follow a job to its end, resuming after the last seen event if the stream drops."""
        last_seq = 0
        job: job_pb2.Job | None = None
        while True:
            try:
                stream = self.jobs.WatchJob(
                    job_service_pb2.WatchJobRequest(name=name, after_seq=last_seq),
                    metadata=self._metadata,
                )
                for reply in stream:
                    event = reply.event
                    if event.seq:
                        last_seq = event.seq
                    if event.HasField("job"):
                        job = event.job
                    on_event(event)
                assert job is not None
                return job
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise

    def export(self, name: str, fmt: transcript_service_pb2.ExportFormat) -> str:
        """The transcript rendered in `fmt` (an ExportFormat value)."""
        reply = self.transcripts.ExportTranscript(
            transcript_service_pb2.ExportTranscriptRequest(name=name, format=fmt),
            metadata=self._metadata,
            timeout=60,
        )
        return reply.content
