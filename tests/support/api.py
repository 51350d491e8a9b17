"""Client helpers for tests: authenticated stubs, uploads, watching, error details."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from reelscribe.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    search_service_pb2_grpc,
    transcript_service_pb2,
    transcript_service_pb2_grpc,
)

TERMINAL = (job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED)
CHUNK = 1024 * 1024


class Api:
    """All three services, authenticated as one user."""

    def __init__(self, channel: grpc.aio.Channel, token: str | None) -> None:
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.jobs = job_service_pb2_grpc.JobServiceStub(channel)
        self.transcripts = transcript_service_pb2_grpc.TranscriptServiceStub(channel)
        self.search = search_service_pb2_grpc.SearchServiceStub(channel)

    async def upload_bytes(
        self,
        data: bytes,
        filename: str = "file.bin",
        *,
        size_bytes: int | None = None,
        sha256: str | None = None,
        chunk: int = CHUNK,
        upload_id: str = "",
    ) -> job_pb2.Media:
        header = job_service_pb2.UploadHeader(
            filename=filename,
            size_bytes=len(data) if size_bytes is None else size_bytes,
            sha256=hashlib.sha256(data).hexdigest() if sha256 is None else sha256,
            upload_id=upload_id,
        )

        async def messages():  # type: ignore[no-untyped-def]
            yield job_service_pb2.UploadMediaRequest(header=header)
            for i in range(0, len(data), chunk):
                yield job_service_pb2.UploadMediaRequest(chunk=data[i : i + chunk])

        reply = await self.jobs.UploadMedia(messages(), metadata=self.metadata, timeout=60)
        return reply.media

    async def upload(self, path: Path) -> job_pb2.Media:
        return await self.upload_bytes(path.read_bytes(), path.name)

    async def create(
        self, media: str, *, request_id: str | None = None, **options: object
    ) -> job_pb2.Job:
        request = job_service_pb2.CreateJobRequest(
            request_id=request_id if request_id is not None else str(uuid.uuid4()),
            media=media,
            options=job_pb2.JobOptions(**options),
        )  # type: ignore[arg-type]
        return (await self.jobs.CreateJob(request, metadata=self.metadata, timeout=30)).job

    async def get(self, name: str) -> job_pb2.Job:
        return (
            await self.jobs.GetJob(
                job_service_pb2.GetJobRequest(name=name), metadata=self.metadata, timeout=30
            )
        ).job

    async def cancel(self, name: str) -> job_pb2.Job:
        return (
            await self.jobs.CancelJob(
                job_service_pb2.CancelJobRequest(name=name), metadata=self.metadata, timeout=30
            )
        ).job

    async def watch(
        self, name: str, after_seq: int = 0, timeout_s: float = 180
    ) -> list[job_pb2.JobEvent]:
        """Every message of one watch, until the server ends the stream."""
        call = self.jobs.WatchJob(
            job_service_pb2.WatchJobRequest(name=name, after_seq=after_seq),
            metadata=self.metadata,
            timeout=timeout_s,
        )
        return [reply.event async for reply in call]

    async def run(self, path_or_media: Path | str, **options: object) -> job_pb2.Job:
        """Upload (if a path), create, and watch to the end; returns the final job."""
        media = (
            path_or_media
            if isinstance(path_or_media, str)
            else (await self.upload(path_or_media)).name
        )
        job = await self.create(media, **options)
        events = await self.watch(job.name)
        return events[-1].job

    async def transcript(self, name: str) -> transcript_service_pb2.Transcript:
        reply = await self.transcripts.GetTranscript(
            transcript_service_pb2.GetTranscriptRequest(name=name),
            metadata=self.metadata,
            timeout=30,
        )
        return reply.transcript


def error_details(exc: grpc.aio.AioRpcError) -> dict[str, object]:
    """The google.rpc details of a failed call, by type name."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    found: dict[str, object] = {}
    if status is None:
        return found
    for detail in status.details:
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.QuotaFailure,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(cls.DESCRIPTOR):
                msg = cls()
                detail.Unpack(msg)
                found[cls.DESCRIPTOR.name] = msg
    return found
