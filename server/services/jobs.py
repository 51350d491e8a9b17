"""JobService: the gRPC surface of uploads, jobs, progress streams and reports.

Each method hands the caller and the request to the module that does the
work (see `server.jobs`); nothing is decided here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from reelscribe.v1 import job_service_pb2, job_service_pb2_grpc
from server.context import current_principal
from server.deps import Deps
from server.jobs.creation import JobCreation
from server.jobs.models import list_models
from server.jobs.records import JobRecords
from server.jobs.reports import JobReports
from server.jobs.watches import JobWatches
from server.media import MediaRecords
from server.quotas import Quotas
from server.uploads import Uploads


class JobService(job_service_pb2_grpc.JobServiceServicer):
    """Implements `reelscribe.v1.JobService`."""

    def __init__(self, deps: Deps) -> None:
        quotas = Quotas(deps.settings)
        self._uploads = Uploads(deps.settings, deps.pool, deps.redis, deps.blobs, quotas)
        self._media = MediaRecords(deps)
        self._creation = JobCreation(deps, quotas)
        self._records = JobRecords(deps)
        self._watches = JobWatches(deps)
        self._reports = JobReports(deps, quotas)
        self._settings = deps.settings

    # -- uploads -------------------------------------------------------------------------

    async def UploadMedia(
        self,
        request_iterator: AsyncIterator[job_service_pb2.UploadMediaRequest],
        context: grpc.aio.ServicerContext,
    ) -> job_service_pb2.UploadMediaResponse:
        return await self._uploads.receive_stream(current_principal(), request_iterator)

    async def GetUpload(
        self, request: job_service_pb2.GetUploadRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetUploadResponse:
        return await self._uploads.status(current_principal().subject, request.upload_id)

    async def AppendUpload(
        self, request: job_service_pb2.AppendUploadRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.AppendUploadResponse:
        return await self._uploads.append(current_principal(), request)

    async def DeleteMedia(
        self, request: job_service_pb2.DeleteMediaRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.DeleteMediaResponse:
        await self._media.delete(current_principal(), request.name)
        return job_service_pb2.DeleteMediaResponse()

    async def ReadMedia(
        self, request: job_service_pb2.ReadMediaRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.ReadMediaResponse]:
        pieces = self._media.read(current_principal(), request.name, request.offset_bytes)
        async for piece in pieces:
            yield piece

    # -- jobs ----------------------------------------------------------------------------

    async def CreateJob(
        self, request: job_service_pb2.CreateJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.CreateJobResponse:
        return await self._creation.create(current_principal(), request)

    async def GetJob(
        self, request: job_service_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetJobResponse:
        return job_service_pb2.GetJobResponse(
            job=await self._records.get(current_principal(), request.name)
        )

    async def ListJobs(
        self, request: job_service_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.ListJobsResponse:
        return await self._records.list_jobs(current_principal(), request)

    async def CancelJob(
        self, request: job_service_pb2.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.CancelJobResponse:
        return job_service_pb2.CancelJobResponse(
            job=await self._records.cancel(current_principal(), request.name)
        )

    async def DeleteJob(
        self, request: job_service_pb2.DeleteJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.DeleteJobResponse:
        await self._records.delete(current_principal(), request.name)
        return job_service_pb2.DeleteJobResponse()

    # -- progress --------------------------------------------------------------------------

    async def WatchJob(
        self, request: job_service_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        async for reply in self._watches.watch_job(current_principal(), request):
            yield reply

    async def WatchJobs(
        self, request: job_service_pb2.WatchJobsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.WatchJobsResponse]:
        async for reply in self._watches.watch_jobs(current_principal(), request):
            yield reply

    # -- reports ---------------------------------------------------------------------------

    async def GetUsage(
        self, request: job_service_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetUsageResponse:
        return await self._reports.usage(current_principal())

    async def GetCostReport(
        self, request: job_service_pb2.GetCostReportRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetCostReportResponse:
        return await self._reports.costs(current_principal(), request)

    async def ListWebhookDeliveries(
        self,
        request: job_service_pb2.ListWebhookDeliveriesRequest,
        context: grpc.aio.ServicerContext,
    ) -> job_service_pb2.ListWebhookDeliveriesResponse:
        return await self._reports.webhook_deliveries(current_principal(), request)

    # -- models ----------------------------------------------------------------------------

    async def ListModels(
        self, request: job_service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.ListModelsResponse:
        return list_models(self._settings)
